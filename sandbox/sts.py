"""The sandbox's STS endpoint: AssumeRole as alibabacloud-sts20150401 sends it.

`POST /` (GET works too, as for any Alibaba RPC API) with the business
parameters in the query string, signed either with ACS3-HMAC-SHA256 in the
`Authorization` header (the SDK's default) or with the legacy HMAC-SHA1 query
signature (`Config(signature_algorithm='v2')`). It refuses what STS refuses,
with STS's codes and HTTP statuses, and never answers a bad request with a
traceback. `GET /__sandbox__/stats` exposes the fault counters for benchmarks.

Callers: the RAM user's long-term key, or temporary credentials (an `STS.` AccessKeyId with its
security token in `x-acs-security-token`, or `SecurityToken` in an HMAC-SHA1 query) that this
sandbox minted and that have not expired; AssumeRole by such a role session is role chaining,
judged against the calling role's policies and the target role's trust policy, and limited to
3600 s. `AssumeRoleWithOIDC` is unsigned (`sandbox/oidc.py`). Past
`Faults.meter.max_calls_per_second` AssumeRole* calls in a second the answer is `Throttling.User`.
Each AssumeRole* call, granted or refused, is logged with the kind of key that signed it
("long-term", "sts", "oidc") and its AccessKeyId, never a secret or a token.

Run-time switches and helpers on the same port (loopback only, like the rest):
- `POST /__sandbox__/faults` with a JSON object of `Faults.configure` arguments (and
  `"reset_stats": true` to zero the per-second counts); answers the stats.
- `GET /__sandbox__/credentials`: what `ALIBABA_CLOUD_CREDENTIALS_URI` expects, temporary
  credentials of the server role (`SandboxConfig.server_role_name`), like a credentials sidecar.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from core.aliyun_names import ROLE_ARN, ROLE_SESSION_NAME
from sandbox import ram
from sandbox.config import SandboxConfig
from sandbox.oidc import OidcError
from sandbox.policy import Policy, PolicyGrammarError, parse_policy
from sandbox.tokens import (
    STS_PREFIX,
    CredentialError,
    assumed_role_identity,
    issue_credentials,
    resolve_principal,
)

__all__ = ["StsError", "make_sts_app"]

logger = logging.getLogger(__name__)

API_VERSION = "2015-04-01"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_POLICY_CHARS = 2048
MIN_DURATION_SECONDS = 900
DEFAULT_DURATION_SECONDS = 3600
MAX_BODY_BYTES = 64 * 1024
STATS_PATH = "/__sandbox__/stats"
FAULTS_PATH = "/__sandbox__/faults"
CREDENTIALS_URI_PATH = "/__sandbox__/credentials"
# A role assumed with role credentials (role chaining) gets at most an hour, whatever the role's
# MaxSessionDuration (aliyun-facts.md; RAM's "How do I adjust session durations and STS token
# validity periods?"). The refusal's code is not documented where we could read it; the sandbox
# answers the out-of-range code STS documents for DurationSeconds.
CHAINED_MAX_DURATION_SECONDS = 3600
_ASSUME_ACTIONS = ("AssumeRole", "AssumeRoleWithOIDC")

_ACS3 = "ACS3-HMAC-SHA256"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class StsError(Exception):
    """An answer STS would give instead of credentials."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Caller:
    """Who signed a call: the RAM user's long-term key, or a role session (`STS.` key + token)."""

    access_key_id: str
    secret: str = field(repr=False)
    kind: str  # "long-term" or "sts" (sts_meter.CALLER_KINDS)
    role_arn: str | None = None
    role_session_name: str | None = None
    policies: list[Policy] = field(default_factory=list, repr=False)

    def describe(self) -> str:
        """For log lines: the key's kind and id, and for a role session its role and session."""
        if self.kind == "sts":
            return f"sts key {self.access_key_id} (role {self.role_arn}, session {self.role_session_name})"
        return f"long-term key {self.access_key_id}"


