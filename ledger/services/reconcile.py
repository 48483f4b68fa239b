"""The safety net: list the users' folders with the server's key (outside requests), correct the
ledger where it differs, and report the drift found. A lost event shows here as drift."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import User
from aliyun import oss

from ..folders import usage_owner, usage_prefixes, usage_roots
from ..models import ObjectEvent, ReceivedMessage, StoredObject, UploadUsage
from .events import ObjectChange, change_apply
from .usage import expired_reservations_sweep, usage_row_locked

logger = logging.getLogger(__name__)

# A removed key's row is kept this long after its last event, so a redelivered old event cannot
# bring it back; MNS retries for about a day at most (EXPONENTIAL_DECAY_RETRY, "NotifyStrategy").
TOMBSTONE_DAYS = 3


@dataclass
class Drift:
    """What one reconcile found and corrected. ``missing``: in OSS, not in the ledger; ``gone``: in
    the ledger, not in OSS; ``resized``: sizes differ; ``usage_fixed``: users whose running totals
    differed from the sum of their rows. Keys written while the listing ran are left to their events."""

    users: int = 0
    objects: int = 0
    bytes: int = 0
    unowned: int = 0
    missing: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    usage_fixed: int = 0
    reservations_expired: int = 0

    @property
    def drift(self) -> int:
        return len(self.missing) + len(self.gone) + len(self.resized)


def ledger_reconcile(*, users: list[User] | None = None) -> Drift:
    """List every usage root once (or, for ``users``, their own folders) and correct the ledger.

    A correction is applied as a change at the time the listing started, so anything an event
    changed after that wins over it (the ordering rule of ``ledger.services.events``). Raises
    ``oss.OssError`` before anything is stored.
    """
    started = timezone.now()
    listed: dict[str, tuple[int, str, int]] = {}
    report = Drift()
    if users is None:
        for root in usage_roots():
            for item in oss.list_objects(root):
                owner = usage_owner(root, item.key)
                if owner is None:
                    report.unowned += 1
                    continue
                listed[item.key] = (item.size, "", owner)
        scope = StoredObject.objects.filter(present=True)
        user_ids = set(
            User.objects.filter(pk__in={o for _, _, o in listed.values()}).values_list("pk", flat=True)
        )
    else:
        user_ids = {user.pk for user in users}
        for user in users:
            for prefix in usage_prefixes(user.pk):
                for item in oss.list_objects(prefix):
                    listed[item.key] = (item.size, "", user.pk)
        scope = StoredObject.objects.filter(present=True, user_id__in=user_ids)
    report.unowned += sum(1 for _, _, owner in listed.values() if owner not in user_ids)
    known: dict[str, tuple[int, object]] = {
        key: (size, event_time) for key, size, event_time in scope.values_list("key", "size", "event_time")
    }
    for key, (size, _etag, owner) in listed.items():
        if owner not in user_ids:
            continue
        report.objects += 1
        report.bytes += size
        if key not in known:
            report.missing.append(key)
        elif known[key][0] != size:
            report.resized.append(key)
        else:
            continue
        change_apply(
            ObjectChange(key=key, removed=False, size=size, event_time=started, event_name="reconcile"),
            source=ObjectEvent.Source.RECONCILE,
        )
    for key in set(known) - set(listed):
        report.gone.append(key)
        change_apply(
            ObjectChange(key=key, removed=True, size=0, event_time=started, event_name="reconcile"),
            source=ObjectEvent.Source.RECONCILE,
        )
    all_users = user_ids | (set(UploadUsage.objects.values_list("pk", flat=True)) if users is None else set())
    for user_id in all_users:
        report.usage_fixed += _totals_fix(user_id, counted_at=started)
    report.users = len(user_ids)
    if users is None:
        report.reservations_expired = expired_reservations_sweep()
        cutoff = started - timedelta(days=TOMBSTONE_DAYS)
        StoredObject.objects.filter(present=False, event_time__lt=cutoff).delete()
        ReceivedMessage.objects.filter(received_at__lt=cutoff).delete()
    for kind, keys in (("missing", report.missing), ("gone", report.gone), ("resized", report.resized)):
        if keys:
            logger.warning("reconcile_upload_usage: %d key(s) %s in the ledger", len(keys), kind)
    return report


def _totals_fix(user_id: int, *, counted_at) -> int:
    """Set the user's stored totals to the sum of their present rows; 1 if they differed."""
    with transaction.atomic():
        row = usage_row_locked(user_id)
        sums = StoredObject.objects.filter(user_id=user_id, present=True).aggregate(size=Sum("size"))
        objects = StoredObject.objects.filter(user_id=user_id, present=True).count()
        size = sums["size"] or 0
        changed = (row.stored_bytes, row.stored_objects) != (size, objects)
        UploadUsage.objects.filter(pk=user_id).update(
            stored_bytes=size, stored_objects=objects, counted_at=counted_at
        )
    return int(changed)
