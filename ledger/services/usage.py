"""A user's quota: reservations for signed forms, kept until the form expires or its object is in the
ledger, and the errors every hand-out answers with."""

import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from core.exceptions import ApplicationError

from ..models import FormReservation, UploadUsage
from ..selectors import UsageSummary, upload_usage_summary, usage_summary_of

logger = logging.getLogger(__name__)


def quota_exceeded() -> ApplicationError:
    return ApplicationError(
        _("Your storage quota is used up; delete files or ask for a larger quota."),
        code="quota_exceeded",
        status_code=403,
    )


def usage_unavailable() -> ApplicationError:
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
        raise usage_unavailable() from None


def usage_row_locked(user_id: int) -> UploadUsage:
    """The user's usage row, created if missing, locked until the transaction ends. Every writer
    locks it before any ``FormReservation`` row, so two writers never wait on each other in a ring."""
    UploadUsage.objects.get_or_create(user_id=user_id)
    return UploadUsage.objects.select_for_update().get(pk=user_id)


def _expired_sweep(row: UploadUsage, now: datetime) -> None:
    """Drop the user's lapsed reservations and take them off ``pending_*`` (under the row's lock)."""
    expired = FormReservation.objects.filter(user_id=row.pk, expires_at__lte=now)
    totals = expired.aggregate(size=Sum("size"))
    count = expired.delete()[0]
    if count:
        row.pending_bytes = max(0, row.pending_bytes - (totals["size"] or 0))
        row.pending_objects = max(0, row.pending_objects - count)
        UploadUsage.objects.filter(pk=row.pk).update(
            pending_bytes=Greatest(F("pending_bytes") - (totals["size"] or 0), 0),
            pending_objects=Greatest(F("pending_objects") - count, 0),
        )


def usage_reserve(*, user: User, size: int, key: str, content_type: str, expires_at: datetime) -> None:
    """Reserve one object of ``size`` bytes at ``key`` for a signed form valid until ``expires_at``.

    Under the usage row's lock, so two concurrent requests cannot both take the last bytes. The
    reservation counts until ``expires_at`` or until an event (or the server itself) puts ``key``
    in the ledger, whichever comes first; nothing else drops it. Raises 403 ``quota_exceeded`` if
    one more object, or ``size`` more bytes, would not fit; 503 ``audit_unavailable`` on a database
    failure.
    """
    try:
        with transaction.atomic():
            now = timezone.now()
            row = usage_row_locked(user.pk)
            _expired_sweep(row, now)
            summary = usage_summary_of(row, now=now)
            if summary.quota_objects is not None and summary.used_objects + 1 > summary.quota_objects:
                raise quota_exceeded()
            if summary.quota_bytes is not None and summary.used_bytes + size > summary.quota_bytes:
                raise quota_exceeded()
            FormReservation.objects.create(
                user=user, key=key, size=size, content_type=content_type[:255], expires_at=expires_at
            )
            live = row.pending_until is not None and row.pending_until > now
            UploadUsage.objects.filter(pk=user.pk).update(
                pending_bytes=(F("pending_bytes") if live else 0) + size,
                pending_objects=(F("pending_objects") if live else 0) + 1,
                pending_until=max(expires_at, row.pending_until) if live else expires_at,
            )
    except DatabaseError:
        raise usage_unavailable() from None


def usage_release(*, user: User, key: str) -> None:
    """Undo the reservation of a form that was never handed out (never below zero)."""
    try:
        with transaction.atomic():
            usage_row_locked(user.pk)
            reservation_consume(key=key)
    except DatabaseError:
        logger.exception("Could not release a quota reservation of user %s", user.pk)


def reservation_consume(*, key: str) -> str:
    """Drop the reservation for ``key`` (its object is in the ledger now), inside the caller's
    transaction and after the caller locked the owner's usage row. Returns the content type the
    form declared ("" when there was none)."""
    reservation = FormReservation.objects.filter(key=key).first()
    if reservation is None:
        return ""
    if FormReservation.objects.filter(pk=reservation.pk).delete()[0]:
        UploadUsage.objects.filter(pk=reservation.user_id).update(
            pending_bytes=Greatest(F("pending_bytes") - reservation.size, 0),
            pending_objects=Greatest(F("pending_objects") - 1, 0),
        )
    return reservation.content_type


def expired_reservations_sweep() -> int:
    """Drop every lapsed reservation (``reconcile_upload_usage``); returns how many went."""
    now = timezone.now()
    swept = 0
    user_ids = set(FormReservation.objects.filter(expires_at__lte=now).values_list("user_id", flat=True))
    for user_id in user_ids:
        with transaction.atomic():
            row = usage_row_locked(user_id)
            before = FormReservation.objects.filter(user_id=user_id).count()
            _expired_sweep(row, now)
            swept += before - FormReservation.objects.filter(user_id=user_id).count()
    return swept
