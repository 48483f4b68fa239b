"""Reads of what the server knows is stored: a user's usage and quota, their files, the history."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from core.compiled import get_by_pk

from .models import ObjectEvent, StoredObject, UploadUsage


@dataclass(frozen=True)
class UsageSummary:
    """Bytes and objects the user's folders hold as far as the server knows, plus what unused forms
    reserved; a quota of None is no limit."""

    used_bytes: int
    used_objects: int
    quota_bytes: int | None
    quota_objects: int | None
    counted_at: datetime | None

    @property
    def bytes_left(self) -> int | None:
        return None if self.quota_bytes is None else max(0, self.quota_bytes - self.used_bytes)

    @property
    def at_quota(self) -> bool:
        """Nothing more fits: no byte, or no object, is left."""
        return (self.quota_bytes is not None and self.used_bytes >= self.quota_bytes) or (
            self.quota_objects is not None and self.used_objects >= self.quota_objects
        )

    def near_quota(self, percent: int) -> bool:
        """Less than ``percent`` % of the byte or the object quota is left (at quota included)."""
        if percent <= 0:
            return self.at_quota
        near_bytes = self.quota_bytes is not None and (self.quota_bytes - self.used_bytes) * 100 < (
            self.quota_bytes * percent
        )
        near_objects = self.quota_objects is not None and (self.quota_objects - self.used_objects) * 100 < (
            self.quota_objects * percent
        )
        return near_bytes or near_objects


def _limit(override: int | None, default: int) -> int | None:
    value = default if override is None else override
    return value or None  # 0: no limit


def pending_counts(row: UploadUsage, *, now: datetime | None = None) -> tuple[int, int]:
    """The bytes and objects unused forms still reserve: none once the last of them has expired."""
    if row.pending_until is None or row.pending_until <= (now or timezone.now()):
        return 0, 0
    return row.pending_bytes, row.pending_objects


def usage_summary_of(row: UploadUsage | None, *, now: datetime | None = None) -> UsageSummary:
    """The summary of a usage row (None: a user the server has seen nothing of yet)."""
    quota_bytes = _limit(row.quota_bytes if row else None, settings.UPLOAD_QUOTA_BYTES)
    quota_objects = _limit(row.quota_objects if row else None, settings.UPLOAD_QUOTA_OBJECTS)
    if row is None:
        return UsageSummary(0, 0, quota_bytes, quota_objects, None)
    pending_bytes, pending_objects = pending_counts(row, now=now)
    return UsageSummary(
        used_bytes=row.stored_bytes + pending_bytes,
        used_objects=row.stored_objects + pending_objects,
        quota_bytes=quota_bytes,
        quota_objects=quota_objects,
        counted_at=row.counted_at,
    )


def upload_usage_summary(*, user: User) -> UsageSummary:
    """What ``user``'s folders hold and their quota (``GET /api/me/`` shows it, and every hand-out
    reads it: one SELECT, compiled once, ``core.compiled``). Raises DatabaseError."""
    return usage_summary_of(get_by_pk(UploadUsage, user.pk))


def stored_objects_of(*, user: User) -> QuerySet[StoredObject]:
    """``user``'s present files, newest first (then by id, newest first): what ``GET
    /api/uploads/objects/`` pages through."""
    return StoredObject.objects.filter(user=user, present=True).order_by("-uploaded_at", "-id")


def stored_object_of(*, user: User, key: str) -> StoredObject | None:
    """``user``'s present file at ``key``; None for a key that is not theirs or not there (alike)."""
    return StoredObject.objects.filter(user=user, key=key, present=True).first()


def object_events_of(*, user_id: int) -> QuerySet[ObjectEvent]:
    """The history of ``user_id``'s files, newest first."""
    return ObjectEvent.objects.filter(user_id=user_id).order_by("-event_time", "-id")


def object_events_between(start: datetime, end: datetime) -> QuerySet[ObjectEvent]:
    """Uploads and deletes whose OSS event time is in [start, end)."""
    return ObjectEvent.objects.filter(event_time__gte=start, event_time__lt=end)


def probe_event_received_at(key: str) -> datetime | None:
    """When the receiver got OSS's event for ``aliyun_doctor``'s probe at ``key`` (None: not yet)."""
    return (
        ObjectEvent.objects.filter(key=key, kind=ObjectEvent.Kind.CREATED, user__isnull=True)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
