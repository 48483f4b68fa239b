"""Applying what OSS reports (and what the server itself did) to the ledger and the usage totals.

**The ordering rule.** Every row of the ledger, present or removed, remembers the (event time, OSS
request id) of the last change applied to it. A change is applied only if its own pair is greater:
so a delete that arrives before its create leaves a removed row that the late create cannot
revive, of two overwrites the later one wins whatever order they arrive in, and a redelivered
event (an equal pair) changes nothing. ``eventTime`` has millisecond resolution; two changes of one
key within the same millisecond are ordered by request id, which is arbitrary but the same on every
delivery, so every order of arrival ends in the same state (and ``reconcile_upload_usage`` corrects
it from a listing if that state was the wrong one).

**Usage** moves by the change to the ledger, not by the event's ``deltaSize``: a row going from
removed to present adds its size and one object, present to present adds the size difference,
present to removed takes them off. So usage is always the sum of the present rows, whatever the
order of arrival, and never below zero. Row, usage and reservation change in one transaction.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import User

from ..folders import PROBE_FOLDER, key_owner
from ..models import ObjectEvent, StoredObject, UploadUsage
from .usage import reservation_consume, usage_row_locked

logger = logging.getLogger(__name__)

_BEFORE_EVERYTHING = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ObjectChange:
    """One object written or removed. ``size`` in bytes (0 for a removal); ``event_time`` aware."""

    key: str
    removed: bool
    size: int
    event_time: datetime
    event_name: str = ""
    etag: str = ""
    request_id: str = ""  # OSS's x-oss-request-id of the write; "" for the server's own records
    principal_id: str = ""
    source_ip: str = ""
    content_type: str = ""


def principal_session_name(principal_id: str) -> str:
    """The role session name in an assumed-role principal (``"<role id>:<session name>"``), or "".

    Alibaba's "Event notification" page documents ``principalId`` as the requester's UID; for an STS
    session it is not documented. ActionTrail names an assumed role ``<role id>:<session name>``, so
    both shapes are accepted: a bare id gives no session name.
    """
    _, sep, session = principal_id.partition(":")
    return session[:64] if sep else ""


@dataclass(frozen=True)
class Applied:
    """What one change did: ``applied`` False when the ledger already knew something newer;
    ``duplicate`` True when this OSS request had been applied before (nothing recorded)."""

    applied: bool
    duplicate: bool = False
    delta_bytes: int = 0
    delta_objects: int = 0


def change_apply(
    change: ObjectChange,
    *,
    source: str,
    message_id: str = "",
    request_id: str = "",
) -> Applied | None:
    """Apply ``change`` to the ledger in one transaction; None when ``key`` is in no user's folder or
    its owner is no user. ``source`` is an ``ObjectEvent.Source``. Raises ``DatabaseError``."""
    owner = key_owner(change.key)
    if owner is None and source == ObjectEvent.Source.EVENT and change.key.startswith(PROBE_FOLDER):
        ObjectEvent.objects.create(
            key=change.key,
            kind=ObjectEvent.Kind.REMOVED if change.removed else ObjectEvent.Kind.CREATED,
            source=ObjectEvent.Source.EVENT,
            event_name=change.event_name[:64],
            event_time=change.event_time,
            size=change.size,
            applied=False,
            principal_id=change.principal_id[:255],
            oss_request_id=change.request_id[:64],
            message_id=message_id[:128],
        )
        return Applied(applied=False)
    if owner is None or not User.objects.filter(pk=owner).exists():
        return None
    with transaction.atomic():
        if source == ObjectEvent.Source.EVENT and change.request_id:
            already = ObjectEvent.objects.filter(
                source=source, oss_request_id=change.request_id, key=change.key, event_name=change.event_name
            ).exists()
            if already:
                return Applied(applied=False, duplicate=True)
        row = _row_locked(change.key, owner)
        usage_row_locked(owner)
        newer = (change.event_time, change.request_id) > (row.event_time, row.request_id)
        delta_bytes = delta_objects = 0
        content_type = reservation_consume(key=change.key)
        if newer:
            old_bytes = row.size if row.present else 0
            new_bytes = 0 if change.removed else change.size
            delta_bytes = new_bytes - old_bytes
            delta_objects = int(not change.removed) - int(row.present)
            row.event_time, row.request_id = change.event_time, change.request_id
            row.present = not change.removed
            if not change.removed:
                row.size = change.size
                row.etag = change.etag[:128]
                row.content_type = (change.content_type or content_type)[:255]
                row.uploaded_at = change.event_time
                row.principal_id = change.principal_id[:255]
                row.source_ip = change.source_ip[:64]
            else:
                row.size = 0
            row.save()
            if delta_bytes or delta_objects:
                UploadUsage.objects.filter(pk=owner).update(
                    stored_bytes=Greatest(F("stored_bytes") + delta_bytes, 0),
                    stored_objects=Greatest(F("stored_objects") + delta_objects, 0),
                )
        try:
            with transaction.atomic():
                ObjectEvent.objects.create(
                    user_id=owner,
                    key=change.key,
                    kind=ObjectEvent.Kind.REMOVED if change.removed else ObjectEvent.Kind.CREATED,
                    source=source,
                    event_name=change.event_name[:64],
                    event_time=change.event_time,
                    size=change.size,
                    delta_bytes=delta_bytes,
                    delta_objects=delta_objects,
                    applied=newer,
                    principal_id=change.principal_id[:255],
                    session_name=principal_session_name(change.principal_id),
                    source_ip=change.source_ip[:64],
                    oss_request_id=change.request_id[:64],
                    message_id=message_id[:128],
                    request_id=request_id[:64],
                )
        except IntegrityError:
            # The same OSS request applied concurrently by another push: undo ours, it is a duplicate.
            transaction.set_rollback(True)
            return Applied(applied=False, duplicate=True)
    return Applied(applied=newer, delta_bytes=delta_bytes, delta_objects=delta_objects)


def _row_locked(key: str, owner: int) -> StoredObject:
    """The ledger row of ``key``, made (as removed, known since forever) if new, and locked."""
    StoredObject.objects.get_or_create(
        key=key,
        defaults={
            "user_id": owner,
            "present": False,
            "uploaded_at": _BEFORE_EVERYTHING,
            "event_time": _BEFORE_EVERYTHING,
        },
    )
    return StoredObject.objects.select_for_update().get(key=key)


def server_write_record(*, key: str, size: int, content_type: str = "", etag: str = "") -> Applied | None:
    """The server itself wrote ``key`` (a confirmed avatar's copy): the ledger knows at once, without
    waiting for the event (which then changes nothing, or only fills in OSS's request id)."""
    return change_apply(
        ObjectChange(
            key=key,
            removed=False,
            size=size,
            event_time=timezone.now(),
            event_name="ObjectCreated:CopyObject",
            etag=etag,
            content_type=content_type,
        ),
        source=ObjectEvent.Source.SERVER,
    )


def server_delete_record(
    *, key: str, source: str = "server", request_id: str = "", source_ip: str = ""
) -> Applied | None:
    """The server itself deleted ``key`` (an avatar's upload, a user's delete): off the ledger at once."""
    return change_apply(
        ObjectChange(
            key=key,
            removed=True,
            size=0,
            event_time=timezone.now(),
            event_name="ObjectRemoved:DeleteObject",
            source_ip=source_ip,
        ),
        source=source,
        request_id=request_id,
    )
