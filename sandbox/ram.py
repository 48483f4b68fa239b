"""The sandbox's RAM: users, policies and roles as `alibabacloud-ram20150501` manages them.

RAM is an RPC API like STS (API version 2015-05-01, `POST /` with the parameters in the query
string, ACS3-HMAC-SHA256 or the legacy HMAC-SHA1 signature), so the sandbox's STS port answers it
too, with the same signature checks (`sandbox.sts`). What it keeps lives in
`<SANDBOX_DATA_DIR>/ram.json` and survives restarts.

A fresh sandbox starts as an account set up by the console how-to would be: the RAM user that owns
the configured key (`SandboxConfig.ram_user_name`) with the system policy
`AliyunSTSAssumeRoleAccess` and object access to the bucket; the configured role trusting the whole
account, with `SANDBOX_ROLE_POLICY` attached and `SANDBOX_ROLE_MAX_SESSION_DURATION` (3600 s, a new
RAM role's default) as its maximum session; and for a server without an AccessKey, the role
`SandboxConfig.server_role_name` (trusted by the RAM user and by the OIDC provider
`SandboxConfig.oidc_provider_name`, allowed to assume the configured role, with the RAM user's object
access) and that provider (`oidc_providers`: issuer URL and client ids). A `ram.json` from before they
existed gets them added at start. From then on the state is what RAM calls made it:

- AssumeRole needs the caller's policies to allow `sts:AssumeRole` on the role and the role's trust
  policy to name the caller (or its account); otherwise `NoPermission`, as STS answers. A caller is
  the RAM user or a role session (role chaining: the calling role's policies, its session policy
  included, and `Principal.RAM` naming `acs:ram::<account>:role/<name>`).
- AssumeRoleWithOIDC needs `Principal.Federated` to name the provider, its conditions met by the
  token's `oidc:iss`, `oidc:aud` and `oidc:sub`.
- A token is judged against its role's *current* policies at each OSS request, and a token for a
  role this account does not have is refused.

The sandbox has one long-term key. It stands for the server's RAM user and for the administrator
at once, so RAM calls and bucket-configuration calls signed with it are always allowed; its
object-level rights are its user's attached policies.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.aliyun_names import role_arn_account_id, role_arn_name
from sandbox.policy import Policy, PolicyGrammarError, is_allowed, parse_policy

if TYPE_CHECKING:
    from sandbox.config import SandboxConfig

__all__ = ["API_VERSION", "RamError", "RamStore", "handle_ram_action"]

API_VERSION = "2015-05-01"
STATE_FILE = "ram.json"
MAX_POLICY_VERSIONS = 5
MIN_MAX_SESSION, MAX_MAX_SESSION = 3600, 43200

# The system policies a fresh account offers (the two this product's how-to mentions).
SYSTEM_POLICIES: dict[str, dict[str, Any]] = {
    "AliyunSTSAssumeRoleAccess": {
        "Version": "1",
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": "*"}],
    },
    "AliyunOSSFullAccess": {
        "Version": "1",
        "Statement": [{"Action": "oss:*", "Effect": "Allow", "Resource": "*"}],
    },
}
SEED_ROLE_POLICY = "SandboxRolePolicy"
SEED_USER_POLICY = "SandboxServerObjectAccess"
SEED_SERVER_POLICY = "SandboxServerAssumeUploadRole"
# ram.json written before the server role and the OIDC provider existed has no "SeedVersion".
SEED_VERSION = 2
# Bucket configuration the sandbox's single long-term key may always change (it is the admin too).
_ADMIN_BUCKET_ACTIONS = [
    "oss:PutBucketCors",
    "oss:GetBucketCors",
    "oss:DeleteBucketCors",
    "oss:PutBucketLifecycle",
    "oss:GetBucketLifecycle",
    "oss:DeleteBucketLifecycle",
    "oss:GetBucketAcl",
    "oss:PutBucketAcl",
    "oss:GetBucketInfo",
]
NO_PERMISSION = "You are not authorized to do this action. You should be authorized by RAM."


class RamError(Exception):
    """An answer RAM (or STS, for AssumeRole) would give instead of success."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(kind: str, name: str) -> str:
    """A stable numeric id like RAM's, derived from the account-unique name."""
    number = int.from_bytes(hashlib.sha256(f"{kind}\x00{name.lower()}".encode()).digest()[:8], "big")
    return f"{2 if kind == 'user' else 3}{number % 10**15:015d}"