class _NonceCache:
    """Remembers signature nonces for the skew window, to refuse replays like STS."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()
        self._lock = threading.Lock()

    def use(self, access_key_id: str, nonce: str) -> bool:
        """Record the nonce; False if it was already used within the window."""
        now = time.monotonic()
        horizon = now - 2 * MAX_CLOCK_SKEW.total_seconds()
        key = (access_key_id, nonce)
        with self._lock:
            while self._order and self._order[0][0] < horizon:  # forget expired nonces, oldest first
                _, old = self._order.popleft()
                if self._seen.get(old, now) < horizon:
                    del self._seen[old]
            if key in self._seen:
                return False
            self._seen[key] = now
            self._order.append((now, key))
            return True


def make_sts_app(config: SandboxConfig) -> Any:
    """Build the WSGI application serving STS for `config`."""
    nonces = _NonceCache()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY_BYTES
        request_id = str(uuid.uuid4()).upper()
        trace: dict[str, str] = {}
        try:
            if request.path == STATS_PATH and request.method == "GET":
                response = _json_response(200, config.faults.snapshot(), request_id)
            elif request.path == FAULTS_PATH and request.method == "POST":
                response = _configure_faults(config, request, request_id)
            elif request.path == CREDENTIALS_URI_PATH and request.method == "GET":
                response = _credentials_uri(config, request, request_id)
            else:
                response = _handle(config, nonces, request, request_id, trace)
        except StsError as exc:
            if trace.get("action") in _ASSUME_ACTIONS:
                # What a refusal looks like in the log: the code, never the message (which may
                # quote a string to sign) nor any secret.
                logger.warning(
                    "sandbox STS: %s refused %s %s, caller %s",
                    trace["action"],
                    exc.status,
                    exc.code,
                    trace.get("caller", "unknown"),
                )
            response = _error_response(request, request_id, exc)
        except HTTPException as exc:  # e.g. body too large
            response = _error_response(
                request,
                request_id,
                StsError(exc.code or 400, "InvalidParameter", exc.description or exc.name),
            )
        except Exception:
            logger.exception("sandbox STS: unexpected error (request %s)", request_id)
            response = _error_response(
                request,
                request_id,
                StsError(
                    500, "InternalError", "The request processing has failed due to some unknown error."
                ),
            )
        # Every answer carries the sandbox's own clock, which `aliyun_doctor` compares with ours.
        response.headers["Date"] = http_date(config.faults.now())
        return response(environ, start_response)

    return app


# --- request handling ---------------------------------------------------------------------


def _handle(
    config: SandboxConfig, nonces: _NonceCache, request: Request, request_id: str, trace: dict[str, str]
) -> Response:
    if request.path != "/" or request.method not in ("POST", "GET"):
        raise StsError(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )

    faults = config.faults
    arrived = time.monotonic()  # what the quota counts: the call's arrival, not the end of its latency
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    outcome = faults.next_call()
    if outcome == "fail":
        raise StsError(500, "InternalError", "The request processing has failed due to some unknown error.")
    if outcome == "throttle":
        return _throttle_response(request, request_id, faults.throttle_retry_after_ms)

    body = request.get_data(cache=True, parse_form_data=False)
    params = _parameters(request)
    version = request.headers.get("x-acs-version") or params.get("Version")
    if (request.headers.get("x-acs-action") or params.get("Action")) == "AssumeRoleWithOIDC":
        # Anonymous, as STS documents it: the OIDC token is the proof, no AccessKey signs it.
        trace.update(action="AssumeRoleWithOIDC", caller="unsigned (OIDC token)")
        if version != API_VERSION:
            raise StsError(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if not faults.meter.admit("oidc", arrived=arrived):
            return _throttle_response(request, request_id, faults.throttle_retry_after_ms)
        return _assume_role_with_oidc(config, params, request_id)
    action, caller = _authenticate(config, nonces, request, params, body)
    trace.update(action=action or "", caller=caller.describe())
    if version == ram.API_VERSION:  # RAM is an RPC API too: the same port answers it
        if caller.kind != "long-term":
            raise StsError(403, "NoPermission", ram.NO_PERMISSION)
        try:
            answer = ram.handle_ram_action(config, action, params)
        except ram.RamError as exc:
            raise StsError(exc.status, exc.code, exc.message) from None
        return _json_response(200, {"RequestId": request_id, **answer}, request_id)
    if version != API_VERSION:
        raise StsError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    if action == "GetCallerIdentity":
        return _caller_identity(config, request_id, caller)
    if action != "AssumeRole":
        raise StsError(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )
    if not faults.meter.admit(caller.kind, arrived=arrived):
        return _throttle_response(request, request_id, faults.throttle_retry_after_ms)
    return _assume_role(config, params, request_id, caller)


def _caller_identity(config: SandboxConfig, request_id: str, caller: _Caller) -> Response:
    """GetCallerIdentity for the RAM user owning the key (what `aliyun_setup` asks first), or for
    a role session (what a server running on temporary credentials sees: `AssumedRoleUser`)."""
    store = config.ram
    if caller.kind == "sts" and caller.role_arn and caller.role_session_name:
        arn, principal_id = assumed_role_identity(caller.role_arn, caller.role_session_name)
        return _json_response(
            200,
            {
                "RequestId": request_id,
                "AccountId": store.account_id,
                "Arn": arn,
                "IdentityType": "AssumedRoleUser",
                "PrincipalId": principal_id,
                "RoleId": principal_id.partition(":")[0],
            },
            request_id,
        )
    user_name = store.user_of_key(caller.access_key_id) or ""
    user_id = store.call("GetUser", {"UserName": user_name})["User"]["UserId"] if user_name else ""
    return _json_response(
        200,
        {
            "RequestId": request_id,
            "AccountId": store.account_id,
            "Arn": store.user_arn(user_name),
            "IdentityType": "RAMUser",
            "PrincipalId": user_id,
            "UserId": user_id,
        },
        request_id,
    )


def _parameters(request: Request) -> dict[str, str]:
    """Business parameters: the query string, plus a form body if one was sent."""
    params = {key: request.args.get(key, "") for key in request.args}
    if request.mimetype == "application/x-www-form-urlencoded":
        for key in request.form:
            params.setdefault(key, request.form.get(key, ""))
    return params


def _authenticate(
    config: SandboxConfig,
    nonces: _NonceCache,
    request: Request,
    params: Mapping[str, str],
    body: bytes,
) -> tuple[str | None, _Caller]:
    """Verify the signature; return (action, caller)."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("ACS3-"):
        return _authenticate_acs3(config, nonces, request, authorization, body)
    if "Signature" in params:
        return _authenticate_rpc_v2(config, nonces, request, params)
    raise StsError(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")


def _authenticate_acs3(
    config: SandboxConfig,
    nonces: _NonceCache,
    request: Request,
    authorization: str,
    body: bytes,
) -> tuple[str | None, _Caller]:
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != _ACS3:
        raise StsError(
            400, "InvalidSignatureMethod", f"The signature algorithm {algorithm} is not supported."
        )
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
    access_key_id = fields.get("Credential", "")
    signed_names = [n.strip().lower() for n in fields.get("SignedHeaders", "").split(";") if n.strip()]
    signature = fields.get("Signature", "")
    if not access_key_id or not signed_names or not signature:
        raise StsError(
            400, "IncompleteSignature", "The request signature does not conform to Aliyun standards."
        )

    _check_timestamp(request.headers.get("x-acs-date"), config.faults.now())
    caller = _caller_of(config, access_key_id, request.headers.get("x-acs-security-token"))
    secret = caller.secret

    payload_hash = hashlib.sha256(body).hexdigest()
    claimed_hash = request.headers.get("x-acs-content-sha256")
    if claimed_hash is not None and claimed_hash.lower() != payload_hash:
        raise StsError(
            400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the request body."
        )
    # Alibaba requires host and every x-acs-* header to be covered by the signature.
    required = {"host"} | {
        name.lower() for name in request.headers.keys() if name.lower().startswith("x-acs-")
    }
    unsigned = sorted(required - set(signed_names))
    if unsigned:
        raise StsError(400, "SignatureDoesNotMatch", f"Header(s) not signed: {', '.join(unsigned)}.")

    canonical_headers = ""
    for name in signed_names:
        values = request.headers.getlist(name)
        if not values:
            raise StsError(400, "SignatureDoesNotMatch", f"Signed header {name} is missing.")
        canonical_headers += f"{name}:{','.join(sorted(v.strip() for v in values))}\n"
    canonical_request = "\n".join(
        [
            request.method,
            request.path or "/",
            _canonical_query(request.args.items(multi=True)),
            canonical_headers,
            ";".join(signed_names),
            payload_hash,
        ]
    )
    string_to_sign = f"{_ACS3}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise StsError(
            400,
            "SignatureDoesNotMatch",
            f"Specified signature does not match our calculation. server string to sign is:{string_to_sign}",
        )
    _check_nonce(nonces, access_key_id, request.headers.get("x-acs-signature-nonce"))
    return request.headers.get("x-acs-action"), caller


