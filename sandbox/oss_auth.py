"""OSS request-signature verification (V1, V4; header, presigned query, PostObject form).

Pure functions with no HTTP framework in sight, so every rule below can be read next to the SDK
code it mirrors (oss2 ``auth.py``, alibabacloud-oss-v2 ``signer/v1.py``/``v4.py``, ali-oss
``signUtils.js``). The sandbox answers "does this signature verify for this (bucket, key)?"; the
caller tries the addressings a path allows and keeps the one the client actually signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
V4_PRODUCT = "oss"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGN_V4_SECONDS = 7 * 24 * 3600

# Query parameters that take part in the V1 canonical resource: the union of what oss2 and
# alibabacloud-oss-v2 treat as sub-resources, restricted to those this sandbox can meet.
V1_SUBRESOURCES = frozenset(
    {
        "acl", "append", "bucketInfo", "callback", "callback-var", "continuation-token", "cors",
        "delete", "encryption", "lifecycle", "location", "logging", "objectMeta", "partNumber",
        "policy", "position", "referer", "regionList", "resourceGroup", "response-cache-control",
        "response-content-disposition", "response-content-encoding", "response-content-language",
        "response-content-type", "response-expires", "restore", "security-token", "sequential",
        "stat", "symlink", "tagging", "uploadId", "uploads", "versionId", "versioning",
        "versions", "website", "x-oss-process", "x-oss-traffic-limit", "worm", "wormId",
    }
)  # fmt: skip


class AuthError(Exception):
    """A request that fails authentication; carries Alibaba's error code and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra


@dataclass(frozen=True)
class RequestFacts:
    """The parts of an HTTP request that OSS signatures cover.

    ``headers`` has lower-case names and the raw (latin-1 round-tripped) values; ``query`` keeps
    the decoded pairs in order, an empty value standing for a bare key (``?uploads``).
    """

    method: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Credential:
    """Who claims to sign, and how to check it once the secret is known."""

    access_key_id: str
    signature: str
    version: str  # "v1" or "v4"
    security_token: str | None = None
    additional_headers: tuple[str, ...] = ()
    v4_date: str = ""  # yyyymmdd from the credential scope
    v4_region: str = ""
    v4_datetime: str = ""  # yyyymmddTHHMMSSZ that was signed
    v1_date_slot: str | None = None  # the value in the Date slot (Expires for presigned URLs)
    presigned: bool = False
    drop_query: frozenset[str] = field(default_factory=frozenset)


