"""Writes for accounts: choosing where an avatar goes, and accepting it only once OSS confirms it.

The browser uploads straight to OSS with a token scoped to ``user/<id>/``; nothing it says about the
file is trusted. Completion looks the object up with the server's own key and checks what is really
stored there (size, declared type and the first bytes) before the avatar changes.
"""

import logging
import posixpath
import uuid

from django.conf import settings

from accounts.models import User
from core.exceptions import ApplicationError
from uploads import oss
from uploads.policy import user_prefix

# Content type → the extension of the key the server picks for it. Only formats every browser renders.
AVATAR_CONTENT_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
# OSS caps object names at 1023 bytes; the model column is 1024 characters.
MAX_KEY_BYTES = 1023
_SNIFF_BYTES = 16
_OSS_ERROR_STATUS = {
    "object_not_found": 400,
    "object_changed": 409,
    "oss_unavailable": 503,
    "oss_rejected": 502,
}
# Confirmed avatars live outside every user's writable prefix, so nobody can swap one after the checks.
CONFIRMED_AVATAR_PREFIX = "avatars/"

logger = logging.getLogger(__name__)


def _is_image(head: bytes) -> bool:
    """Magic numbers of the accepted formats: a declared ``image/png`` is a claim, these bytes are not."""
    return (
        head.startswith(b"\x89PNG\r\n\x1a\n")
        or head.startswith(b"\xff\xd8\xff")
        or head[:6] in (b"GIF87a", b"GIF89a")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def _check_size(size: int) -> None:
    if size > settings.AVATAR_MAX_BYTES:
        raise ApplicationError(
            f"The file is {size} bytes; avatars may be at most {settings.AVATAR_MAX_BYTES} bytes.",
            code="object_too_large",
        )


def _check_content_type(content_type: str) -> None:
    if content_type not in AVATAR_CONTENT_TYPES:
        raise ApplicationError(
            "Avatars must be PNG, JPEG, GIF or WebP images.",
            code="not_an_image",
        )


def avatar_key_check(*, user: User, key: str) -> str:
    """Refuse any key the user's token could not have written: outside ``user/<id>/`` or not normalised."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ApplicationError(f"The key must be 1 to {MAX_KEY_BYTES} bytes long.", code="invalid")
    if any(ord(ch) < 0x20 or ch == "\x7f" or ch == "\\" for ch in key):
        raise ApplicationError("The key contains characters OSS keys here never do.", code="invalid")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments) or posixpath.normpath(key) != key:
        raise ApplicationError(
            "The key must be a plain path without empty, '.' or '..' parts.", code="invalid"
        )
    prefix = user_prefix(user.pk)
    if not key.startswith(prefix):
        raise ApplicationError(f"The key must be inside {prefix}.", code="outside_prefix", status_code=403)
    return key


def user_avatar_upload_key(*, user: User, content_type: str, size: int) -> str:
    """A fresh random key under ``user/<id>/avatars/``, so an upload never overwrites anything.

    Checks the size and type the browser declares so a person hears "too large" before uploading
    megabytes; completion checks them again against what OSS actually stored.
    """
    _check_content_type(content_type)
    _check_size(size)
    return f"{user_prefix(user.pk)}avatars/{uuid.uuid4().hex}{AVATAR_CONTENT_TYPES[content_type]}"


def _oss_failure(exc: oss.OssError) -> ApplicationError:
    messages = {
        "object_not_found": "Nothing has been uploaded under that key.",
        "object_changed": "The file changed while it was being checked; upload it again.",
        "oss_unavailable": "The storage service is unavailable; try again shortly.",
        "oss_rejected": "The storage service refused the server's configuration.",
    }
    return ApplicationError(
        messages[exc.code],
        code=exc.code,
        status_code=_OSS_ERROR_STATUS[exc.code],
        retry_after=5 if exc.code == "oss_unavailable" else None,
    )


def user_avatar_set(*, user: User, key: str) -> User:
    """Make the object at ``key`` the user's avatar once OSS confirms it exists and is a small image."""
    avatar_key_check(user=user, key=key)
    try:
        info = oss.head_object(key)
        _check_size(info.size)
        _check_content_type(info.content_type)
        if info.size == 0 or not _is_image(oss.read_prefix(key, _SNIFF_BYTES)):
            raise ApplicationError(
                "The uploaded file is not a PNG, JPEG, GIF or WebP image.", code="not_an_image"
            )
        # The upload key stays writable by the user's token: serve a copy the token cannot touch,
        # made only if the object is still exactly the one just checked.
        confirmed_key = (
            f"{CONFIRMED_AVATAR_PREFIX}{user.pk}/{uuid.uuid4().hex}{AVATAR_CONTENT_TYPES[info.content_type]}"
        )
        oss.copy_object(key, confirmed_key, if_match=info.etag)
    except oss.OssError as exc:
        raise _oss_failure(exc) from None
    previous_key = user.avatar_key
    user.avatar_key = confirmed_key
    user.save(update_fields=["avatar_key"])
    _delete_quietly(key)
    if previous_key.startswith(f"{CONFIRMED_AVATAR_PREFIX}{user.pk}/"):
        _delete_quietly(previous_key)
    return user


def _delete_quietly(key: str) -> None:
    """Housekeeping after the avatar changed: a failure leaves an orphan object, not a broken avatar."""
    try:
        oss.delete_object(key)
    except oss.OssError as exc:
        logger.warning("Could not delete %s after an avatar change: %s", key, exc.code)
