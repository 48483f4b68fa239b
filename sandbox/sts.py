"""The sandbox's STS endpoint: AssumeRole as alibabacloud-sts20150401 sends it.

`POST /` (GET works too, as for any Alibaba RPC API) with the business
parameters in the query string, signed either with ACS3-HMAC-SHA256 in the
`Authorization` header (the SDK's default) or with the legacy HMAC-SHA1 query
signature (`Config(signature_algorithm='v2')`). It refuses what STS refuses,
with STS's codes and HTTP statuses, and never answers a bad request with a
traceback. `GET /__sandbox__/stats` exposes the fault counters for benchmarks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from core.aliyun_names import ROLE_ARN, ROLE_SESSION_NAME
from sandbox import ram
from sandbox.config import SandboxConfig
from sandbox.policy import PolicyGrammarError, parse_policy
from sandbox.tokens import issue_credentials

__all__ = ["StsError", "make_sts_app"]

logger = logging.getLogger(__name__)

API_VERSION = "2015-04-01"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_POLICY_CHARS = 2048
MIN_DURATION_SECONDS = 900
DEFAULT_DURATION_SECONDS = 3600
MAX_BODY_BYTES = 64 * 1024
STATS_PATH = "/__sandbox__/stats"

_ACS3 = "ACS3-HMAC-SHA256"
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class StsError(Exception):
    """An answer STS would give instead of credentials."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


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
        try:
            if request.path == STATS_PATH and request.method == "GET":
                response = _json_response(200, config.faults.snapshot(), request_id)
            else:
                response = _handle(config, nonces, request, request_id)
        except StsError as exc:
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


def _handle(config: SandboxConfig, nonces: _NonceCache, request: Request, request_id: str) -> Response:
    if request.path != "/" or request.method not in ("POST", "GET"):
        raise StsError(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )

    faults = config.faults
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    outcome = faults.next_call()
    if outcome == "fail":
        raise StsError(500, "InternalError", "The request processing has failed due to some unknown error.")
    if outcome == "throttle":
        return _throttle_response(request, request_id, faults.throttle_retry_after_ms)

    body = request.get_data(cache=True, parse_form_data=False)
    params = _parameters(request)
    action, access_key_id = _authenticate(config, nonces, request, params, body)
    version = request.headers.get("x-acs-version") or params.get("Version")
    if version == ram.API_VERSION:  # RAM is an RPC API too: the same port answers it
        try:
            answer = ram.handle_ram_action(config, action, params)
        except ram.RamError as exc:
            raise StsError(exc.status, exc.code, exc.message) from None
        return _json_response(200, {"RequestId": request_id, **answer}, request_id)
    if version != API_VERSION:
        raise StsError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    if action == "GetCallerIdentity":
        return _caller_identity(config, request_id, access_key_id)
    if action != "AssumeRole":
        raise StsError(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )
    return _assume_role(config, params, request_id, access_key_id)


def _caller_identity(config: SandboxConfig, request_id: str, access_key_id: str) -> Response:
    """GetCallerIdentity for the RAM user owning the key (what `aliyun_setup` asks first)."""
    store = config.ram
    user_name = store.user_of_key(access_key_id) or ""
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
) -> tuple[str | None, str]:
    """Verify the signature; return (action, access key id) of the caller."""
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
) -> tuple[str | None, str]:
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
    secret = _secret_of(config, access_key_id)

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
    return request.headers.get("x-acs-action"), access_key_id


def _authenticate_rpc_v2(
    config: SandboxConfig,
    nonces: _NonceCache,
    request: Request,
    params: Mapping[str, str],
) -> tuple[str | None, str]:
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
    secret = _secret_of(config, access_key_id)

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
    return params.get("Action"), access_key_id


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """ACS3 canonical query: decoded pairs, sorted, values re-encoded with %20 for spaces."""
    return "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))


def _secret_of(config: SandboxConfig, access_key_id: str) -> str:
    """Only the configured RAM user may call STS here (no role chaining)."""
    if access_key_id != config.access_key_id:
        raise StsError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    return config.access_key_secret


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


def _assume_role(config: SandboxConfig, params: Mapping[str, str], request_id: str, caller: str) -> Response:
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
    session_policy = _session_policy(params.get("Policy"))
    try:  # the role must exist, let the caller in (its policies and the role's trust policy)
        role_arn, role_max = config.ram.check_assume_role(caller_key=caller, role_arn=role_arn)
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
    # Never log the secret or the token: the key id and session are enough to trace.
    logger.info(
        "sandbox STS: AssumeRole by %s issued %s for session %s (%ss, session policy: %s)",
        caller,
        credentials.access_key_id,
        session_name,
        duration,
        "yes" if session_policy is not None else "no",
    )
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


def _duration(text: str | None, role_max: int) -> int:
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
            f"currently {text}.",
        )
    return duration


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