# --------------------------------------------------------------------------- primitives


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``"²".isdigit()`` is True but ``int("²")`` raises."""
    return text.isascii() and text.isdigit()


def _raw(value: str) -> bytes:
    """Header values arrive latin-1 decoded (WSGI); sign the bytes the client sent."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def v1_sign(secret: str, data: bytes | str) -> str:
    """base64(HMAC-SHA1(secret, data)): V1 headers, V1 presigned URLs and V1 PostObject."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(hmac.new(secret.encode("utf-8"), payload, hashlib.sha1).digest()).decode()


def v4_signing_key(secret: str, date: str, region: str, product: str = V4_PRODUCT) -> bytes:
    """The V4 HMAC chain: "aliyun_v4"+secret → date → region → product → terminator."""
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, product, V4_TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def v4_sign(secret: str, date: str, region: str, string_to_sign: bytes | str) -> str:
    """hex(HMAC-SHA256(signing key, string to sign)): V4 requests and V4 PostObject."""
    payload = string_to_sign.encode("utf-8") if isinstance(string_to_sign, str) else string_to_sign
    return hmac.new(v4_signing_key(secret, date, region), payload, hashlib.sha256).hexdigest()


def _v4_encode(text: str, keep_slash: bool) -> str:
    return quote(text, safe="/" if keep_slash else "")


def _resource_path(bucket: str | None, key: str) -> str:
    if not bucket:
        return "/"
    return f"/{bucket}/{key}"


def _same(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), provided.encode("utf-8"))


# --------------------------------------------------------------------------- V1


def v1_string_to_sign(facts: RequestFacts, bucket: str | None, key: str, date_slot: str) -> bytes:
    """VERB, Content-MD5, Content-Type, date slot, sorted x-oss-* headers, canonical resource."""
    oss_headers = sorted((name, value) for name, value in facts.headers.items() if name.startswith("x-oss-"))
    canon_headers = b"".join(name.encode() + b":" + _raw(value) + b"\n" for name, value in oss_headers)
    subresources = sorted((k, v) for k, v in facts.query if k in V1_SUBRESOURCES)
    resource = _resource_path(bucket, key)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    return b"\n".join(
        [
            facts.method.encode(),
            _raw(facts.headers.get("content-md5", "")),
            _raw(facts.headers.get("content-type", "")),
            _raw(date_slot),
            canon_headers + resource.encode("utf-8"),
        ]
    )


# --------------------------------------------------------------------------- V4


def v4_canonical_request(
    facts: RequestFacts,
    bucket: str | None,
    key: str,
    additional_headers: Sequence[str],
    *,
    drop_query: Iterable[str] = (),
    bare_empty: bool = True,
) -> bytes:
    """The V4 canonical request; ``bare_empty=False`` renders empty values as ``k=`` (ali-oss query)."""
    dropped = set(drop_query)
    pairs = sorted((_v4_encode(k, False), _v4_encode(v, False)) for k, v in facts.query if k not in dropped)
    query = "&".join(f"{k}={v}" if (v or not bare_empty) else k for k, v in pairs)
    extra = set(additional_headers)
    signed = sorted(
        (name, value)
        for name, value in facts.headers.items()
        if name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in extra
    )
    canon_headers = b"".join(name.encode() + b":" + _raw(value.strip()) + b"\n" for name, value in signed)
    payload_hash = facts.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return b"\n".join(
        [
            facts.method.encode(),
            _v4_encode(_resource_path(bucket, key), True).encode(),
            query.encode(),
            canon_headers,
            ";".join(sorted(extra)).encode(),
            _raw(payload_hash),
        ]
    )


def v4_string_to_sign(signed_datetime: str, scope: str, canonical_request: bytes) -> str:
    return "\n".join(
        [
            V4_ALGORITHM,
            signed_datetime,
            scope,
            hashlib.sha256(canonical_request).hexdigest(),
        ]
    )


def _parse_v4_credential(value: str) -> tuple[str, str, str]:
    """``AK/yyyymmdd/region/oss/aliyun_v4_request`` → (AK, date, region)."""
    parts = value.split("/")
    if len(parts) != 5 or parts[3] != V4_PRODUCT or parts[4] != V4_TERMINATOR or not parts[0]:
        raise AuthError("InvalidArgument", "Invalid credential in Authorization header.", 400)
    if len(parts[1]) != 8 or not is_decimal(parts[1]):
        raise AuthError("InvalidArgument", "Invalid signing date in Authorization header.", 400)
    return parts[0], parts[1], parts[2]


def _parse_v4_datetime(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthError("AccessDenied", "Invalid x-oss-date, expected yyyymmddTHHMMSSZ.") from None


# --------------------------------------------------------------------------- parsing


def _token_from(facts: RequestFacts, query: Mapping[str, str]) -> str | None:
    return (
        facts.headers.get("x-oss-security-token")
        or facts.headers.get("security-token")
        or query.get("security-token")
        or query.get("x-oss-security-token")
        or None
    )


def _too_skewed(signed_at: datetime, now: datetime, message: str) -> AuthError:
    """OSS's answer names both times and the allowed skew, so a client can correct its clock."""
    return AuthError(
        "RequestTimeTooSkewed",
        message,
        403,
        RequestTime=signed_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        ServerTime=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        MaxAllowedSkewMilliseconds=str(int(MAX_CLOCK_SKEW.total_seconds() * 1000)),
    )


def _check_skew(signed_at: datetime, now: datetime) -> None:
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise _too_skewed(
            signed_at, now, "The difference between the request time and the current time is too large."
        )


