"""The one seam around ``alibabacloud_sts20150401``: nothing else in the project imports it.

Takes typed inputs, returns a frozen dataclass, and turns every SDK failure into ``StsError``
with a stable code, so the rest of the code never sees a Tea/Darabonba exception. The client signs with
the server's identity from ``aliyun/credentials.py`` (an AccessKey, or temporary credentials of a role:
AssumeRole is then role chaining, at most 3600 s, uploads.E042).
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from alibabacloud_sts20150401.client import Client
from alibabacloud_sts20150401.models import AssumeRoleRequest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.models import Config
from darabonba.policy.retry import RetryOptions
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _  # messages the API may show, in the caller's language

from aliyun.credentials import ServerIdentityError, sdk_credential
from aliyun.errors import AliyunError
from core.aliyun_names import endpoint_protocol

logger = logging.getLogger(__name__)

# STS codes that mean "slow down" (retried with back-off, then answered as sts_throttled), as opposed to
# the other 4xx codes, which mean "our configuration is wrong" (sts_rejected).
_THROTTLING_CODES = {"Throttling", "Throttling.User", "Throttling.Api", "Throttling.Sts"}


@dataclass(frozen=True)
class StsCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime
    request_id: str


class StsError(AliyunError):
    """AssumeRole did not give us credentials.

    ``code`` is the project's stable code (``sts_throttled``, ``sts_unavailable``,
    ``sts_rejected``); ``upstream_code`` is Alibaba's (``Throttling.User``, ``NoPermission``…).
    ``retryable``: STS itself answered throttling or a server-side error (5xx, ``InternalError``,
    ``ServiceUnavailable``), so another attempt may succeed; not for an unreachable STS (each attempt
    would wait its timeouts again), a refused configuration or the server's own identity failing.
    """

    def __init__(self, code: str, message: str, *, retryable: bool = False, **details: Any) -> None:
        super().__init__(code, message, **details)
        self.retryable = retryable


def _no_retries() -> RetryOptions:
    """The SDK retries nothing: one ``assume_role`` is one STS request. The caller retries
    (``uploads/services/reuse.py``), so that every attempt is admitted by the AssumeRole budget and
    counts against Alibaba's per-account quota like a first call."""
    return RetryOptions({"retryable": False, "retryCondition": []})


@lru_cache(maxsize=1)
def _client() -> Client:
    endpoint = settings.ALIYUN_STS_ENDPOINT
    config = Config(
        credential=sdk_credential(),  # asked at every call: refreshed temporary credentials are used at once
        endpoint=endpoint,
        protocol=endpoint_protocol(endpoint),
        connect_timeout=settings.ALIYUN_STS_CONNECT_TIMEOUT_MS,
        read_timeout=settings.ALIYUN_STS_READ_TIMEOUT_MS,
    )
    config.retry_options = _no_retries()
    return Client(config)


