"""The one seam around ``oss2``: nothing else in the project (outside the sandbox and tests) imports it.

The server talks to OSS with its own identity (``aliyun/credentials.py``: an AccessKey, or temporary
credentials of its role that the credentials library refreshes), never with a user's STS token: it looks
objects up to confirm what a browser claims to have uploaded, and signs short-lived GET URLs.
SDK failures come out as ``OssError`` with a stable code, so callers never see an oss2 exception.
"""

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit

import oss2
import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from oss2.exceptions import NotFound, RequestError
from oss2.exceptions import OssError as Oss2Error

from aliyun.credentials import ServerIdentityError, oss_credentials_provider, server_credentials
from aliyun.errors import AliyunError
from core.aliyun_names import SYMLINK_OBJECT_TYPE

logger = logging.getLogger(__name__)

SYMLINK = SYMLINK_OBJECT_TYPE  # what ObjectInfo.object_type says for a symbolic link
# One lookup must not hold a web worker for oss2's default 60 s; oss2 retries connection errors itself.
TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    etag: str
    # x-oss-object-type: Normal, Multipart, Appendable, or Symlink (a PutSymlink link: HEAD and GET then
    # answer with its target's size, ETag and bytes, wherever in the bucket that target is).
    object_type: str = ""


class OssError(AliyunError):
    """OSS did not answer the question.

    ``code`` is the project's stable code: ``object_not_found`` (no such object), ``oss_unavailable``
    (network trouble or an OSS-side 5xx), ``oss_rejected`` (OSS refused the server's own key or
    configuration: a deployment problem, never the user's fault) or ``sts_unavailable`` (the server's own
    temporary credentials could not be renewed: nothing was sent to OSS). ``upstream_code`` is Alibaba's.
    """


@lru_cache(maxsize=1)
def _bucket() -> oss2.Bucket:
    """V4-signed, region-scoped. ``is_cname=False``: oss2 then uses path-style addressing for an IP or
    ``localhost`` endpoint (the sandbox) and virtual-hosted ``<bucket>.oss-<region>.aliyuncs.com`` otherwise."""
    auth = oss2.ProviderAuthV4(oss_credentials_provider())  # asked at every request and signed URL
    return oss2.Bucket(
        auth,
        settings.ALIYUN_OSS_ENDPOINT,
        settings.ALIYUN_OSS_BUCKET,
        is_cname=False,
        connect_timeout=TIMEOUT_SECONDS,
        region=settings.ALIYUN_OSS_REGION,
    )