def parse_credential(facts: RequestFacts, now: datetime) -> Credential | None:
    """Find the claimed signature in the Authorization header or the query; None if anonymous.

    Checks everything that does not need the secret: syntax, clock skew, presigned expiry.
    """
    query = dict(facts.query)
    authorization = facts.headers.get("authorization", "").strip()
    token = _token_from(facts, query)
    if authorization:
        return _parse_authorization(facts, authorization, token, now)
    if query.get("x-oss-signature-version") == V4_ALGORITHM:
        return _parse_presigned_v4(query, token, now)
    if "OSSAccessKeyId" in query or "Signature" in query:
        return _parse_presigned_v1(query, token, now)
    return None


def _parse_authorization(facts: RequestFacts, value: str, token: str | None, now: datetime) -> Credential:
    scheme, _, rest = value.partition(" ")
    if scheme == "OSS":
        access_key_id, sep, signature = rest.strip().rpartition(":")
        if not sep or not access_key_id or not signature:
            raise AuthError("InvalidArgument", "Authorization header is invalid.", 400)
        date_slot = facts.headers.get("x-oss-date") or facts.headers.get("date") or ""
        try:
            signed_at = parsedate_to_datetime(date_slot)
        except (TypeError, ValueError):
            raise AuthError("AccessDenied", "OSS authentication requires a valid Date.") from None
        if signed_at.tzinfo is None:
            signed_at = signed_at.replace(tzinfo=UTC)
        _check_skew(signed_at, now)
        return Credential(access_key_id, signature, "v1", token, v1_date_slot=date_slot)
    if scheme == V4_ALGORITHM:
        fields: dict[str, str] = {}
        for item in rest.split(","):
            name, sep, item_value = item.strip().partition("=")
            if sep:
                fields[name] = item_value.strip()
        if "Credential" not in fields or "Signature" not in fields:
            raise AuthError("InvalidArgument", "Authorization header is invalid.", 400)
        access_key_id, date, region = _parse_v4_credential(fields["Credential"])
        signed_datetime = facts.headers.get("x-oss-date", "")
        signed_at = _parse_v4_datetime(signed_datetime)
        if signed_datetime[:8] != date:
            raise AuthError(
                "SignatureDoesNotMatch",
                "The credential date does not match x-oss-date.",
            )
        _check_skew(signed_at, now)
        additional = tuple(
            h.strip().lower() for h in fields.get("AdditionalHeaders", "").split(";") if h.strip()
        )
        return Credential(
            access_key_id,
            fields["Signature"],
            "v4",
            token,
            additional,
            date,
            region,
            signed_datetime,
        )
    raise AuthError("InvalidArgument", "Authorization header is invalid.", 400)


def _parse_presigned_v1(query: Mapping[str, str], token: str | None, now: datetime) -> Credential:
    access_key_id, expires, signature = (query.get(k, "") for k in ("OSSAccessKeyId", "Expires", "Signature"))
    if not access_key_id or not signature or not is_decimal(expires):
        raise AuthError("AccessDenied", "Presigned URL needs OSSAccessKeyId, Expires and Signature.")
    if int(expires) < now.timestamp():
        raise AuthError("AccessDenied", "Request has expired.", 403, Expires=expires)
    return Credential(access_key_id, signature, "v1", token, v1_date_slot=expires, presigned=True)


def _parse_presigned_v4(query: Mapping[str, str], token: str | None, now: datetime) -> Credential:
    access_key_id, date, region = _parse_v4_credential(query.get("x-oss-credential", ""))
    signed_datetime = query.get("x-oss-date", "")
    signed_at = _parse_v4_datetime(signed_datetime)
    if signed_datetime[:8] != date:
        raise AuthError("SignatureDoesNotMatch", "The credential date does not match x-oss-date.")
    expires = query.get("x-oss-expires", "")
    if not is_decimal(expires) or not 0 < int(expires) <= MAX_PRESIGN_V4_SECONDS:
        raise AuthError(
            "InvalidArgument",
            "x-oss-expires must be between 1 and 604800 seconds.",
            400,
        )
    if signed_at + timedelta(seconds=int(expires)) < now:
        raise AuthError("AccessDenied", "Request has expired.")
    if signed_at - now > MAX_CLOCK_SKEW:
        raise _too_skewed(signed_at, now, "The request time is in the future.")
    signature = query.get("x-oss-signature", "")
    if not signature:
        raise AuthError("AccessDenied", "Presigned URL needs x-oss-signature.")
    additional = tuple(h for h in query.get("x-oss-additional-headers", "").lower().split(";") if h)
    return Credential(
        access_key_id,
        signature,
        "v4",
        token,
        additional,
        date,
        region,
        signed_datetime,
        presigned=True,
        drop_query=frozenset({"x-oss-signature"}),
    )