def _authenticate_rpc_v2(
    config: SandboxConfig,
    nonces: _NonceCache,
    request: Request,
    params: Mapping[str, str],
) -> tuple[str | None, _Caller]:
    if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
        raise StsError(
            400,
            "InvalidSignatureMethod",
            "Only SignatureMethod=HMAC-SHA1 with SignatureVersion=1.0 is supported.",
        )
    access_key_id = params.get("AccessKeyId", "")
    if not access_key_id:
        raise StsError(400, "MissingAccessKeyId", "AccessKeyId is mandatory for this action.")
    _check_timestamp(params.get("Timestamp"), config.faults.now())
    caller = _caller_of(config, access_key_id, params.get("SecurityToken"))
    secret = caller.secret

    signed = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in signed)
    string_to_sign = f"{request.method}&%2F&{quote(canonical, safe='~')}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
        raise StsError(
            400,
            "SignatureDoesNotMatch",
            f"Specified signature does not match our calculation. server string to sign is:{string_to_sign}",
        )
    _check_nonce(nonces, access_key_id, params.get("SignatureNonce"))
    return params.get("Action"), caller


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """ACS3 canonical query: decoded pairs, sorted, values re-encoded with %20 for spaces."""
    return "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))


def _caller_of(config: SandboxConfig, access_key_id: str, security_token: str | None) -> _Caller:
    """The configured RAM user's key, or an unexpired `STS.` key this sandbox minted with its token.

    A token that is not ours, belongs to another key or has expired is refused before the
    signature is checked. Alibaba's API gateway answers these `InvalidParameter` with "The
    specified parameter "SecurityToken.Expired" is not valid." (seen in public reports of ECS
    calls through the same gateway; the Malformed/Mismatch variants are the same shape, guessed).
    """
    if access_key_id == config.access_key_id and not security_token:
        return _Caller(access_key_id=access_key_id, secret=config.access_key_secret, kind="long-term")
    if not access_key_id.startswith(STS_PREFIX):
        if access_key_id == config.access_key_id:
            raise _bad_token("SecurityToken.Malformed")
        raise StsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if not security_token:
        raise StsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    try:
        principal = resolve_principal(
            config, access_key_id=access_key_id, security_token=security_token, now=config.faults.now()
        )
    except CredentialError as exc:
        if exc.code == "SecurityTokenExpired":
            raise _bad_token("SecurityToken.Expired") from None
        if "does not belong" in exc.message:
            raise _bad_token("SecurityToken.MismatchWithAccessKey") from None
        raise _bad_token("SecurityToken.Malformed") from None
    return _Caller(
        access_key_id=access_key_id,
        secret=principal.secret,
        kind="sts",
        role_arn=principal.role_arn,
        role_session_name=principal.role_session_name,
        policies=list(principal.policies),
    )