def trust_account(account_id: str) -> dict[str, Any]:
    """The trust policy the console gives a role whose trusted entity is "this account"."""
    return {
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": [f"acs:ram::{account_id}:root"]},
            }
        ],
        "Version": "1",
    }


def server_role_trust(config: SandboxConfig) -> dict[str, Any]:
    """The server role's trust policy: the RAM user, and the OIDC provider for its service account.

    The second statement is the shape of Alibaba's RRSA guide ("Use RRSA to authorize different
    pods to access different cloud services"): `Principal.Federated` names the provider's ARN and
    `StringEquals` pins `oidc:aud`, `oidc:iss` and `oidc:sub` (the pod's service account).
    """
    account = role_arn_account_id(config.role_arn)
    return {
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": [f"acs:ram::{account}:user/{config.ram_user_name}"]},
            },
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Federated": [config.oidc_provider_arn]},
                "Condition": {
                    "StringEquals": {
                        "oidc:aud": config.oidc_audience,
                        "oidc:iss": config.oidc_issuer,
                        "oidc:sub": config.oidc_subject,
                    }
                },
            },
        ],
        "Version": "1",
    }


def server_role_policy(config: SandboxConfig) -> dict[str, Any]:
    """What the server role may do besides OSS: assume the upload role (role chaining)."""
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": config.role_arn}],
    }