# --------------------------------------------------------------------------- verification


def signature_matches(
    credential: Credential,
    secret: str,
    facts: RequestFacts,
    bucket: str | None,
    key: str,
) -> bool:
    """True when ``secret`` signed this request for the resource ``/bucket/key``."""
    if credential.version == "v1":
        # In a presigned URL the signature itself and the key id are not part of the resource;
        # security-token is (both SDKs list it as a sub-resource).
        query = [(k, v) for k, v in facts.query if k not in ("Signature", "OSSAccessKeyId", "Expires")]
        to_sign = v1_string_to_sign(
            RequestFacts(facts.method, facts.headers, query),
            bucket,
            key,
            credential.v1_date_slot or "",
        )
        return _same(v1_sign(secret, to_sign), credential.signature)
    scope = f"{credential.v4_date}/{credential.v4_region}/{V4_PRODUCT}/{V4_TERMINATOR}"
    has_empty = any(not v for _, v in facts.query)
    for bare_empty in (True, False) if has_empty else (True,):
        canonical = v4_canonical_request(
            facts,
            bucket,
            key,
            credential.additional_headers,
            drop_query=credential.drop_query,
            bare_empty=bare_empty,
        )
        to_sign = v4_string_to_sign(credential.v4_datetime, scope, canonical)
        expected = v4_sign(secret, credential.v4_date, credential.v4_region, to_sign)
        if _same(expected, credential.signature.lower()):
            return True
    return False


# --------------------------------------------------------------------------- PostObject


@dataclass(frozen=True)
class PostCredential:
    """The signature fields of a PostObject form."""

    access_key_id: str
    signature: str
    version: str
    security_token: str | None
    v4_date: str = ""
    v4_region: str = ""


def parse_post_credential(fields: Mapping[str, str]) -> PostCredential | None:
    """Read V1 (OSSAccessKeyId/Signature) or V4 (x-oss-credential/…) form fields; None if anonymous.

    ``fields`` has lower-case names: OSS matches form field names case-insensitively.
    """
    token = fields.get("x-oss-security-token") or None
    if fields.get("x-oss-signature-version"):
        if fields["x-oss-signature-version"] != V4_ALGORITHM:
            raise AuthError("InvalidArgument", "Unsupported x-oss-signature-version.", 400)
        access_key_id, date, region = _parse_v4_credential(fields.get("x-oss-credential", ""))
        signed_datetime = fields.get("x-oss-date", "")
        _parse_v4_datetime(signed_datetime)
        if signed_datetime[:8] != date:
            raise AuthError(
                "SignatureDoesNotMatch",
                "The credential date does not match x-oss-date.",
            )
        signature = fields.get("x-oss-signature", "")
        if not signature:
            raise AuthError("InvalidArgument", "x-oss-signature is missing.", 400)
        return PostCredential(access_key_id, signature, "v4", token, date, region)
    if fields.get("ossaccesskeyid"):
        signature = fields.get("signature", "")
        if not signature:
            raise AuthError("InvalidArgument", "Signature is missing.", 400)
        return PostCredential(fields["ossaccesskeyid"], signature, "v1", token)
    return None


def post_signature_matches(credential: PostCredential, secret: str, policy_b64: str) -> bool:
    """V1: base64(HMAC-SHA1(secret, policy)); V4: hex(HMAC-SHA256(signing key, policy))."""
    if credential.version == "v1":
        return _same(v1_sign(secret, policy_b64), credential.signature)
    expected = v4_sign(secret, credential.v4_date, credential.v4_region, policy_b64)
    return _same(expected, credential.signature.lower())


@dataclass(frozen=True)
class PostPolicy:
    """What a verified PostObject policy still constrains once the file has been read."""

    min_size: int = 0
    max_size: int | None = None