@receiver(setting_changed)
def _reset_client(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ALIYUN_STS"):  # the identity is looked up at every call (aliyun/credentials.py)
        _client.cache_clear()


def _parse_expiration(value: str) -> datetime:
    """STS answers ``2026-11-28T14:00:00Z``; tolerate fractional seconds and offsets too."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("expiration without a time zone")
    return parsed.astimezone(UTC)


def _server_identity_failure(exc: BaseException) -> StsError | None:
    """The SDK asks the server's identity for credentials inside its call and wraps what that raised
    (``UnretryableException.inner_exception``): a failed refresh is ``sts_unavailable``, with
    ``upstream_code`` ``server_identity`` (the audit row's error code). The provider has logged the source."""
    failure = exc if isinstance(exc, ServerIdentityError) else getattr(exc, "inner_exception", None)
    if not isinstance(failure, ServerIdentityError):
        return None
    return StsError(
        "sts_unavailable",
        _("The server could not renew its own Alibaba Cloud credentials."),
        upstream_code="server_identity",
        retry_after=failure.retry_after,
    )


def _throttled(exc: AlibabaCloudException, *, retry_after_ms: int | None) -> StsError:
    """STS said slow down: Retry-After from its x-acs-retry-after (milliseconds), at least 1 s."""
    return StsError(
        "sts_throttled",
        _("Alibaba Cloud STS is throttling requests."),
        upstream_code=exc.code or "Throttling",
        request_id=exc.request_id or "",
        retry_after=max(1, -(-int(retry_after_ms or 1000) // 1000)),
        retryable=True,
    )


def assume_role(*, role_session_name: str, policy: dict[str, Any], duration_seconds: int) -> StsCredentials:
    """Call AssumeRole with an inline session policy. Raises ``StsError`` on any failure."""
    request = AssumeRoleRequest(
        role_arn=settings.ALIYUN_STS_ROLE_ARN,
        role_session_name=role_session_name,
        policy=json.dumps(policy, separators=(",", ":")),
        duration_seconds=duration_seconds,
    )
    client = _client()
    try:
        response = client.assume_role(request)
    except ThrottlingException as exc:
        raise _throttled(exc, retry_after_ms=exc.retry_after) from None
    except ClientException as exc:
        if exc.code in _THROTTLING_CODES:
            raise _throttled(exc, retry_after_ms=None) from None
        logger.error("STS refused AssumeRole: code=%s request_id=%s", exc.code, exc.request_id)
        raise StsError(
            "sts_rejected",
            _("Alibaba Cloud STS refused the server's configuration."),
            upstream_code=exc.code or "",
            request_id=exc.request_id or "",
        ) from None
    except ServerException as exc:
        raise StsError(
            "sts_unavailable",
            _("Alibaba Cloud STS is unavailable."),
            upstream_code=exc.code or "",
            request_id=exc.request_id or "",
            retry_after=5,
            retryable=True,
        ) from None
    except Exception as exc:  # connection refused, timeouts, TLS errors, garbage answers
        identity_failure = _server_identity_failure(exc)
        if identity_failure is not None:
            raise identity_failure from None
        logger.warning("STS unreachable: %s", type(exc).__name__)
        raise StsError(
            "sts_unavailable",
            _("Alibaba Cloud STS could not be reached."),
            upstream_code="",
            retry_after=5,
        ) from None

    try:
        body = response.body
        credentials = body.credentials
        if not (credentials.access_key_id and credentials.access_key_secret and credentials.security_token):
            raise ValueError("credentials missing from the answer")
        return StsCredentials(
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            expiration=_parse_expiration(credentials.expiration),
            request_id=body.request_id or "",
        )
    except (AttributeError, TypeError, ValueError):
        logger.error(
            "STS answered AssumeRole with an unexpected body (request_id=%s)",
            getattr(response.body, "request_id", ""),
        )
        raise StsError(
            "sts_unavailable", _("Alibaba Cloud STS gave an unexpected answer."), retry_after=5
        ) from None


@dataclass(frozen=True)
class CallerIdentity:
    account_id: str
    arn: str  # acs:ram::<account>:user/<name>, or …:root for the account's own key
    identity_type: str


def caller_identity() -> CallerIdentity:
    """Who the server's key belongs to (STS GetCallerIdentity). Raises ``StsError`` (``sts_rejected``
    when STS refuses the key, ``sts_unavailable`` when it cannot be reached)."""
    try:
        body = _client().get_caller_identity().body
    except ClientException as exc:
        raise StsError(
            "sts_rejected",
            _("Alibaba Cloud STS refused the server's key."),
            upstream_code=exc.code or "",
            request_id=exc.request_id or "",
        ) from None
    except Exception as exc:
        identity_failure = _server_identity_failure(exc)
        if identity_failure is not None:
            raise identity_failure from None
        raise StsError("sts_unavailable", _("Alibaba Cloud STS could not be reached.")) from None
    return CallerIdentity(
        account_id=body.account_id or "", arn=body.arn or "", identity_type=body.identity_type or ""
    )