@receiver(setting_changed)
def _reset_bucket(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ALIYUN_OSS"):  # the identity is looked up at every call (aliyun/credentials.py)
        _bucket.cache_clear()


def _identity_failure(exc: ServerIdentityError) -> OssError:
    """The server's credentials could not be had (the provider has logged which source failed)."""
    return OssError(
        "sts_unavailable", "The server could not renew its own credentials.", upstream_code="server_identity"
    )


def _translate(exc: Oss2Error, operation: str) -> OssError:
    """oss2's exception zoo, reduced to the three outcomes a caller can act on."""
    if isinstance(exc, NotFound):
        return OssError(
            "object_not_found", "No such object.", upstream_code=exc.code, request_id=exc.request_id
        )
    if exc.status == 412:
        return OssError(
            "object_changed",
            "The object changed while it was checked.",
            upstream_code=exc.code,
            request_id=exc.request_id,
        )
    if isinstance(exc, RequestError):  # connection refused, timeouts, DNS: oss2 has already retried
        logger.warning("OSS unreachable during %s: %s", operation, type(exc.exception).__name__)
        return OssError("oss_unavailable", "OSS could not be reached.")
    if exc.status >= 500:
        return OssError(
            "oss_unavailable", "OSS is unavailable.", upstream_code=exc.code, request_id=exc.request_id
        )
    logger.error(
        "OSS refused the server's %s: status=%s code=%s request_id=%s",
        operation,
        exc.status,
        exc.code,
        exc.request_id,
    )
    return OssError(
        "oss_rejected",
        "OSS refused the server's own credentials or configuration.",
        upstream_code=exc.code,
        request_id=exc.request_id,
    )


# What HEAD of a symbolic link answers when its target cannot be read through it: 404
# SymlinkTargetNotExist for a link to nothing (Alibaba's error page 0026-00000012), 400
# InvalidTargetType for a link to another link. Only a link answers so: the user's doing, not ours.
_BROKEN_LINK_CODES = {"SymlinkTargetNotExist", "InvalidTargetType"}


def head_object(key: str) -> ObjectInfo:
    """Size and type of ``key`` as OSS stores them. A symbolic link whose target cannot be read through
    it comes back as ``object_type`` ``Symlink`` with size 0. Raises ``OssError``."""
    try:
        result = _bucket().head_object(key)
    except Oss2Error as exc:
        if exc.code in _BROKEN_LINK_CODES:
            return ObjectInfo(key=key, size=0, content_type="", etag="", object_type=SYMLINK)
        raise _translate(exc, "HeadObject") from None
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None
    return ObjectInfo(
        key=key,
        size=int(result.content_length or 0),
        content_type=(result.content_type or "").split(";", 1)[0].strip().lower(),
        etag=result.etag or "",
        object_type=result.object_type or "",
    )


def copy_object(
    source_key: str, target_key: str, *, if_match: str, content_type: str, content_disposition: str
) -> None:
    """Server-side copy inside the bucket, only if the source still has the ETag ``if_match``.

    The copy's metadata is the server's, not the uploader's: ``x-oss-metadata-directive: REPLACE`` with
    ``content_type`` and ``content_disposition``, and no ``x-oss-meta-*`` (REPLACE keeps only what the
    request sends). An ETag is the MD5 of the bytes, so a re-upload of the same bytes with another
    Content-Type keeps it: only REPLACE decides what the copy is served as. Raises ``OssError``
    (``object_changed`` when the ETag no longer matches).
    """
    try:
        _bucket().copy_object(
            settings.ALIYUN_OSS_BUCKET,
            source_key,
            target_key,
            headers={
                "x-oss-copy-source-if-match": if_match,
                "x-oss-metadata-directive": "REPLACE",
                "Content-Type": content_type,
                "Content-Disposition": content_disposition,
            },
        )
    except Oss2Error as exc:
        raise _translate(exc, "CopyObject") from None
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None


def delete_object(key: str) -> None:
    """Remove ``key``; OSS answers success for a missing key too. Raises ``OssError``."""
    try:
        _bucket().delete_object(key)
    except Oss2Error as exc:
        raise _translate(exc, "DeleteObject") from None
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None


def signed_url_seconds(
    expires_seconds: int, *, credentials_expiration: datetime | None, now: datetime
) -> int:
    """How long a URL signed now may say it works: ``expires_seconds``, but never past the expiration of
    the temporary credentials that sign it (Alibaba's "Authorize access" pages of the OSS SDKs: "the
    shorter validity period takes precedence"; OSS answers ``SecurityTokenExpired``), so the URL promises
    no more than it can keep. At least 1 s (the
    credentials library never hands out credentials with less than 15 minutes left). Pure."""
    if credentials_expiration is None:  # an AccessKey: the URL's own lifetime alone
        return expires_seconds
    left = math.floor((credentials_expiration - now).total_seconds())
    return max(1, min(expires_seconds, left))


def signed_get_url(key: str, expires_seconds: int, *, content_type: str, content_disposition: str) -> str:
    """A URL anyone holding it may GET for at most ``expires_seconds``: signing is local, no request to OSS.

    The URL pins ``response-content-type`` and ``response-content-disposition`` (both signed), so OSS
    answers with those headers whatever metadata the object carries. Signed with temporary server
    credentials, it expires no later than they do (``signed_url_seconds``): the expiry is taken from the
    credentials current before signing, and oss2 signs with those or with newer ones (a refresh in between
    only makes the real lifetime longer than the URL says). Raises ``OssError`` (``sts_unavailable``).
    """
    params = {"response-content-type": content_type, "response-content-disposition": content_disposition}
    try:
        current = server_credentials()
        seconds = signed_url_seconds(
            expires_seconds, credentials_expiration=current.expiration, now=datetime.now(UTC)
        )
        return _bucket().sign_url("GET", key, seconds, slash_safe=True, params=params)
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None


def read_prefix(key: str, length: int, *, if_match: str) -> bytes:
    """The first ``length`` bytes of ``key`` (a ranged GET with ``If-Match``), to check what a file really
    is: the bytes are those of the version whose ETag is ``if_match``, or ``OssError`` ``object_changed``."""
    try:
        result = _bucket().get_object(key, byte_range=(0, length - 1), headers={"If-Match": if_match})
        return result.read(length)
    except Oss2Error as exc:
        raise _translate(exc, "GetObject") from None
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None
    except requests.RequestException as exc:  # the body broke off after the headers arrived
        logger.warning("OSS read failed: %s", type(exc).__name__)
        raise OssError("oss_unavailable", "OSS could not be reached.") from None


def object_url(key: str = "") -> str:
    """The URL of ``key`` in the bucket (``""``: the bucket itself), addressed as the server's oss2 client
    addresses it: path style for an IP or ``localhost`` endpoint (``http://127.0.0.1:8702/<bucket>/<key>``,
    the sandbox), virtual-hosted otherwise (``https://<bucket>.oss-<region>.aliyuncs.com/<key>``).
    ``oss2.utils.is_ip_or_localhost`` is the rule oss2 itself applies; the key keeps its ``/``."""
    endpoint = settings.ALIYUN_OSS_ENDPOINT.rstrip("/")
    parts = urlsplit(endpoint if "//" in endpoint else f"https://{endpoint}")
    bucket, path = settings.ALIYUN_OSS_BUCKET, quote(key, safe="/")
    if oss2.utils.is_ip_or_localhost(parts.netloc):
        return f"{parts.scheme}://{parts.netloc}/{bucket}/{path}"
    return f"{parts.scheme}://{bucket}.{parts.netloc}/{path}"


def post_url() -> str:
    """Where browsers POST a form upload: the bucket's own URL (``object_url("")``)."""
    return object_url("")


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int


def list_objects(prefix: str) -> Iterator[ListedObject]:
    """Every object under ``prefix``, in key order (ListObjectsV2, 1000 a page, with the server's key).

    The server's RAM user (or role) needs ``oss:ListObjects`` on the bucket for this. Raises ``OssError``,
    possibly after some objects were yielded.
    """
    if not prefix:
        raise ValueError("list_objects needs a prefix: the server never lists the whole bucket")
    try:
        for item in oss2.ObjectIteratorV2(_bucket(), prefix=prefix, max_keys=1000):
            yield ListedObject(key=item.key, size=int(item.size))
    except Oss2Error as exc:
        raise _translate(exc, "ListObjects") from None
    except ServerIdentityError as exc:
        raise _identity_failure(exc) from None
    except requests.RequestException as exc:
        logger.warning("OSS listing failed: %s", type(exc).__name__)
        raise OssError("oss_unavailable", "OSS could not be reached.") from None
