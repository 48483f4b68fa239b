"""Writes of the audit app: the overview's rollups, retention of the token issuance log, and the ids of
deleted accounts kept on their rows."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from avatars.models import AvatarChange
from ledger.models import ObjectEvent
from uploads.models import TokenIssuance

from .models import IssuanceRollup, IssuanceRollupHour, IssuanceRollupHourUser, IssuanceRollupUser
from .selectors import (
    HOUR_GRACE,
    OUTCOMES,
    ROLLUP_GRACE,
    WINDOWS,
    day_start,
    issuance_counts_by_hour,
    issuance_counts_by_user_and_day,
    issuance_hourly_summary,
    issuances_between,
)


def issuance_rollups_ensure(*, days: Iterable[date]) -> int:
    """Roll up each of ``days`` (closed local days) not rolled up yet; returns how many it did.

    Each day is counted outside any transaction, then written in one: a concurrent run that
    counted the same day finds the unique (time zone, day) taken and leaves it to the first.
    """
    zone = timezone.get_current_timezone_name()
    wanted = set(days)
    done = set(IssuanceRollup.objects.filter(time_zone=zone, day__in=wanted).values_list("day", flat=True))
    made = 0
    for day in sorted(wanted - done):
        rows = issuances_between(day_start(day), day_start(day + timedelta(days=1)))
        users, hours = issuance_counts_by_user_and_day(rows), issuance_counts_by_hour(rows)
        try:
            with transaction.atomic():
                rollup = IssuanceRollup.objects.create(day=day, time_zone=zone)
                IssuanceRollupUser.objects.bulk_create(
                    (
                        IssuanceRollupUser(
                            rollup=rollup,
                            username=row["username"],
                            client_ips=row["client_ips"],
                            **{outcome: row[outcome] for outcome in OUTCOMES},
                        )
                        for row in users
                    ),
                    batch_size=1000,
                )
                IssuanceRollupHour.objects.bulk_create(
                    IssuanceRollupHour(
                        rollup=rollup, hour=row["hour"], **{outcome: row[outcome] for outcome in OUTCOMES}
                    )
                    for row in hours
                )
        except IntegrityError:
            continue  # another run rolled this day up meanwhile
        made += 1
    return made


def issuance_hour_rollups_ensure(*, hours: Iterable[datetime]) -> int:
    """Roll up each of ``hours`` (aware starts of closed hours of a day not rolled up yet) that is
    not rolled up yet; returns how many it did. Concurrent runs: as ``issuance_rollups_ensure``."""
    zone = timezone.get_current_timezone_name()
    wanted = set(hours)
    done = set(
        IssuanceRollupHourUser.objects.filter(time_zone=zone, hour__in=wanted, username="").values_list(
            "hour", flat=True
        )
    )
    made = 0
    for hour in sorted(wanted - done):
        summary = issuance_hourly_summary(issuances_between(hour, hour + timedelta(hours=1)))
        try:
            with transaction.atomic():
                IssuanceRollupHourUser.objects.create(time_zone=zone, hour=hour, username="")
                IssuanceRollupHourUser.objects.bulk_create(
                    IssuanceRollupHourUser(
                        time_zone=zone,
                        hour=hour,
                        username=username,
                        addresses=row["addresses"],
                        **{outcome: row[outcome] for outcome in OUTCOMES},
                    )
                    for (_, username), row in summary.items()
                )
        except IntegrityError:
            continue
        made += 1
    return made


@dataclass(frozen=True)
class RollupsMade:
    days: int  # closed days rolled up by this run
    hours: int  # closed hours of the days not rolled up yet


def issuance_rollups_update(*, now: datetime | None = None, days: int = max(WINDOWS)) -> RollupsMade:
    """Roll up what the overview of the last ``days`` local days can read from rollups at ``now``: every
    day that closed more than ``ROLLUP_GRACE`` ago, then every hour of the days after them that closed
    more than ``HOUR_GRACE`` ago; hour rollups of days now rolled up are dropped. Safe to run at any
    time and concurrently (``manage.py rollup_token_issuances``, every few minutes)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    last_closed = timezone.localdate(now - ROLLUP_GRACE) - timedelta(days=1)
    closed_days = [first_day + timedelta(days=n) for n in range((last_closed - first_day).days + 1)]
    made_days = issuance_rollups_ensure(days=closed_days)
    live_since = day_start(max(first_day, last_closed + timedelta(days=1)))
    # The hour rollups of days rolled up are no longer read.
    IssuanceRollupHourUser.objects.filter(
        time_zone=timezone.get_current_timezone_name(), hour__lt=live_since
    ).delete()
    closed_hours = []
    hour = live_since
    while hour + timedelta(hours=1) + HOUR_GRACE <= now:
        closed_hours.append(hour)
        hour += timedelta(hours=1)
    return RollupsMade(days=made_days, hours=issuance_hour_rollups_ensure(hours=closed_hours))


@dataclass(frozen=True)
class Pruned:
    rows: int
    batches: int


def token_issuances_prune(
    *,
    before: datetime,
    batch_size: int = 5000,
    progress: Callable[[int, int, int], None] = lambda batch, count, total: None,
) -> Pruned:
    """Delete the token issuance rows created before ``before``, ``batch_size`` primary keys per short
    transaction, so a large backlog never becomes one giant DELETE that holds locks and bloats the WAL
    while issuance goes on; then the rollups of the days that lost rows (the overview reads their rows
    until the next rollup run). ``progress(batch number, rows it deleted, rows deleted so far)`` follows each batch."""
    expired = TokenIssuance.objects.filter(created_at__lt=before)
    deleted = batches = 0
    while True:
        with transaction.atomic():
            ids = list(expired.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            # Nothing references an audit row and it has no signals: one DELETE ... WHERE id IN.
            count, _ = TokenIssuance.objects.filter(pk__in=ids).delete()
        deleted += count
        batches += 1
        progress(batches, count, deleted)
    IssuanceRollup.objects.filter(day__lte=timezone.localdate(before)).delete()
    return Pruned(rows=deleted, batches=batches)


def deleted_account_rows_keep_id(*, user: User) -> int:
    """Before ``user`` is deleted: write its id into ``deleted_account_id`` of its audit rows (token
    issuances, avatar changes, file events), whose ``user`` link the deletion clears (SET_NULL). So
    the rows of a deleted account stay that account's, and a new account, which gets a new id even
    when it takes the same username, never inherits them. Connected to ``pre_delete`` of the user
    model (``audit/apps.py``), so it runs in the deletion's own transaction. Returns the rows updated."""
    return sum(
        model.objects.filter(user=user).update(deleted_account_id=user.pk)
        for model in (TokenIssuance, AvatarChange, ObjectEvent)
    )
