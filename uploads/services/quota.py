"""A user's quota: usage as far as the server knows it, reservations for signed forms, and the counts
of the user's folders in OSS that correct it."""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun import oss
from core.exceptions import ApplicationError
from core.requests import RequestContext

from .. import purposes
from ..models import TokenIssuance, UploadUsage
from ..selectors import UsageSummary, upload_usage_summary, usage_summary_of
from .audit import issuance_record

logger = logging.getLogger(__name__)


def refusal_record(
    *, user: User, context: RequestContext, grant: str, error: ApplicationError, **fields: Any
) -> ApplicationError:
    """Audit a request the server refused before calling STS with ``error``'s code; returns ``error``
    for the caller to raise."""
    issuance_record(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REFUSED,
        grant=grant,
        error_code=error.code,
        **fields,
    )
    return error


def quota_exceeded() -> ApplicationError:
    return ApplicationError(
        _("Your storage quota is used up; delete files or ask for a larger quota."),
        code="quota_exceeded",
        status_code=403,
    )


def _usage_unavailable() -> ApplicationError:
    logger.exception("Could not read or write the upload usage")
    return ApplicationError(
        _("The database is unavailable; nothing was handed out."),
        code="audit_unavailable",
        status_code=503,
        retry_after=5,
    )


def usage_summary(user: User) -> UsageSummary:
    """``upload_usage_summary``, with a database failure answered as ``audit_unavailable`` (503)."""
    try:
        return upload_usage_summary(user=user)
    except DatabaseError:
        raise _usage_unavailable() from None


def usage_reserve(*, user: User, size: int) -> None:
    """Count a form upload of ``size`` bytes as pending, if it fits.

    Under a row lock, so two concurrent requests cannot both take the last bytes. Raises 403
    ``quota_exceeded`` if one more object, or ``size`` more bytes, would not fit.
    """
    try:
        with transaction.atomic():
            UploadUsage.objects.get_or_create(user=user)
            row = UploadUsage.objects.select_for_update().get(pk=user.pk)
            summary = usage_summary_of(row)
            if summary.quota_objects is not None and summary.used_objects + 1 > summary.quota_objects:
                raise quota_exceeded()
            if summary.quota_bytes is not None and summary.used_bytes + size > summary.quota_bytes:
                raise quota_exceeded()
            UploadUsage.objects.filter(pk=user.pk).update(
                pending_bytes=F("pending_bytes") + size, pending_objects=F("pending_objects") + 1
            )
    except DatabaseError:
        raise _usage_unavailable() from None


def usage_release(*, user: User, size: int) -> None:
    """Undo a reservation whose form was never handed out (never below zero: a count may have run)."""
    try:
        UploadUsage.objects.filter(pk=user.pk).update(
            pending_bytes=Greatest(F("pending_bytes") - size, 0),
            pending_objects=Greatest(F("pending_objects") - 1, 0),
        )
    except DatabaseError:
        logger.exception("Could not release a quota reservation of user %s", user.pk)


@dataclass(frozen=True)
class UsageCount:
    """What one count found: users whose usage was stored, and the objects and bytes they hold."""

    users: int
    objects: int
    bytes: int
    unowned: int = 0  # objects under a usage root whose owner is no user (e.g. deleted)


def _store_count(*, user_id: int, objects: int, size: int, counted_at: datetime) -> None:
    """Replace the user's stored usage with a count, dropping reservations (their uploads are in it or unused)."""
    with transaction.atomic():
        UploadUsage.objects.get_or_create(user_id=user_id)
        UploadUsage.objects.filter(pk=user_id).update(
            stored_bytes=size,
            stored_objects=objects,
            pending_bytes=0,
            pending_objects=0,
            counted_at=counted_at,
        )


def upload_usage_recount(*, user: User) -> UsageCount:
    """List ``user``'s folders (``user/<id>/`` and registered roots, e.g. ``avatars/<id>/``) with the
    server's key, and store what they hold as the user's usage. Raises ``oss.OssError``.

    Reservations for forms not used yet are dropped with the count: their uploads, if they come, are
    still capped by the form's own size range and show at the next count.
    """
    counted_at = timezone.now()
    objects = size = 0
    for prefix in purposes.usage_prefixes(user.pk):
        for item in oss.list_objects(prefix):
            objects, size = objects + 1, size + item.size
    _store_count(user_id=user.pk, objects=objects, size=size, counted_at=counted_at)
    return UsageCount(users=1, objects=objects, bytes=size)


def upload_usage_refresh(*, user: User) -> None:
    """``upload_usage_recount`` after the server itself changed the user's folders (a confirmed avatar);
    never raises: a failed count leaves the previous figures until the next one."""
    try:
        upload_usage_recount(user=user)
    except (oss.OssError, DatabaseError) as exc:
        logger.warning("Could not count user %s's upload usage: %s", user.pk, getattr(exc, "code", exc))


def upload_usage_reconcile() -> UsageCount:
    """Count every user's folders in one listing per root (``user/``, ``avatars/``…) and store the result.

    Users with a usage row and nothing stored go back to zero. Raises ``oss.OssError`` before anything
    is stored.
    """
    counted_at = timezone.now()
    totals: dict[int, list[int]] = {}
    unowned = 0
    for root in purposes.usage_roots():
        for item in oss.list_objects(root):
            owner = purposes.usage_owner(root, item.key)
            if owner is None:
                unowned += 1
                continue
            entry = totals.setdefault(owner, [0, 0])
            entry[0] += 1
            entry[1] += item.size
    known = set(User.objects.filter(pk__in=list(totals)).values_list("pk", flat=True))
    unowned += sum(objects for owner, (objects, _) in totals.items() if owner not in known)
    for user_id in set(UploadUsage.objects.values_list("pk", flat=True)) | known:
        objects, size = totals.get(user_id, (0, 0))
        _store_count(user_id=user_id, objects=objects, size=size, counted_at=counted_at)
    return UsageCount(
        users=len(known),
        objects=sum(totals[u][0] for u in known),
        bytes=sum(totals[u][1] for u in known),
        unowned=unowned,
    )