class RamStore:
    """The account's RAM entities, in memory and in `ram.json`; every change is written at once."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.account_id = role_arn_account_id(config.role_arn)
        self.path = Path(config.data_dir) / STATE_FILE
        self._lock = threading.RLock()
        self._state = self._load()

    # --- persistence -----------------------------------------------------------------------

    def _seed(self) -> dict[str, Any]:
        from sandbox.config import server_user_policy

        config, created = self.config, _now()
        role = role_arn_name(config.role_arn)
        return {
            "users": {
                config.ram_user_name.lower(): {
                    "UserName": config.ram_user_name,
                    "DisplayName": config.ram_user_name,
                    "Comments": "",
                    "CreateDate": created,
                    "Policies": [["System", "AliyunSTSAssumeRoleAccess"], ["Custom", SEED_USER_POLICY]],
                }
            },
            "policies": {
                SEED_USER_POLICY: _new_policy(
                    SEED_USER_POLICY, server_user_policy(config.bucket), "object access, listing", created
                ),
                SEED_ROLE_POLICY: _new_policy(
                    SEED_ROLE_POLICY, dict(config.role_policy or {}), "the role's own policy", created
                ),
            },
            "roles": {
                role.lower(): {
                    "RoleName": role,
                    "Description": "",
                    "AssumeRolePolicyDocument": trust_account(self.account_id),
                    "MaxSessionDuration": config.role_max_session_duration,
                    "CreateDate": created,
                    "UpdateDate": created,
                    "Policies": [["Custom", SEED_ROLE_POLICY]],
                }
            },
            "oidc_providers": {},
            "SeedVersion": 0,
        }

    def _upgrade(self, state: dict[str, Any]) -> bool:
        """Add what a newer sandbox seeds (the server role, its policy, the OIDC provider) when
        absent; True when the state changed. What RAM calls made of existing entities is kept."""
        if state.get("SeedVersion", 0) >= SEED_VERSION:
            return False
        config, created = self.config, _now()
        state.setdefault("policies", {}).setdefault(
            SEED_SERVER_POLICY,
            _new_policy(SEED_SERVER_POLICY, server_role_policy(config), "assume the upload role", created),
        )
        state.setdefault("roles", {}).setdefault(
            config.server_role_name.lower(),
            {
                "RoleName": config.server_role_name,
                "Description": "the server's own identity, without an AccessKey",
                "AssumeRolePolicyDocument": server_role_trust(config),
                "MaxSessionDuration": MIN_MAX_SESSION,
                "CreateDate": created,
                "UpdateDate": created,
                "Policies": [["Custom", SEED_SERVER_POLICY], ["Custom", SEED_USER_POLICY]],
            },
        )
        state.setdefault("oidc_providers", {}).setdefault(
            config.oidc_provider_name.lower(),
            {
                "OIDCProviderName": config.oidc_provider_name,
                "IssuerUrl": config.oidc_issuer,
                "ClientIds": [config.oidc_audience],
                "Fingerprints": [],
                "Description": "the sandbox's local OIDC issuer (RRSA stand-in)",
                "CreateDate": created,
            },
        )
        state["SeedVersion"] = SEED_VERSION
        return True

    def _load(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            fresh = False
        except FileNotFoundError:
            state, fresh = self._seed(), True
        if self._upgrade(state) and not fresh:
            self._state = state
            self._save()
        return state

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{STATE_FILE}.{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(self._state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)

    # --- lookups ---------------------------------------------------------------------------

    def user_of_key(self, access_key_id: str) -> str | None:
        """The RAM user owning a long-term key (the sandbox knows one)."""
        return self.config.ram_user_name if access_key_id == self.config.access_key_id else None

    def user_arn(self, user_name: str) -> str:
        return f"acs:ram::{self.account_id}:user/{user_name}"

    def role_arn(self, role: Mapping[str, Any]) -> str:
        # RAM writes the role name in lower case in its ARN.
        return f"acs:ram::{self.account_id}:role/{role['RoleName'].lower()}"

    def _role_by_arn(self, role_arn: str) -> dict[str, Any] | None:
        if role_arn_account_id(role_arn) != self.account_id:
            return None
        return self._state["roles"].get(role_arn_name(role_arn).lower())

    def _merged(self, attached: list[list[str]], extra: list[dict[str, Any]] | None = None) -> Policy | None:
        """The union of attached policies: one document holding every statement."""
        statements: list[Any] = list(extra or [])
        for policy_type, name in attached:
            document = self._document(policy_type, name)
            if document is not None:
                statements.extend(document.get("Statement", []))
        if not statements:
            return None
        return parse_policy({"Version": "1", "Statement": statements})

    def _document(self, policy_type: str, name: str) -> dict[str, Any] | None:
        if policy_type == "System":
            return SYSTEM_POLICIES.get(name)
        policy = self._state["policies"].get(name)
        if policy is None:
            return None
        return policy["Versions"][policy["DefaultVersion"]]["PolicyDocument"]

    def role_policy(self, role_arn: str) -> Policy | None:
        """The current union of a role's policies; None when the account has no such role."""
        with self._lock:
            role = self._role_by_arn(role_arn)
            if role is None:
                return None
            merged = self._merged(role["Policies"])
        # A role with no policy attached grants nothing.
        return merged or parse_policy(
            {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
        )

    def user_policy(self, access_key_id: str) -> Policy:
        """What a long-term key may do in OSS: its user's policies, plus bucket configuration."""
        with self._lock:
            user = self._state["users"].get((self.user_of_key(access_key_id) or "").lower())
            admin = {
                "Effect": "Allow",
                "Action": _ADMIN_BUCKET_ACTIONS,
                "Resource": [f"acs:oss:*:*:{self.config.bucket}"],
            }
            merged = self._merged(user["Policies"] if user else [], [admin])
        assert merged is not None  # the admin statement is always there
        return merged

    def check_assume_role(
        self,
        *,
        caller_key: str,
        role_arn: str,
        caller_role_arn: str | None = None,
        caller_policies: list[Policy] | None = None,
    ) -> tuple[str, int]:
        """Decide an AssumeRole call as STS does; return (the role's ARN, its MaxSessionDuration).

        The caller is the RAM user owning `caller_key`, or, with `caller_role_arn`, a role session
        (temporary credentials) whose effective permissions are `caller_policies` (the role's own
        policies and its session policy, all of which must allow). Raises RamError: 404
        `EntityNotExist.Role`, 403 `NoPermission` (the caller's policies do not allow
        `sts:AssumeRole` on the role, or its trust policy names neither the caller nor its account).
        """
        with self._lock:
            role = self._role_by_arn(role_arn)
            if role is None:
                raise RamError(404, "EntityNotExist.Role", f"The role not exists: {role_arn}.")
            canonical = self.role_arn(role)
            if caller_role_arn is not None:
                permissions = list(caller_policies or [])
                principal = caller_role_arn
            else:
                user_name = self.user_of_key(caller_key)
                user = self._state["users"].get((user_name or "").lower())
                merged = self._merged(user["Policies"]) if user else None
                permissions = [merged] if merged is not None else []
                principal = self.user_arn(user_name) if user_name else None
            allowed = bool(permissions) and any(
                is_allowed(permissions, "sts:AssumeRole", arn) for arn in {canonical, role_arn}
            )
            if not allowed or not _trusts(role["AssumeRolePolicyDocument"], self.account_id, principal):
                raise RamError(403, "NoPermission", NO_PERMISSION)
            return canonical, int(role["MaxSessionDuration"])

    def oidc_provider(self, provider_arn: str) -> dict[str, Any] | None:
        """The OIDC provider an ARN names (`IssuerUrl`, `ClientIds`), or None."""
        parts = provider_arn.split(":")
        if len(parts) != 5 or parts[:3] != ["acs", "ram", ""] or parts[3] != self.account_id:
            return None
        kind, _, name = parts[4].partition("/")
        if kind.lower() != "oidc-provider":
            return None
        with self._lock:
            provider = self._state.get("oidc_providers", {}).get(name.lower())
            return json.loads(json.dumps(provider)) if provider else None

    def check_assume_role_with_oidc(
        self, *, role_arn: str, provider_arn: str, context: Mapping[str, str]
    ) -> tuple[str, int]:
        """Decide an AssumeRoleWithOIDC call whose token was verified; return (ARN, MaxSessionDuration).

        `context` holds the token's `oidc:iss`, `oidc:aud` and `oidc:sub`, which the trust policy's
        conditions test. Raises RamError: 404 `EntityNotExist.Role`; 401
        `AuthenticationFail.NoPermission` when no Allow statement names the provider in
        `Principal.Federated` with its conditions met (Alibaba's STS error-code page).
        """
        with self._lock:
            role = self._role_by_arn(role_arn)
            if role is None:
                raise RamError(404, "EntityNotExist.Role", f"The role not exists: {role_arn}.")
            if not _trusts_provider(role["AssumeRolePolicyDocument"], provider_arn, context):
                raise RamError(401, "AuthenticationFail.NoPermission", "There is no permission")
            return self.role_arn(role), int(role["MaxSessionDuration"])

    # --- the API ---------------------------------------------------------------------------

    def _user(self, name: str) -> dict[str, Any]:
        user = self._state["users"].get(name.lower())
        if user is None:
            raise RamError(404, "EntityNotExist.User", f"The user does not exist: {name}.")
        return user

    def _role(self, name: str) -> dict[str, Any]:
        role = self._state["roles"].get(name.lower())
        if role is None:
            raise RamError(404, "EntityNotExist.Role", f"The role does not exist: {name}.")
        return role

    def _policy(self, name: str, policy_type: str = "Custom") -> dict[str, Any]:
        if policy_type == "System":
            if name not in SYSTEM_POLICIES:
                raise RamError(404, "EntityNotExist.Policy", f"The policy does not exist: {name}.")
            return _new_policy(name, SYSTEM_POLICIES[name], "", "2015-04-28T00:00:00Z", policy_type="System")
        if policy_type != "Custom":
            raise RamError(400, "InvalidParameter.PolicyType", "The parameter PolicyType is invalid.")
        policy = self._state["policies"].get(name)
        if policy is None:
            raise RamError(404, "EntityNotExist.Policy", f"The policy does not exist: {name}.")
        return policy

    def _user_out(self, user: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "UserId": _id("user", user["UserName"]),
            "UserName": user["UserName"],
            "DisplayName": user["DisplayName"],
            "Comments": user["Comments"],
            "CreateDate": user["CreateDate"],
            "UpdateDate": user["CreateDate"],
        }

    def _role_out(self, role: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "RoleId": _id("role", role["RoleName"]),
            "RoleName": role["RoleName"],
            "Arn": self.role_arn(role),
            "Description": role["Description"],
            "AssumeRolePolicyDocument": json.dumps(role["AssumeRolePolicyDocument"], separators=(",", ":")),
            "MaxSessionDuration": role["MaxSessionDuration"],
            "CreateDate": role["CreateDate"],
            "UpdateDate": role["UpdateDate"],
        }

    def _attachment_count(self, policy_type: str, name: str) -> int:
        pair = [policy_type, name]
        entities = [*self._state["users"].values(), *self._state["roles"].values()]
        return sum(pair in entity["Policies"] for entity in entities)

    def _policy_out(self, policy: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "PolicyName": policy["PolicyName"],
            "PolicyType": policy["PolicyType"],
            "Description": policy["Description"],
            "DefaultVersion": policy["DefaultVersion"],
            "CreateDate": policy["CreateDate"],
            "UpdateDate": policy["UpdateDate"],
            "AttachmentCount": self._attachment_count(policy["PolicyType"], policy["PolicyName"]),
        }

    def _attached_out(self, attached: list[list[str]]) -> dict[str, Any]:
        items = []
        for policy_type, name in attached:
            policy = self._policy(name, policy_type)
            items.append(
                {
                    "PolicyName": name,
                    "PolicyType": policy_type,
                    "Description": policy["Description"],
                    "DefaultVersion": policy["DefaultVersion"],
                    "AttachDate": policy["CreateDate"],
                }
            )
        return {"Policies": {"Policy": items}}

    def call(self, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Run one RAM action; the answer without RequestId. Raises RamError."""
        handler = _ACTIONS.get(action)
        if handler is None:
            raise RamError(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )
        with self._lock:
            before = json.dumps(self._state, sort_keys=True)
            result = handler(self, params)
            if json.dumps(self._state, sort_keys=True) != before:
                self._save()
            return result


def _new_policy(
    name: str, document: dict[str, Any], description: str, created: str, *, policy_type: str = "Custom"
) -> dict[str, Any]:
    return {
        "PolicyName": name,
        "PolicyType": policy_type,
        "Description": description,
        "DefaultVersion": "v1",
        "CreateDate": created,
        "UpdateDate": created,
        "NextVersion": 2,
        "Versions": {"v1": {"PolicyDocument": document, "CreateDate": created}},
    }


def _trusts(trust: Mapping[str, Any], account_id: str, principal_arn: str | None) -> bool:
    """Does an Allow statement for sts:AssumeRole name the account, or this caller, as RAM principal?

    `principal_arn` is the caller's `acs:ram::<account>:user/<name>` or `…:role/<name>` (the form
    Alibaba's trust policies use for a RAM user or a RAM role); the account's `root` (or its id)
    trusts every user and role of the account.
    """
    accepted = {account_id, f"acs:ram::{account_id}:root"}
    if principal_arn:
        accepted.add(principal_arn.lower())
    for statement in trust.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principals = (statement.get("Principal") or {}).get("RAM", [])
        principals = [principals] if isinstance(principals, str) else principals
        if (
            statement.get("Effect") == "Allow"
            and "sts:AssumeRole" in actions
            and any(p.lower() in accepted or p in accepted for p in principals)
        ):
            return True
    return False


def _trusts_provider(trust: Mapping[str, Any], provider_arn: str, context: Mapping[str, str]) -> bool:
    """Does an Allow statement for sts:AssumeRole name the provider as Federated principal, with
    every condition met by the token's claims? A condition the policy engine cannot parse grants
    nothing."""
    for statement in trust.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        federated = (statement.get("Principal") or {}).get("Federated", [])
        federated = [federated] if isinstance(federated, str) else federated
        if (
            statement.get("Effect") != "Allow"
            or "sts:AssumeRole" not in actions
            or provider_arn.lower() not in {str(p).lower() for p in federated}
        ):
            continue
        condition = statement.get("Condition")
        if not condition:
            return True
        try:
            test = parse_policy(
                {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Resource": "*",
                            "Condition": condition,
                        }
                    ],
                }
            )
        except PolicyGrammarError:
            continue
        if is_allowed([test], "sts:AssumeRole", "*", context):
            return True
    return False


# --- parameter helpers -----------------------------------------------------------------------


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise RamError(400, f"MissingParameter.{name}", f"The parameter {name} is required.")
    return value


def _document(params: Mapping[str, str], name: str) -> dict[str, Any]:
    text = _required(params, name)
    try:
        return parse_policy(text).document
    except PolicyGrammarError as exc:
        raise RamError(400, "MalformedPolicyDocument", f"The policy document is malformed: {exc}") from None


def _trust_document(params: Mapping[str, str], name: str) -> dict[str, Any]:
    text = _required(params, name)
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if (
        not isinstance(statements, list)
        or not statements
        or not all(isinstance(s, dict) and isinstance(s.get("Principal"), dict) for s in statements)
    ):
        raise RamError(
            400, "MalformedPolicyDocument", "The trust policy must have statements, each with a Principal."
        )
    return document


def _max_session(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not MIN_MAX_SESSION <= number <= MAX_MAX_SESSION:
        raise RamError(
            400,
            "InvalidParameter.MaxSessionDuration",
            f"The parameter MaxSessionDuration must be between {MIN_MAX_SESSION} and {MAX_MAX_SESSION}.",
        )
    return number


# --- actions ---------------------------------------------------------------------------------


def _get_user(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    return {"User": store._user_out(store._user(_required(params, "UserName")))}


def _create_user(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    name = _required(params, "UserName")
    if name.lower() in store._state["users"]:
        raise RamError(409, "EntityAlreadyExists.User", f"The user already exists: {name}.")
    user = {
        "UserName": name,
        "DisplayName": params.get("DisplayName") or name,
        "Comments": params.get("Comments", ""),
        "CreateDate": _now(),
        "Policies": [],
    }
    store._state["users"][name.lower()] = user
    return {"User": store._user_out(user)}


def _get_policy(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    policy = store._policy(_required(params, "PolicyName"), params.get("PolicyType") or "Custom")
    default = policy["DefaultVersion"]
    version = policy["Versions"][default]
    return {
        "Policy": store._policy_out(policy),
        "DefaultPolicyVersion": {
            "VersionId": default,
            "IsDefaultVersion": True,
            "PolicyDocument": json.dumps(version["PolicyDocument"], separators=(",", ":")),
            "CreateDate": version["CreateDate"],
        },
    }


def _create_policy(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    name = _required(params, "PolicyName")
    document = _document(params, "PolicyDocument")
    if name in store._state["policies"] or name in SYSTEM_POLICIES:
        raise RamError(409, "EntityAlreadyExists.Policy", f"The policy already exists: {name}.")
    policy = _new_policy(name, document, params.get("Description", ""), _now())
    store._state["policies"][name] = policy
    return {"Policy": store._policy_out(policy)}


def _create_policy_version(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    policy = store._policy(_required(params, "PolicyName"))
    document = _document(params, "PolicyDocument")
    set_default = params.get("SetAsDefault", "false").lower() == "true"
    versions = policy["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        if params.get("RotateStrategy") != "DeleteOldestNonDefaultVersionWhenLimitExceeded":
            raise RamError(
                409, "LimitExceeded.Policy.Version", "Exceeded the maximum number of policy versions."
            )
        oldest = min((v for v in versions if v != policy["DefaultVersion"]), key=lambda v: int(v[1:]))
        del versions[oldest]
    version_id = f"v{policy['NextVersion']}"
    policy["NextVersion"] += 1
    created = _now()
    versions[version_id] = {"PolicyDocument": document, "CreateDate": created}
    policy["UpdateDate"] = created
    if set_default:
        policy["DefaultVersion"] = version_id
    return {
        "PolicyVersion": {
            "VersionId": version_id,
            "IsDefaultVersion": set_default,
            "PolicyDocument": json.dumps(document, separators=(",", ":")),
            "CreateDate": created,
        }
    }


def _attach(kind: str) -> Callable[[RamStore, Mapping[str, str]], dict[str, Any]]:
    def attach(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
        name_param = "UserName" if kind == "User" else "RoleName"
        entity = (store._user if kind == "User" else store._role)(_required(params, name_param))
        policy_type = _required(params, "PolicyType")
        policy_name = _required(params, "PolicyName")
        store._policy(policy_name, policy_type)
        pair = [policy_type, policy_name]
        if pair in entity["Policies"]:
            raise RamError(
                409,
                f"EntityAlreadyExists.{kind}.Policy",
                f"The policy {policy_name} is already attached to the {kind.lower()}.",
            )
        entity["Policies"].append(pair)
        return {}

    return attach


def _detach(kind: str) -> Callable[[RamStore, Mapping[str, str]], dict[str, Any]]:
    def detach(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
        name_param = "UserName" if kind == "User" else "RoleName"
        entity = (store._user if kind == "User" else store._role)(_required(params, name_param))
        pair = [_required(params, "PolicyType"), _required(params, "PolicyName")]
        if pair not in entity["Policies"]:
            raise RamError(
                404, f"EntityNotExist.{kind}.Policy", f"The policy is not attached to the {kind.lower()}."
            )
        entity["Policies"].remove(pair)
        return {}

    return detach


def _list_for(kind: str) -> Callable[[RamStore, Mapping[str, str]], dict[str, Any]]:
    def list_for(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
        name_param = "UserName" if kind == "User" else "RoleName"
        entity = (store._user if kind == "User" else store._role)(_required(params, name_param))
        return store._attached_out(entity["Policies"])

    return list_for


def _get_role(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    return {"Role": store._role_out(store._role(_required(params, "RoleName")))}


def _create_role(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    name = _required(params, "RoleName")
    trust = _trust_document(params, "AssumeRolePolicyDocument")
    if name.lower() in store._state["roles"]:
        raise RamError(409, "EntityAlreadyExists.Role", f"The role already exists: {name}.")
    created = _now()
    role = {
        "RoleName": name,
        "Description": params.get("Description", ""),
        "AssumeRolePolicyDocument": trust,
        "MaxSessionDuration": _max_session(params.get("MaxSessionDuration") or str(MIN_MAX_SESSION)),
        "CreateDate": created,
        "UpdateDate": created,
        "Policies": [],
    }
    store._state["roles"][name.lower()] = role
    return {"Role": store._role_out(role)}


def _update_role(store: RamStore, params: Mapping[str, str]) -> dict[str, Any]:
    role = store._role(_required(params, "RoleName"))
    if params.get("NewAssumeRolePolicyDocument"):
        role["AssumeRolePolicyDocument"] = _trust_document(params, "NewAssumeRolePolicyDocument")
    if params.get("NewMaxSessionDuration"):
        role["MaxSessionDuration"] = _max_session(params["NewMaxSessionDuration"])
    if "NewDescription" in params:
        role["Description"] = params["NewDescription"]
    role["UpdateDate"] = _now()
    return {"Role": store._role_out(role)}


_ACTIONS: dict[str, Callable[[RamStore, Mapping[str, str]], dict[str, Any]]] = {
    "GetUser": _get_user,
    "CreateUser": _create_user,
    "GetPolicy": _get_policy,
    "CreatePolicy": _create_policy,
    "CreatePolicyVersion": _create_policy_version,
    "AttachPolicyToUser": _attach("User"),
    "DetachPolicyFromUser": _detach("User"),
    "ListPoliciesForUser": _list_for("User"),
    "AttachPolicyToRole": _attach("Role"),
    "DetachPolicyFromRole": _detach("Role"),
    "ListPoliciesForRole": _list_for("Role"),
    "GetRole": _get_role,
    "CreateRole": _create_role,
    "UpdateRole": _update_role,
}


def handle_ram_action(config: SandboxConfig, action: str | None, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer one authenticated RAM call (the caller's signature was verified by `sandbox.sts`)."""
    return config.ram.call(action or "", params)