def _policy_expiration(value: object) -> datetime:
    if not isinstance(value, str):
        raise AuthError("InvalidPolicyDocument", "Invalid Policy: expiration is missing.", 400)
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise AuthError("InvalidPolicyDocument", "Invalid Policy: expiration is not ISO 8601 UTC.", 400)


def _condition_failed(condition: object) -> AuthError:
    rendered = json.dumps(condition, separators=(", ", ": "))
    return AuthError(
        "AccessDenied",
        f"Invalid according to Policy: Policy Condition failed: {rendered}",
    )


def _field_value(name: object, fields: Mapping[str, str], bucket: str) -> str:
    if not isinstance(name, str):
        raise AuthError("InvalidPolicyDocument", "Invalid Policy: field name must be a string.", 400)
    lowered = name.lstrip("$").lower()
    if lowered == "bucket":
        return bucket
    return fields.get(lowered, "")


MAX_POLICY_NESTING = 4  # {"conditions": [["in", "$content-type", ["a", "b"]]]}


def _nesting(value: object) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_POLICY_NESTING:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


def check_post_policy(
    policy_b64: str, fields: Mapping[str, str], bucket: str, now: datetime, *, v4: bool
) -> PostPolicy:
    """Apply a PostObject policy's expiration and conditions to the (lower-cased) form fields.

    Size limits are returned rather than checked: the file has not been read yet.
    """
    try:
        document = json.loads(base64.b64decode(policy_b64, validate=True))
    except (ValueError, binascii.Error, RecursionError):
        raise AuthError("InvalidPolicyDocument", "Invalid Policy: Invalid JSON.", 400) from None
    if _nesting(document) > MAX_POLICY_NESTING:
        # A policy is an object of conditions, each a list or an object of scalars (a list for "in"):
        # anything deeper is not a policy, and rendering it into an error must not recurse without end.
        raise AuthError("InvalidPolicyDocument", "Invalid Policy: too deeply nested.", 400)
    if not isinstance(document, dict) or not isinstance(document.get("conditions", []), list):
        raise AuthError(
            "InvalidPolicyDocument",
            "Invalid Policy: expected an object with conditions.",
            400,
        )
    if _policy_expiration(document.get("expiration")) < now:
        raise AuthError("AccessDenied", "Invalid according to Policy: Policy expired.")
    result = PostPolicy()
    mentioned: set[str] = set()
    for condition in document.get("conditions", []):
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise AuthError("InvalidPolicyDocument", "Invalid Policy: bad condition.", 400)
            ((name, expected),) = condition.items()
            mentioned.add(str(name).lstrip("$").lower())
            if _field_value(name, fields, bucket) != expected:
                raise _condition_failed(condition)
            continue
        if not isinstance(condition, list) or len(condition) != 3 or not isinstance(condition[0], str):
            raise AuthError("InvalidPolicyDocument", "Invalid Policy: bad condition.", 400)
        operator, name, expected = condition[0].lower(), condition[1], condition[2]
        if operator == "content-length-range":
            if not (isinstance(name, int) and isinstance(expected, int)) or not 0 <= name <= expected:
                raise AuthError(
                    "InvalidPolicyDocument",
                    "Invalid Policy: bad content-length-range.",
                    400,
                )
            result = PostPolicy(name, expected)
            continue
        mentioned.add(str(name).lstrip("$").lower())
        actual = _field_value(name, fields, bucket)
        if operator == "eq":
            ok = actual == expected
        elif operator == "starts-with":
            ok = isinstance(expected, str) and actual.startswith(expected)
        elif operator == "in":
            ok = isinstance(expected, list) and actual in expected
        elif operator == "not-in":
            ok = isinstance(expected, list) and actual not in expected
        else:
            raise AuthError(
                "InvalidPolicyDocument",
                f"Invalid Policy: unknown operator {operator!r}.",
                400,
            )
        if not ok:
            raise _condition_failed(condition)
    if v4:
        # OSS requires a V4 policy to pin the signing fields themselves.
        missing = {
            "x-oss-signature-version",
            "x-oss-credential",
            "x-oss-date",
        } - mentioned
        if missing:
            raise AuthError(
                "InvalidPolicyDocument",
                f"Invalid Policy: a V4 policy must have conditions on {', '.join(sorted(missing))}.",
                400,
            )
    return result
