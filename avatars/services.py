"""Writes for accounts: choosing where an avatar goes, and accepting it only once OSS confirms it.

The browser uploads straight to OSS with a token scoped to ``user/<id>/``; nothing it says about the
file is trusted. Completion looks the object up with the server's own key and checks what is really
stored there (size and the first bytes) before the avatar changes, and serves it only as the image
type those bytes prove.
"""

import logging
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun import oss
from aliyun.policy import user_prefix
from core.exceptions import ApplicationError
from core.requests import RequestContext
from core.text import storable_text
from ledger.services.events import server_delete_record, server_write_record

from .formats import (
    AVATAR_CONTENT_TYPES,
    CONFIRMED_AVATAR_PREFIX,
    avatar_content_disposition,
    sniffed_image_type,
)
from .models import AvatarChange

# OSS caps object names at 1023 bytes; the model column is 1024 characters.
MAX_KEY_BYTES = 1023
_SNIFF_BYTES = 16
_OSS_ERROR_STATUS = {
    "object_not_found": 400,
    "object_changed": 409,
    "oss_unavailable": 503,
    "oss_rejected": 502,
    "sts_unavailable": 503,  # the server's own temporary credentials could not be renewed (aliyun/credentials.py)
}

logger = logging.getLogger(__name__)


def _check_size(size: int) -> None:
    if size > settings.AVATAR_MAX_BYTES:
        raise ApplicationError(
            _("The file is %(size)d bytes; avatars may be at most %(max)d bytes.")
            % {"size": size, "max": settings.AVATAR_MAX_BYTES},
            code="object_too_large",
        )


def _check_content_type(content_type: str) -> None:
    if content_type not in AVATAR_CONTENT_TYPES:
        raise ApplicationError(
            _("Avatars must be PNG, JPEG, GIF or WebP images."),
            code="not_an_image",
        )


