"""The one seam around ``alibabacloud_ram20150501`` (RAM: users, policies, roles).

Only the operator commands use it (``aliyun_setup --apply``, ``aliyun_doctor`` with an administrator
key), with an administrator credential they read for that run and never store. SDK failures come
out as ``RamError`` with Alibaba's code; "does not exist" answers come out as ``None``.
"""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from django.conf import settings

from aliyun.errors import AliyunError
from core.aliyun_names import endpoint_protocol, is_loopback_endpoint

logger = logging.getLogger(__name__)

RAM_ENDPOINT = "ram.aliyuncs.com"
ROTATE = "DeleteOldestNonDefaultVersionWhenLimitExceeded"


@dataclass(frozen=True)
class AdminCredentials:
    """An administrator's AccessKey pair, held only for one command run."""

    access_key_id: str
    access_key_secret: str = field(repr=False)


@dataclass(frozen=True)
class RoleInfo:
    arn: str
    trust_policy: dict[str, Any]
    max_session_duration: int


class RamError(AliyunError):
    """RAM refused or could not be reached; ``code`` is Alibaba's (``NoPermission``…) or ``unreachable``."""


def ram_endpoint() -> str:
    """``ALIYUN_RAM_ENDPOINT``, else the sandbox's STS port when STS is local, else ram.aliyuncs.com."""
    if settings.ALIYUN_RAM_ENDPOINT:
        return settings.ALIYUN_RAM_ENDPOINT
    sts = settings.ALIYUN_STS_ENDPOINT
    return sts if is_loopback_endpoint(sts) else RAM_ENDPOINT


class RamAdmin:
    """RAM calls made with an administrator's key."""

    def __init__(self, credentials: AdminCredentials) -> None:
        endpoint = ram_endpoint()
        self._client = Client(
            Config(
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                endpoint=endpoint,
                protocol=endpoint_protocol(endpoint),
                connect_timeout=5000,
                read_timeout=10000,
            )
        )

    def _call(self, method: str, request: Any, *, missing: str | None = None) -> Any:
        try:
            return getattr(self._client, method)(request).body
        except ClientException as exc:
            if missing and (exc.code or "").startswith(missing):
                return None
            raise RamError(exc.code or "", f"RAM refused {method}: {exc.code}") from None
        except Exception as exc:
            logger.warning("RAM unreachable during %s: %s", method, type(exc).__name__)
            raise RamError("unreachable", f"RAM could not be reached ({ram_endpoint()})") from None

    # --- users -------------------------------------------------------------------------------

    def user_exists(self, name: str) -> bool:
        return (
            self._call("get_user", ram_models.GetUserRequest(user_name=name), missing="EntityNotExist")
            is not None
        )

    def create_user(self, name: str) -> None:
        self._call(
            "create_user",
            ram_models.CreateUserRequest(user_name=name, display_name=name, comments="uploads server"),
        )

    def user_policies(self, name: str) -> set[tuple[str, str]]:
        body = self._call(
            "list_policies_for_user",
            ram_models.ListPoliciesForUserRequest(user_name=name),
            missing="EntityNotExist",
        )
        return _attached(body)

    def attach_policy_to_user(self, user: str, policy: str) -> None:
        self._call(
            "attach_policy_to_user",
            ram_models.AttachPolicyToUserRequest(policy_type="Custom", policy_name=policy, user_name=user),
        )

    # --- policies ------------------------------------------------------------------------------

    def policy_document(self, name: str) -> dict[str, Any] | None:
        """The default version's document of a custom policy, or None if there is no such policy."""
        body = self._call(
            "get_policy",
            ram_models.GetPolicyRequest(policy_name=name, policy_type="Custom"),
            missing="EntityNotExist",
        )
        if body is None:
            return None
        return json.loads(body.default_policy_version.policy_document)

    def create_policy(self, name: str, description: str, document: dict[str, Any]) -> None:
        self._call(
            "create_policy",
            ram_models.CreatePolicyRequest(
                policy_name=name, description=description, policy_document=json.dumps(document)
            ),
        )

    def set_policy_document(self, name: str, document: dict[str, Any]) -> None:
        """A new default version (the oldest non-default one goes when RAM's 5 are taken)."""
        self._call(
            "create_policy_version",
            ram_models.CreatePolicyVersionRequest(
                policy_name=name,
                policy_document=json.dumps(document),
                set_as_default=True,
                rotate_strategy=ROTATE,
            ),
        )

    # --- roles ---------------------------------------------------------------------------------

    def role(self, name: str) -> RoleInfo | None:
        body = self._call("get_role", ram_models.GetRoleRequest(role_name=name), missing="EntityNotExist")
        if body is None:
            return None
        return RoleInfo(
            arn=body.role.arn,
            trust_policy=json.loads(body.role.assume_role_policy_document),
            max_session_duration=int(body.role.max_session_duration or 3600),
        )

    def create_role(self, name: str, trust_policy: dict[str, Any], max_session_duration: int) -> None:
        self._call(
            "create_role",
            ram_models.CreateRoleRequest(
                role_name=name,
                assume_role_policy_document=json.dumps(trust_policy),
                max_session_duration=max_session_duration,
                description="Mints the uploads service's per-user OSS tokens",
            ),
        )

    def update_role(
        self,
        name: str,
        *,
        trust_policy: dict[str, Any] | None = None,
        max_session_duration: int | None = None,
    ) -> None:
        self._call(
            "update_role",
            ram_models.UpdateRoleRequest(
                role_name=name,
                new_assume_role_policy_document=json.dumps(trust_policy) if trust_policy else None,
                new_max_session_duration=max_session_duration,
            ),
        )

    def role_policies(self, name: str) -> set[tuple[str, str]]:
        body = self._call(
            "list_policies_for_role",
            ram_models.ListPoliciesForRoleRequest(role_name=name),
            missing="EntityNotExist",
        )
        return _attached(body)

    def attach_policy_to_role(self, role: str, policy: str) -> None:
        self._call(
            "attach_policy_to_role",
            ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=policy, role_name=role),
        )


def _attached(body: Any) -> set[tuple[str, str]]:
    if body is None or body.policies is None or body.policies.policy is None:
        return set()
    return {(item.policy_type, item.policy_name) for item in body.policies.policy}
