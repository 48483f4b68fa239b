"""The PostObject form a browser sends straight to OSS: a pure policy builder and its V4 signature.

OSS itself then refuses an upload that is too large or too small, of another Content-Type, under
another key, that would overwrite an object, or that comes after the policy expired: limits that
an STS token cannot express (RAM has no condition key for size or type).

Alibaba documents the form in "PostObject" and its signature in "POST V4 signature"
(https://help.aliyun.com/en/oss/developer-reference/signature-version-4-recommend):

- ``policy`` = base64(UTF-8 JSON ``{"expiration": "<ISO 8601 UTC>", "conditions": [...]}``); with V4 the
  conditions must also pin ``x-oss-signature-version``, ``x-oss-credential`` and ``x-oss-date``, and,
  with STS credentials, ``x-oss-security-token``;
- ``x-oss-signature`` = hex(HMAC-SHA256(signing key, policy)), where the signing key is the same
  HMAC-SHA256 chain as every V4 request: ``"aliyun_v4" + secret`` → ``yyyymmdd`` → region (standard id,
  ``cn-hangzhou``) → ``"oss"`` → ``"aliyun_v4_request"``.

Neither oss2 nor alibabacloud-oss-v2 exposes a PostObject signer (only private V4 helpers), so the
few lines live here; tests check them against alibabacloud-oss-v2's own V4 chain and the sandbox.
Nothing here does I/O or reads settings: time and credentials come in as arguments.
"""

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

V4_ALGORITHM = "OSS4-HMAC-SHA256"
V4_TERMINATOR = "aliyun_v4_request"
# The longest a signed form stays usable; the form also never outlives the credentials that signed it.
MAX_LIFETIME = timedelta(minutes=10)
# What OSS answers a successful form upload with ("PostObject"): 200 or 204 with an empty body, 201
# with a PostResponse XML body (Bucket, Location, Key, ETag). Anything else means 204.
SUCCESS_ACTION_STATUSES = (200, 201, 204)
# Stored objects are never rendered by a browser from the bucket's own domain: what the server
# serves from them it copies with headers of its own choosing (avatars) or signs a URL for.
CONTENT_DISPOSITION = "attachment"


def v4_signing_key(*, access_key_secret: str, date: str, region: str) -> bytes:
    """The V4 signing key for ``date`` (``yyyymmdd``) and ``region`` (``cn-hangzhou``, no ``oss-``)."""
    key = ("aliyun_v4" + access_key_secret).encode("utf-8")
    for part in (date, region, "oss", V4_TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def post_object_policy(
    *,
    bucket: str,
    key: str,
    content_type: str,
    max_bytes: int,
    expiration: datetime,
    credential: str,
    signed_at: str,
    security_token: str,
    success_action_status: int = 204,
) -> dict[str, Any]:
    """The policy document: every form field that decides what is stored, or who may read it, is
    pinned to the one value the form carries.

    ``expiration`` is an aware UTC datetime; ``credential`` is ``<AK>/<yyyymmdd>/<region>/oss/aliyun_v4_request``
    and ``signed_at`` the ``yyyymmddTHHMMSSZ`` of ``x-oss-date``. Sizes are bytes, inclusive;
    ``success_action_status`` is 200, 201 or 204 (else ``ValueError``).

    What is stored: the key, the size, and the type: ``Content-Type`` and ``x-oss-content-type``, which
    "PostObject" says takes precedence over it, are both sent and pinned (pinning only the first let a
    holder of the form store ``text/html``). ``Content-Disposition`` is sent and pinned to
    ``attachment``. Each of these is a field the form carries, so the conditions hold under every reading
    of how OSS treats a condition on an absent field. Left to RAM: ``x-oss-object-acl`` and
    ``x-oss-tagging`` need ``oss:PutObjectAcl`` / ``oss:PutObjectTagging`` as form fields too, which the
    session policy never grants (aliyun/policy.py), so a form carrying either is refused. Not pinnable by
    name, and harmless: ``x-oss-meta-*`` (returned as ``x-oss-meta-`` headers, which no browser acts
    on) and ``Cache-Control``/``Expires``/``Content-Language``; avatars are copied with headers of the
    server's own (REPLACE), so none of these reach what the product serves as an avatar.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
    if success_action_status not in SUCCESS_ACTION_STATUSES:
        raise ValueError(f"success_action_status must be 200, 201 or 204, got {success_action_status!r}")
    return {
        "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [
            {"bucket": bucket},
            ["eq", "$key", key],
            ["content-length-range", 1, max_bytes],
            ["eq", "$content-type", content_type],
            ["eq", "$x-oss-content-type", content_type],
            ["eq", "$content-disposition", CONTENT_DISPOSITION],
            ["eq", "$success_action_status", str(success_action_status)],
            ["eq", "$x-oss-forbid-overwrite", "true"],
            {"x-oss-signature-version": V4_ALGORITHM},
            {"x-oss-credential": credential},
            {"x-oss-date": signed_at},
            {"x-oss-security-token": security_token},
        ],
    }


def post_object_form(
    *,
    bucket: str,
    region: str,
    key: str,
    content_type: str,
    max_bytes: int,
    now: datetime,
    expiration: datetime,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    success_action_status: int = 204,
) -> dict[str, str]:
    """The form fields to send, in order, before the ``file`` field (which OSS wants last).

    Signed with ``access_key_secret``, which is not among them. ``now`` and ``expiration`` are aware
    UTC datetimes; ``expiration`` must lie after ``now``, at most ``MAX_LIFETIME`` later. OSS answers
    a successful upload with ``success_action_status`` (see ``post_object_policy``).
    """
    if not now < expiration <= now + MAX_LIFETIME:
        raise ValueError("the form must expire after now and within MAX_LIFETIME")
    date = now.strftime("%Y%m%d")
    credential = f"{access_key_id}/{date}/{region}/oss/{V4_TERMINATOR}"
    signed_at = now.strftime("%Y%m%dT%H%M%SZ")
    policy = post_object_policy(
        bucket=bucket,
        key=key,
        content_type=content_type,
        max_bytes=max_bytes,
        expiration=expiration,
        credential=credential,
        signed_at=signed_at,
        security_token=security_token,
        success_action_status=success_action_status,
    )
    encoded = base64.b64encode(json.dumps(policy, separators=(",", ":")).encode("utf-8")).decode("ascii")
    signing_key = v4_signing_key(access_key_secret=access_key_secret, date=date, region=region)
    return {
        "key": key,
        "policy": encoded,
        "x-oss-signature-version": V4_ALGORITHM,
        "x-oss-credential": credential,
        "x-oss-date": signed_at,
        "x-oss-signature": hmac.new(signing_key, encoded.encode("ascii"), hashlib.sha256).hexdigest(),
        "x-oss-security-token": security_token,
        "success_action_status": str(success_action_status),
        "Content-Type": content_type,
        "x-oss-content-type": content_type,
        "Content-Disposition": CONTENT_DISPOSITION,
        "x-oss-forbid-overwrite": "true",
    }