def avatar_key_check(*, user: User, key: str) -> str:
    """Refuse any key the user's token could not have written: outside ``user/<id>/`` or not normalised."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ApplicationError(
            _("The key must be 1 to %(max)d bytes long.") % {"max": MAX_KEY_BYTES}, code="invalid"
        )
    if any(ord(ch) < 0x20 or ch == "\x7f" or ch == "\\" for ch in key):
        raise ApplicationError(_("The key contains characters OSS keys here never do."), code="invalid")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments) or posixpath.normpath(key) != key:
        raise ApplicationError(
            _("The key must be a plain path without empty, '.' or '..' parts."), code="invalid"
        )
    prefix = user_prefix(user.pk)
    if not key.startswith(prefix):
        raise ApplicationError(
            _("The key must be inside %(prefix)s.") % {"prefix": prefix},
            code="outside_prefix",
            status_code=403,
        )
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
        "object_not_found": _("Nothing has been uploaded under that key."),
        "object_changed": _("The file changed while it was being checked; upload it again."),
        "oss_unavailable": _("The storage service is unavailable; try again shortly."),
        "oss_rejected": _("The storage service refused the server's configuration."),
        "sts_unavailable": _(
            "The server could not renew its own Alibaba Cloud credentials; try again shortly."
        ),
    }
    return ApplicationError(
        messages[exc.code],
        code=exc.code,
        status_code=_OSS_ERROR_STATUS[exc.code],
        retry_after=5 if exc.code in ("oss_unavailable", "sts_unavailable") else None,
    )


def user_avatar_set(*, user: User, key: str, checked: "AvatarCheck | None" = None) -> User:
    """Make the object at ``key`` the user's avatar once OSS confirms it exists and is a small image.

    ``checked``, if given, is told the ETag of the object the checks looked at (for the audit row).
    """
    avatar_key_check(user=user, key=key)
    try:
        info = oss.head_object(key)
        if checked is not None:
            checked.etag = info.etag
        # A token that may upload here may also put a symlink here (PutSymlink is oss:PutObject) to any
        # key of the bucket: its size, ETag and bytes would be the target's, and CopyObject copies the
        # link, so the avatar would serve another user's file. Only a real upload is an avatar.
        if info.object_type == oss.SYMLINK:
            raise ApplicationError(
                _("The uploaded file is not a PNG, JPEG, GIF or WebP image."), code="not_an_image"
            )
        _check_size(info.size)
        # The bytes sniffed are those of the version with this ETag (If-Match), and the copy is made
        # only from that version (x-oss-copy-source-if-match). The type the uploader declared is not
        # used: the copy gets the sniffed type (metadata directive REPLACE), so re-uploading the same
        # bytes as text/html between the checks and the copy changes nothing that is served.
        content_type = (
            sniffed_image_type(oss.read_prefix(key, _SNIFF_BYTES, if_match=info.etag)) if info.size else None
        )
        if content_type is None:
            raise ApplicationError(
                _("The uploaded file is not a PNG, JPEG, GIF or WebP image."), code="not_an_image"
            )
        # The upload key stays writable by the user's token: serve a copy the token cannot touch.
        confirmed_key = (
            f"{CONFIRMED_AVATAR_PREFIX}{user.pk}/{uuid.uuid4().hex}{AVATAR_CONTENT_TYPES[content_type]}"
        )
        oss.copy_object(
            key,
            confirmed_key,
            if_match=info.etag,
            content_type=content_type,
            content_disposition=avatar_content_disposition(content_type),
        )
    except oss.OssError as exc:
        raise _oss_failure(exc) from None
    previous_key = user.avatar_key
    user.avatar_key = confirmed_key
    user.save(update_fields=["avatar_key"])
    # The server moved bytes between the user's folders: the ledger (and so the usage) learns what it
    # copied and deleted at once, without listing anything; OSS's own events then change nothing.
    _ledger_quietly(server_write_record, key=confirmed_key, size=info.size, content_type=content_type)
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
        return
    _ledger_quietly(server_delete_record, key=key)


def _ledger_quietly(record: Any, **kwargs: Any) -> None:
    """A ledger record of the server's own write; if the database fails, OSS's event (or the next
    reconcile) brings the ledger up to date, so the avatar change stands."""
    try:
        record(**kwargs)
    except DatabaseError:
        logger.exception("Could not record an avatar change in the upload ledger")


# --- The audit of avatar changes (avatars.AvatarChange) ------------------------------------------


@dataclass
class AvatarCheck:
    """What a confirmation looked at, filled in as the checks go: the ETag OSS reported."""

    etag: str = ""


def avatar_change_record(
    *,
    user: User,
    kind: str,
    context: RequestContext,
    reason: str = "",
    object_key: str = "",
    etag: str = "",
    avatar_key: str = "",
) -> AvatarChange:
    """Write one ``AvatarChange`` row; ``kind`` is an ``AvatarChange.Kind``, ``reason`` an error code.

    Text from the request is stored as ``core.text.storable_text`` makes it (a NUL becomes U+FFFD).
    Raises ``DatabaseError`` if the row cannot be written; the callers decide what that means.
    """
    return AvatarChange.objects.create(
        user=user,
        username=user.get_username(),
        kind=kind,
        reason=storable_text(reason, 64),
        object_key=storable_text(object_key, 1024),
        etag=storable_text(etag, 128),
        avatar_key=storable_text(avatar_key, 1024),
        auth_method=context.auth_method,
        client_ip=context.client_ip,
        user_agent=storable_text(context.user_agent, 512),
        request_id=context.request_id,
    )


def avatar_upload_key_grant(*, user: User, content_type: str, size: int, context: RequestContext) -> str:
    """``user_avatar_upload_key``, audited: a key is handed out only with its row (else 503
    ``audit_unavailable``); a refusal is recorded with its code and raised as it was."""
    try:
        key = user_avatar_upload_key(user=user, content_type=content_type, size=size)
    except ApplicationError as exc:
        _record_quietly(
            user=user, kind=AvatarChange.Kind.UPLOAD_KEY_REFUSED, context=context, reason=exc.code
        )
        raise
    try:
        avatar_change_record(
            user=user, kind=AvatarChange.Kind.UPLOAD_KEY_GRANTED, context=context, object_key=key
        )
    except DatabaseError:
        logger.exception("Could not write the avatar change audit row")
        raise ApplicationError(
            _("The audit log is unavailable; no upload key was handed out."),
            code="audit_unavailable",
            status_code=503,
            retry_after=5,
        ) from None
    return key


def avatar_confirm(*, user: User, key: str, context: RequestContext) -> User:
    """``user_avatar_set``, audited: accepted with the ETag checked and the new avatar's key, or
    refused with the error code (and the ETag, once OSS was asked), which is raised as it was."""
    checked = AvatarCheck()
    try:
        user = user_avatar_set(user=user, key=key, checked=checked)
    except ApplicationError as exc:
        _record_quietly(
            user=user,
            kind=AvatarChange.Kind.CONFIRMATION_REFUSED,
            context=context,
            reason=exc.code,
            object_key=key,
            etag=checked.etag,
        )
        raise
    # The avatar has already changed (and the replaced one is gone): a lost row is logged, not undone.
    _record_quietly(
        user=user,
        kind=AvatarChange.Kind.CONFIRMATION_ACCEPTED,
        context=context,
        object_key=key,
        etag=checked.etag,
        avatar_key=user.avatar_key,
    )
    return user


def avatar_change_record_refusal(**fields: Any) -> None:
    """Record a refusal (e.g. a malformed body) whose answer stands whatever the audit does; a row
    that cannot be written goes to the log instead. Takes ``avatar_change_record``'s arguments."""
    _record_quietly(**fields)


def _record_quietly(**fields: Any) -> None:
    try:
        avatar_change_record(**fields)
    except DatabaseError:
        logger.exception(
            "Could not write the avatar change audit row: %s",
            {name: value for name, value in fields.items() if name not in ("user", "context")},
        )