def _bad_token(name: str) -> StsError:
    return StsError(400, "InvalidParameter", f'The specified parameter "{name}" is not valid.')


def _check_timestamp(value: str | None, now: datetime) -> None:
    if not value:
        raise StsError(400, "MissingTimestamp", "Timestamp is mandatory for this action.")
    try:
        sent = datetime.strptime(value, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise StsError(
            400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        ) from None
    if abs(now - sent) > MAX_CLOCK_SKEW:
        raise StsError(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")


def _check_nonce(nonces: _NonceCache, access_key_id: str, nonce: str | None) -> None:
    """A signed request without a nonce could be replayed for the whole skew window: refuse it."""
    if not nonce:
        raise StsError(400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action.")
    if not nonces.use(access_key_id, nonce):
        raise StsError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def _assume_role(
    config: SandboxConfig, params: Mapping[str, str], request_id: str, caller: _Caller
) -> Response:
    role_arn, session_name, session_policy = _role_parameters(params)
    chained = caller.kind == "sts"
    try:  # the role must exist, let the caller in (its policies and the role's trust policy)
        role_arn, role_max = config.ram.check_assume_role(
            caller_key=caller.access_key_id,
            role_arn=role_arn,
            caller_role_arn=caller.role_arn if chained else None,
            caller_policies=caller.policies if chained else None,
        )
    except ram.RamError as exc:
        raise StsError(exc.status, exc.code, exc.message) from None
    if chained:
        role_max = min(role_max, CHAINED_MAX_DURATION_SECONDS)
    duration = _duration(params.get("DurationSeconds"), role_max, chained=chained)
    credentials = issue_credentials(
        config,
        role_session_name=session_name,
        session_policy=session_policy,
        duration_seconds=duration,
        role_arn=role_arn,
        now=config.faults.now(),
    )
    config.faults.record_issued()
    # Never log the secret or the token: the key ids and the session are enough to trace.
    logger.info(
        "sandbox STS: AssumeRole by %s issued %s for %s session %s (%ss, session policy: %s%s)",
        caller.describe(),
        credentials.access_key_id,
        role_arn,
        session_name,
        duration,
        "yes" if session_policy is not None else "no",
        ", role chaining" if chained else "",
    )
    return _credentials_response(request_id, credentials)


def _assume_role_with_oidc(config: SandboxConfig, params: Mapping[str, str], request_id: str) -> Response:
    """AssumeRoleWithOIDC: the provider must exist, the token verify against it, the role trust it."""
    provider_arn = params.get("OIDCProviderArn", "")
    if not provider_arn:
        raise StsError(400, "MissingOIDCProviderArn", "OIDCProviderArn is mandatory for this action.")
    params = dict(params)
    if not params.get("RoleSessionName"):  # optional for AssumeRoleWithOIDC
        params["RoleSessionName"] = "oidc-session"
    role_arn, session_name, session_policy = _role_parameters(params)
    provider = config.ram.oidc_provider(provider_arn)
    if provider is None:
        raise StsError(401, "AuthenticationFail.NoPermission", "No such OIDC Provider registered.")
    try:
        claims = config.oidc.verify(
            params.get("OIDCToken", ""), issuer=provider["IssuerUrl"], audiences=list(provider["ClientIds"])
        )
    except OidcError as exc:
        raise StsError(exc.status, exc.code, exc.message) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    audience = next(a for a in map(str, audiences) if a in provider["ClientIds"])
    context = {"oidc:iss": claims["iss"], "oidc:aud": audience, "oidc:sub": claims["sub"]}
    try:
        role_arn, role_max = config.ram.check_assume_role_with_oidc(
            role_arn=role_arn, provider_arn=provider_arn, context=context
        )
    except ram.RamError as exc:
        raise StsError(exc.status, exc.code, exc.message) from None
    duration = _duration(params.get("DurationSeconds"), role_max)
    credentials = issue_credentials(
        config,
        role_session_name=session_name,
        session_policy=session_policy,
        duration_seconds=duration,
        role_arn=role_arn,
        now=config.faults.now(),
    )
    config.faults.record_issued()
    logger.info(
        "sandbox STS: AssumeRoleWithOIDC by unsigned (OIDC token, sub %s, provider %s) issued %s for %s "
        "session %s (%ss, session policy: %s)",
        claims["sub"],
        provider_arn,
        credentials.access_key_id,
        role_arn,
        session_name,
        duration,
        "yes" if session_policy is not None else "no",
    )
    return _credentials_response(
        request_id,
        credentials,
        OIDCTokenInfo={
            "Subject": claims["sub"],
            "Issuer": claims["iss"],
            "ClientIds": audience,
            "IssuanceTime": datetime.fromtimestamp(claims["iat"], UTC).strftime(_TIMESTAMP_FORMAT),
            "ExpirationTime": datetime.fromtimestamp(claims["exp"], UTC).strftime(_TIMESTAMP_FORMAT),
        },
    )


def _role_parameters(params: Mapping[str, str]) -> tuple[str, str, dict[str, Any] | None]:
    """RoleArn, RoleSessionName and Policy, checked as STS checks them."""
    role_arn = params.get("RoleArn", "")
    if not role_arn:
        raise StsError(400, "MissingRoleArn", "RoleArn is mandatory for this action.")
    if not ROLE_ARN.match(role_arn):
        raise StsError(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.")
    session_name = params.get("RoleSessionName", "")
    if not session_name:
        raise StsError(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")
    if not ROLE_SESSION_NAME.match(session_name):
        raise StsError(
            400,
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed: 2-64 characters of A-Za-z0-9.@-_ are allowed.",
        )
    return role_arn, session_name, _session_policy(params.get("Policy"))


def _credentials_response(request_id: str, credentials: Any, **extra: Any) -> Response:
    return _json_response(
        200,
        {
            "RequestId": request_id,
            "AssumedRoleUser": {
                "Arn": credentials.assumed_role_arn,
                "AssumedRoleId": credentials.assumed_role_id,
            },
            "Credentials": {
                "AccessKeyId": credentials.access_key_id,
                "AccessKeySecret": credentials.access_key_secret,
                "SecurityToken": credentials.security_token,
                "Expiration": credentials.expiration.strftime(_TIMESTAMP_FORMAT),
            },
            **extra,
        },
        request_id,
    )


def _session_policy(text: str | None) -> dict[str, Any] | None:
    # An empty Policy is treated as absent, as the SDK sends one when given "".
    if not text:
        return None
    if len(text) > MAX_POLICY_CHARS:
        raise StsError(
            400,
            "InvalidParameter.PolicySize",
            f"The size of Policy must be smaller than {MAX_POLICY_CHARS} characters.",
        )
    try:
        return parse_policy(text).document
    except PolicyGrammarError as exc:
        raise StsError(
            400, "InvalidParameter.PolicyGrammar", f"The parameter Policy has not passed grammar check: {exc}"
        ) from None


def _duration(text: str | None, role_max: int, *, chained: bool = False) -> int:
    if text is None or text == "":
        duration = DEFAULT_DURATION_SECONDS
    else:
        try:
            duration = int(text)
        except ValueError:
            duration = -1
    if not MIN_DURATION_SECONDS <= duration <= role_max:
        raise StsError(
            400,
            "InvalidParameter.DurationSeconds",
            f"The Min/Max value of DurationSeconds is {MIN_DURATION_SECONDS}/{role_max} seconds, "
            f"currently {text}."
            + (" A role assumed with role credentials gets at most 3600 s." if chained else ""),
        )
    return duration


# --- run-time switches and the credentials URI --------------------------------------------


_FAULT_SWITCHES = (
    "latency_ms",
    "throttle_every",
    "fail_every",
    "throttle_retry_after_ms",
    "clock_skew_seconds",
    "sts_max_calls_per_second",
    "sts_rate_window",
)


def _configure_faults(config: SandboxConfig, request: Request, request_id: str) -> Response:
    """`POST /__sandbox__/faults` {"sts_max_calls_per_second": 100, ...}: change switches now."""
    try:
        body = json.loads(request.get_data(cache=False) or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StsError(400, "InvalidParameter", "The body must be a JSON object of fault switches.")
    reset = body.pop("reset_stats", False)
    unknown = sorted(set(body) - set(_FAULT_SWITCHES))
    if unknown or not isinstance(reset, bool):
        raise StsError(
            400, "InvalidParameter", f"Unknown switch(es) {unknown}; known: {', '.join(_FAULT_SWITCHES)}."
        )
    for name, value in body.items():
        valid = isinstance(value, str) if name == "sts_rate_window" else _is_number(value)
        if not valid or (
            name not in ("latency_ms", "clock_skew_seconds", "sts_rate_window") and value != int(value)
        ):
            raise StsError(400, "InvalidParameter", f"Switch {name} has an invalid value.")
    try:
        config.faults.configure(**body)
    except ValueError as exc:
        raise StsError(400, "InvalidParameter", str(exc)) from None
    if reset:
        config.faults.meter.reset()
    logger.info(
        "sandbox STS: fault switches changed: %s", ", ".join(f"{k}={v}" for k, v in sorted(body.items()))
    )
    return _json_response(200, config.faults.snapshot(), request_id)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _credentials_uri(config: SandboxConfig, request: Request, request_id: str) -> Response:
    """Temporary credentials of the server role, in the JSON `alibabacloud-credentials`' URI
    provider parses: `Code` "Success", `AccessKeyId`, `AccessKeySecret`, `SecurityToken`,
    `Expiration` (`%Y-%m-%dT%H:%M:%SZ`). `?duration_seconds=` 900..3600 (default 3600).

    It stands for a local credentials sidecar, which holds the server's identity itself: the
    call is not an AssumeRole call and does not count against the STS budget.
    """
    text = request.args.get("duration_seconds", str(DEFAULT_DURATION_SECONDS))
    duration = int(text) if text.isascii() and text.isdigit() else 0
    if not MIN_DURATION_SECONDS <= duration <= CHAINED_MAX_DURATION_SECONDS:
        return _json_response(
            400,
            {"Code": "InvalidParameter", "Message": "duration_seconds must be within 900..3600."},
            request_id,
        )
    role_arn = config.server_role_arn
    if config.ram.role_policy(role_arn) is None:
        return _json_response(
            404, {"Code": "EntityNotExist.Role", "Message": f"The role not exists: {role_arn}."}, request_id
        )
    credentials = issue_credentials(
        config,
        role_session_name="credentials-uri",
        session_policy=None,
        duration_seconds=duration,
        role_arn=role_arn,
        now=config.faults.now(),
    )
    logger.info(
        "sandbox STS: credentials URI issued %s for %s (%ss)", credentials.access_key_id, role_arn, duration
    )
    return _json_response(
        200,
        {
            "Code": "Success",
            "AccessKeyId": credentials.access_key_id,
            "AccessKeySecret": credentials.access_key_secret,
            "SecurityToken": credentials.security_token,
            "Expiration": credentials.expiration.strftime(_TIMESTAMP_FORMAT),
        },
        request_id,
    )


# --- responses ----------------------------------------------------------------------------


def _json_response(status: int, body: Mapping[str, Any], request_id: str) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json;charset=utf-8",
    )
    response.headers["x-acs-request-id"] = request_id
    return response


def _error_response(request: Request, request_id: str, error: StsError) -> Response:
    return _json_response(
        error.status,
        {
            "RequestId": request_id,
            "HostId": request.host or "sts.aliyuncs.com",
            "Code": error.code,
            "Message": error.message,
        },
        request_id,
    )


def _throttle_response(request: Request, request_id: str, retry_after_ms: int) -> Response:
    """`Throttling.User`, HTTP 400, as STS answers past 100 AssumeRole calls/s.

    With an `x-acs-retry-after` header (milliseconds), tea-openapi 0.4.6 raises
    `ThrottlingException(code="Throttling.User", retry_after=ms)` (not a
    ClientException subclass) and a configured retry policy waits that long;
    without the header the same answer raises a plain `ClientException`.
    Whether STS itself sends the header is unconfirmed (so is the code, per
    aliyun-facts.md), so the sandbox sends it by default to exercise the path
    the SDK was built for, and `Faults.throttle_retry_after_ms = 0` gives the
    header-less answer: callers must handle both.
    """
    response = _error_response(
        request,
        request_id,
        StsError(400, "Throttling.User", "Request was denied due to user flow control."),
    )
    if retry_after_ms > 0:
        response.headers["x-acs-retry-after"] = str(retry_after_ms)
    return response
