"""Minting and checking the sandbox's STS credentials, with no database.

A security token is self-contained: `CAIS` + base64url(JSON payload) + `.` +
base64url(HMAC-SHA256 over the payload). The HMAC key ("master key") is derived
from the RAM user's secret, and each STS secret is derived from its access key
id with that same key. So a restarted sandbox still honours every token it
issued, a forged or edited token fails the HMAC, and rotating the RAM user's
secret revokes them all — like deleting the key on Alibaba Cloud would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.policy import Policy, PolicyGrammarError, parse_policy

__all__ = [
    "CredentialError",
    "IssuedCredentials",
    "Principal",
    "assumed_role_identity",
    "issue_credentials",
    "resolve_principal",
    "secret_for",
]

STS_PREFIX = "STS."
_TOKEN_PREFIX = "CAIS"
_ALPHABET = string.ascii_letters + string.digits
_AK_LENGTH = 25
_SECRET_LENGTH = 44
_PAYLOAD_VERSION = 1


class CredentialError(Exception):
    """A key or token OSS would refuse; `code`/`http_status` are OSS's."""

    def __init__(self, code: str, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True)
class IssuedCredentials:
    """What AssumeRole hands back. `repr` hides the secret and the token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str


@dataclass(frozen=True)
class Principal:
    """Who signed an OSS request, with the secret to check the signature and the policies to obey."""

    access_key_id: str
    secret: str = field(repr=False)
    policies: list[Policy]
    is_sts: bool
    expiration: datetime | None = None
    role_session_name: str | None = None
    # An STS session's AssumedRoleUser.AssumedRoleId (``<role id>:<session name>``), as AssumeRole named it.
    assumed_role_id: str | None = None
    # The role an STS key is a session of (what role chaining judges the caller as).
    role_arn: str | None = None


def issue_credentials(
    config: SandboxConfig,
    *,
    role_session_name: str,
    session_policy: dict[str, Any] | None,
    duration_seconds: int,
    now: datetime | None = None,
    role_arn: str | None = None,
) -> IssuedCredentials:
    """Mint STS credentials for `role_arn` (default: the configured role); the caller validated the rest."""
    role_arn = role_arn or config.role_arn
    issued_at = _utc(now).replace(microsecond=0)
    expiration = issued_at + timedelta(seconds=duration_seconds)
    access_key_id = STS_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_AK_LENGTH))
    role_id = _role_id(role_arn)
    payload = {
        "v": _PAYLOAD_VERSION,
        "ak": access_key_id,
        "exp": int(expiration.timestamp()),
        "iat": int(issued_at.timestamp()),
        "sp": session_policy,
        "sn": role_session_name,
        "arn": role_arn,
        "nonce": secrets.token_hex(8),
    }
    return IssuedCredentials(
        access_key_id=access_key_id,
        access_key_secret=secret_for(config, access_key_id),
        security_token=_seal(config, payload),
        expiration=expiration,
        assumed_role_arn=_assumed_role_arn(role_arn, role_session_name),
        assumed_role_id=f"{role_id}:{role_session_name}",
    )


def resolve_principal(
    config: SandboxConfig,
    *,
    access_key_id: str,
    security_token: str | None,
    now: datetime | None = None,
) -> Principal:
    """Find who an access key id (and token) belongs to, or raise CredentialError."""
    if access_key_id == config.access_key_id:
        if security_token:
            raise CredentialError(
                "InvalidSecurityToken",
                "A security token was sent with a long-term AccessKey.",
            )
        return Principal(
            access_key_id=access_key_id,
            secret=config.access_key_secret,
            policies=[config.ram.user_policy(access_key_id)],
            is_sts=False,
        )
    if not access_key_id.startswith(STS_PREFIX):
        raise CredentialError(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
    if not security_token:
        # What OSS answers: without its token an STS AccessKeyId is unknown to it. Alibaba's
        # troubleshooting for this message lists a missing token first.
        raise CredentialError(
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
    payload = _unseal(config, security_token)
    if payload.get("ak") != access_key_id:
        raise CredentialError(
            "InvalidSecurityToken",
            "The security token does not belong to this AccessKey.",
        )
    expiration = datetime.fromtimestamp(int(payload["exp"]), tz=UTC)
    if _utc(now) >= expiration:
        raise CredentialError("SecurityTokenExpired", "The security token you provided has expired.")
    # Judged against the role's policies as they are now, not as they were at issue time; a token
    # for a role this account does not have (any more) is refused.
    role_policy = config.ram.role_policy(str(payload.get("arn", "")))
    if role_policy is None:
        raise CredentialError("InvalidSecurityToken", "The security token you provided is invalid.")
    try:
        policies = [role_policy]
        if payload.get("sp") is not None:
            policies.append(parse_policy(payload["sp"]))
    except (KeyError, PolicyGrammarError):
        raise CredentialError("InvalidSecurityToken", "The security token you provided is invalid.") from None
    return Principal(
        access_key_id=access_key_id,
        secret=secret_for(config, access_key_id),
        policies=policies,
        is_sts=True,
        expiration=expiration,
        role_session_name=payload.get("sn"),
        assumed_role_id=f"{_role_id(str(payload.get('arn', '')))}:{payload.get('sn')}",
        role_arn=str(payload.get("arn", "")),
    )


def assumed_role_identity(role_arn: str, role_session_name: str) -> tuple[str, str]:
    """(AssumedRoleUser.Arn, AssumedRoleUser.AssumedRoleId) of a session of `role_arn`."""
    return _assumed_role_arn(role_arn, role_session_name), f"{_role_id(role_arn)}:{role_session_name}"


def secret_for(config: SandboxConfig, access_key_id: str) -> str:
    """The secret of an STS access key id: a pure function of the id and the master key."""
    digest = hmac.new(_master_key(config), b"secret\x00" + access_key_id.encode(), hashlib.sha512).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(_SECRET_LENGTH):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


# --- internals ----------------------------------------------------------------------------


def _master_key(config: SandboxConfig) -> bytes:
    """Key for token MACs and STS secrets, bound to the RAM user's key pair."""
    return hmac.new(
        config.access_key_secret.encode(),
        b"uploads-sandbox/sts-master-key/v1\x00" + config.access_key_id.encode(),
        hashlib.sha256,
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(config: SandboxConfig, body: str) -> bytes:
    return hmac.new(_master_key(config), b"token\x00" + body.encode("ascii"), hashlib.sha256).digest()


def _seal(config: SandboxConfig, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{_TOKEN_PREFIX}{body}.{_b64(_mac(config, body))}"


def _unseal(config: SandboxConfig, token: str) -> dict[str, Any]:
    invalid = CredentialError("InvalidSecurityToken", "The security token you provided is invalid.")
    if not token.startswith(_TOKEN_PREFIX) or token.count(".") != 1:
        raise invalid
    body, _, mac = token[len(_TOKEN_PREFIX) :].partition(".")
    try:
        body.encode("ascii")
        ok = hmac.compare_digest(_unb64(mac), _mac(config, body))
        payload = json.loads(_unb64(body)) if ok else None
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not isinstance(payload, dict) or payload.get("v") != _PAYLOAD_VERSION:
        raise invalid
    if not isinstance(payload.get("exp"), int) or not isinstance(payload.get("ak"), str):
        raise invalid
    return payload


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _role_id(role_arn: str) -> str:
    """A stable 18-digit role id, like RAM's, derived from the ARN."""
    number = int.from_bytes(hashlib.sha256(role_arn.lower().encode()).digest()[:8], "big")
    return f"3{number % 10**17:017d}"


def _assumed_role_arn(role_arn: str, session_name: str) -> str:
    # acs:ram::<account>:role/<name>  ->  acs:ram::<account>:assumed-role/<name>/<session>
    prefix, _, role_name = role_arn.rpartition(":role/")
    return f"{prefix}:assumed-role/{role_name}/{session_name}"
