"""Reads: the audit overview of issuances over a window of days, for reviewers (and quota usage,
and whether a credential URL still works).

Counts are per day of the site's time zone (``TIME_ZONE``). A day that ended more than
``ROLLUP_GRACE`` ago no longer changes, so its rows are counted once into rollups
(``IssuanceRollup*``) the first time an overview needs that day; in the rest of the window (today,
and yesterday during the grace) each hour is rolled up ``HOUR_GRACE`` after it ends, and only the
open hour's rows are read on every view. An overview of 90 days thus reads rollups and about an
hour of rows, not the whole window.

The rollups assume what the service guarantees: rows are appended with ``created_at`` set to the
time of the request, and nothing but the retention command deletes them (which also drops the
rollups it makes stale).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet, Sum, TextChoices
from django.db.models.functions import Coalesce, Trunc, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import token_is_current, token_is_current_q
from core.compiled import get_by_pk

from .models import (
    CredentialUrl,
    IssuanceRollup,
    IssuanceRollupHour,
    IssuanceRollupHourUser,
    IssuanceRollupUser,
    TokenIssuance,
    UploadUsage,
)

OUTCOMES = ("issued", "reused", "refused", "failed")
GRANTED = ("issued", "reused")  # "issuances" in the top users: credentials handed out
WINDOWS = (7, 30, 90)  # days the overview offers
TOP_USERS = 10
# A closed day is rolled up only this long after it ended: requests in flight at midnight have
# committed by then, and any throttle window's refusals have been counted.
ROLLUP_GRACE = timedelta(hours=1)
# Within a day not rolled up yet, an hour is rolled up this long after it ended.
HOUR_GRACE = timedelta(minutes=5)
# Client IPs kept per user and hour in an hour's rollup: enough to tell "many addresses" (and show
# how many, up to this) without keeping every address.
ADDRESS_SAMPLE = 50

# Anomalies worth a look (README, "The audit overview"). Each is a lower bound, inclusive.
MANY_ADDRESSES_PER_DAY = 5  # distinct client IPs of one user in one day: shared or stolen credentials
REFUSAL_FLOOD_PER_DAY = 100  # refusals of one user in one day: a script hammering the API
FAILURE_BURST_PER_HOUR = 10  # failed STS calls of all users in one hour: STS down or misconfigured


@dataclass(frozen=True)
class DayCounts:
    day: date
    issued: int = 0
    reused: int = 0
    refused: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.issued + self.reused + self.refused + self.failed


@dataclass(frozen=True)
class UserCount:
    username: str
    count: int


@dataclass(frozen=True)
class Anomaly:
    """``kind`` is "many_addresses" or "refusal_flood" (a user's day) or "failure_burst" (an hour)."""

    kind: str
    start: datetime  # aware; the day's or the hour's start
    end: datetime
    value: int
    threshold: int
    username: str = ""


@dataclass(frozen=True)
class Overview:
    """Counts of audit rows by outcome over ``window_days`` local days ending today (in full)."""

    window_days: int
    first_day: date
    last_day: date
    days: list[DayCounts]  # one per day of the window, oldest first, zeros included
    totals: DayCounts  # the window's sums (its ``day`` is ``first_day``)
    top_issuances: list[UserCount]  # issued + reused
    top_refusals: list[UserCount]
    top_failures: list[UserCount]
    anomalies: list[Anomaly]  # newest first
    live_since: datetime  # rows from here on were counted live, older ones from rollups
    thresholds: dict[str, int] = field(
        default_factory=lambda: {
            "many_addresses": MANY_ADDRESSES_PER_DAY,
            "refusal_flood": REFUSAL_FLOOD_PER_DAY,
            "failure_burst": FAILURE_BURST_PER_HOUR,
        }
    )


def _outcome_counts() -> dict[str, Any]:
    """Requests per outcome, as aggregate expressions over ``TokenIssuance``: the sum of ``attempts``
    (a throttled flood shares one row per throttle window; every other row is 1)."""
    return {outcome: Coalesce(Sum("attempts", filter=Q(outcome=outcome)), 0) for outcome in OUTCOMES}


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _by_user_and_day(rows: QuerySet) -> list[dict[str, Any]]:
    """Per (local day, username): the outcome counts and the number of distinct client IPs."""
    tz = timezone.get_current_timezone()
    return list(
        rows.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "username")
        .annotate(**_outcome_counts(), client_ips=Count("client_ip", distinct=True))
    )


def _by_hour(rows: QuerySet) -> list[dict[str, Any]]:
    """Per local hour (an aware datetime): the outcome counts of all users."""
    tz = timezone.get_current_timezone()
    return list(
        rows.order_by()
        .annotate(hour=Trunc("created_at", "hour", tzinfo=tz))
        .values("hour")
        .annotate(**_outcome_counts())
    )


def _rows_between(start: datetime, end: datetime | None = None) -> QuerySet:
    rows = TokenIssuance.objects.filter(created_at__gte=start)
    return rows if end is None else rows.filter(created_at__lt=end)


def issuance_rollups_ensure(*, days: Iterable[date]) -> int:
    """Roll up each of ``days`` (closed local days) not rolled up yet; returns how many it did.

    Each day is counted outside any transaction, then written in one: a concurrent request that
    counted the same day finds the unique (time zone, day) taken and leaves it to the first.
    """
    zone = timezone.get_current_timezone_name()
    wanted = set(days)
    done = set(IssuanceRollup.objects.filter(time_zone=zone, day__in=wanted).values_list("day", flat=True))
    made = 0
    for day in sorted(wanted - done):
        rows = _rows_between(_day_start(day), _day_start(day + timedelta(days=1)))
        users, hours = _by_user_and_day(rows), _by_hour(rows)
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
            continue  # another request rolled this day up meanwhile
        made += 1
    return made


def _hourly_summary(rows: QuerySet) -> dict[tuple[datetime, str], dict[str, Any]]:
    """Per (local hour, username): the outcome counts and up to ``ADDRESS_SAMPLE`` client IPs."""
    hour = Trunc("created_at", "hour", tzinfo=timezone.get_current_timezone())
    rows = rows.order_by().annotate(hour=hour)
    summary: dict[tuple[datetime, str], dict[str, Any]] = {
        (row["hour"], row["username"]): {**row, "addresses": []}
        for row in rows.values("hour", "username").annotate(**_outcome_counts())
    }
    for start, username, address in rows.values_list("hour", "username", "client_ip").distinct():
        kept = summary[start, username]["addresses"]
        if address is not None and len(kept) < ADDRESS_SAMPLE:
            kept.append(address)
    return summary


def issuance_hour_rollups_ensure(*, hours: Iterable[datetime]) -> int:
    """Roll up each of ``hours`` (aware starts of closed hours of a day not rolled up yet) that is
    not rolled up yet; returns how many it did. Concurrent requests: as ``issuance_rollups_ensure``."""
    zone = timezone.get_current_timezone_name()
    wanted = set(hours)
    done = set(
        IssuanceRollupHourUser.objects.filter(time_zone=zone, hour__in=wanted, username="").values_list(
            "hour", flat=True
        )
    )
    made = 0
    for hour in sorted(wanted - done):
        summary = _hourly_summary(_rows_between(hour, hour + timedelta(hours=1)))
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


def _live(since: datetime, now: datetime) -> tuple[list[dict[str, Any]], dict[tuple[date, str], set[str]]]:
    """The part of the window after the rolled-up days, per (local hour, username): its closed hours
    from hour rollups (made now if missing), the rest from the audit rows. Returns those rows
    (``hour``, ``username``, the outcome counts) and the client IPs seen per (local day, username)."""
    zone = timezone.get_current_timezone_name()
    closed = []
    hour = since
    while hour + timedelta(hours=1) + HOUR_GRACE <= now:
        closed.append(hour)
        hour += timedelta(hours=1)
    issuance_hour_rollups_ensure(hours=closed)
    rows: list[dict[str, Any]] = []
    addresses: dict[tuple[date, str], set[str]] = defaultdict(set)
    for row in (
        IssuanceRollupHourUser.objects.filter(time_zone=zone, hour__gte=since, hour__lt=hour)
        .exclude(username="")
        .values("hour", "username", "addresses", *OUTCOMES)
    ):
        rows.append(row)
        addresses[timezone.localdate(row["hour"]), row["username"]].update(row["addresses"])
    for (start, username), row in _hourly_summary(_rows_between(hour)).items():
        rows.append(row)
        addresses[timezone.localdate(start), username].update(row["addresses"])
    return rows, addresses


def issuance_overview(*, days: int, now: datetime | None = None) -> Overview:
    """What happened over the last ``days`` local days (today included): counts per day and outcome,
    the top users by issuances, refusals and failures, and the anomalies above their thresholds.

    The days that closed more than ``ROLLUP_GRACE`` ago come from rollups (made now if missing);
    the rest from the audit rows. Raises ``ValueError`` for a window that is not positive.
    """
    if days < 1:
        raise ValueError("the window must be at least one day")
    now = now or timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    last_closed = timezone.localdate(now - ROLLUP_GRACE) - timedelta(days=1)
    rolled_days = [first_day + timedelta(days=n) for n in range((last_closed - first_day).days + 1)]
    live_since = _day_start(max(first_day, last_closed + timedelta(days=1)))
    if issuance_rollups_ensure(days=rolled_days):
        # The hour rollups of days now rolled up are no longer read.
        IssuanceRollupHourUser.objects.filter(
            time_zone=timezone.get_current_timezone_name(), hour__lt=live_since
        ).delete()
    zone = timezone.get_current_timezone_name()
    rollups = IssuanceRollup.objects.filter(time_zone=zone, day__gte=first_day, day__lte=last_closed)

    per_day: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    per_user: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    anomalies: list[Anomaly] = []

    # Closed days: a few rows each.
    sums = {outcome: Sum(outcome) for outcome in OUTCOMES}
    for row in (
        IssuanceRollupHour.objects.filter(rollup__in=rollups)
        .values(day=F("rollup__day"))
        .order_by()
        .annotate(**sums)
    ):
        _add(per_day[row["day"]], row)
    for row in (
        IssuanceRollupUser.objects.filter(rollup__in=rollups).values("username").order_by().annotate(**sums)
    ):
        _add(per_user[row["username"]], row)
    flagged = Q(client_ips__gte=MANY_ADDRESSES_PER_DAY) | Q(refused__gte=REFUSAL_FLOOD_PER_DAY)
    for row in IssuanceRollupUser.objects.filter(flagged, rollup__in=rollups).values(
        "username", "client_ips", "refused", day=F("rollup__day")
    ):
        anomalies += _user_day_anomalies(row)
    for row in IssuanceRollupHour.objects.filter(
        rollup__in=rollups, failed__gte=FAILURE_BURST_PER_HOUR
    ).values("hour", "failed"):
        anomalies.append(_burst(row))

    # The open part of the window: hour rollups and this hour's rows.
    live_rows, live_addresses = _live(live_since, now)
    refused_per_user_day: dict[tuple[date, str], int] = defaultdict(int)
    failed_per_hour: dict[datetime, int] = defaultdict(int)
    for row in live_rows:
        day = timezone.localdate(row["hour"])
        _add(per_day[day], row)
        _add(per_user[row["username"]], row)
        refused_per_user_day[day, row["username"]] += row["refused"]
        failed_per_hour[row["hour"]] += row["failed"]
    for (day, username), addresses in live_addresses.items():
        anomalies += _user_day_anomalies(
            {"day": day, "username": username, "client_ips": len(addresses), "refused": 0}
        )
    for (day, username), refused in refused_per_user_day.items():
        anomalies += _user_day_anomalies(
            {"day": day, "username": username, "client_ips": 0, "refused": refused}
        )
    for hour, failed in failed_per_hour.items():
        if failed >= FAILURE_BURST_PER_HOUR:
            anomalies.append(_burst({"hour": hour, "failed": failed}))

    day_list = [DayCounts(day, **per_day.get(day, {})) for day in _days(first_day, today)]
    totals = DayCounts(
        first_day, **{outcome: sum(getattr(d, outcome) for d in day_list) for outcome in OUTCOMES}
    )
    anomalies.sort(key=lambda anomaly: (anomaly.start, anomaly.kind, anomaly.username), reverse=True)
    return Overview(
        window_days=days,
        first_day=first_day,
        last_day=today,
        days=day_list,
        totals=totals,
        top_issuances=_top(per_user, GRANTED),
        top_refusals=_top(per_user, ("refused",)),
        top_failures=_top(per_user, ("failed",)),
        anomalies=anomalies,
        live_since=live_since,
    )


def _add(target: dict[str, int], row: dict[str, Any]) -> None:
    for outcome in OUTCOMES:
        target[outcome] += row[outcome] or 0


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _top(per_user: dict[str, dict[str, int]], outcomes: tuple[str, ...]) -> list[UserCount]:
    counts = [UserCount(name, sum(counts[o] for o in outcomes)) for name, counts in per_user.items()]
    counts = [entry for entry in counts if entry.count > 0]
    counts.sort(key=lambda entry: (-entry.count, entry.username))
    return counts[:TOP_USERS]


def _user_day_anomalies(row: dict[str, Any]) -> list[Anomaly]:
    start = _day_start(row["day"])
    end = _day_start(row["day"] + timedelta(days=1))
    found = []
    if row["client_ips"] >= MANY_ADDRESSES_PER_DAY:
        found.append(
            Anomaly("many_addresses", start, end, row["client_ips"], MANY_ADDRESSES_PER_DAY, row["username"])
        )
    if row["refused"] >= REFUSAL_FLOOD_PER_DAY:
        found.append(
            Anomaly("refusal_flood", start, end, row["refused"], REFUSAL_FLOOD_PER_DAY, row["username"])
        )
    return found


def _burst(row: dict[str, Any]) -> Anomaly:
    return Anomaly(
        "failure_burst", row["hour"], row["hour"] + timedelta(hours=1), row["failed"], FAILURE_BURST_PER_HOUR
    )


# --- Storage usage and quota ------------------------------------------------------------------


@dataclass(frozen=True)
class UsageSummary:
    """Bytes and objects the user's folders hold as far as the server knows; a quota of None is no limit."""

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


def _limit(override: int | None, default: int) -> int | None:
    value = default if override is None else override
    return value or None  # 0: no limit


def usage_summary_of(row: UploadUsage | None) -> UsageSummary:
    """The summary of a usage row (None: a user the server has seen nothing of yet)."""
    quota_bytes = _limit(row.quota_bytes if row else None, settings.UPLOAD_QUOTA_BYTES)
    quota_objects = _limit(row.quota_objects if row else None, settings.UPLOAD_QUOTA_OBJECTS)
    if row is None:
        return UsageSummary(0, 0, quota_bytes, quota_objects, None)
    return UsageSummary(
        used_bytes=row.stored_bytes + row.pending_bytes,
        used_objects=row.stored_objects + row.pending_objects,
        quota_bytes=quota_bytes,
        quota_objects=quota_objects,
        counted_at=row.counted_at,
    )


def upload_usage_summary(*, user: User) -> UsageSummary:
    """What ``user``'s folders hold and their quota (``GET /api/me/`` shows it, and every hand-out
    reads it: compiled once, ``core.compiled``). Raises DatabaseError."""
    return usage_summary_of(get_by_pk(UploadUsage, user.pk))


# --- Credential URLs ---------------------------------------------------------------------------


class CredentialUrlStatus(TextChoices):
    LIVE = "live", _("live")
    EXPIRED = "expired", _("expired")
    REVOKED = "revoked", _("revoked")
    CUT_OFF = "cut_off", _("ended by the sign-in cut-off")


def credential_url_status(row: CredentialUrl, *, now: datetime | None = None) -> CredentialUrlStatus:
    """Whether a credential URL still answers, and if not why, checked in the order
    ``credential_url_user`` refuses it: revoked (a logout, or a reviewer ended it) and the user's
    sign-in cut-off (password change, deactivation, "sign out everywhere") before expiry."""
    if row.revoked_at is not None:
        return CredentialUrlStatus.REVOKED
    if not token_is_current(user=row.user, issued_at=row.created_at):
        return CredentialUrlStatus.CUT_OFF
    if row.expires_at <= (now or timezone.now()):
        return CredentialUrlStatus.EXPIRED
    return CredentialUrlStatus.LIVE


def _credential_url_ended_q() -> Q:
    return Q(revoked_at__isnull=False) | ~token_is_current_q(user="user", issued_at="created_at")


def credential_urls_live(queryset: QuerySet, *, now: datetime) -> QuerySet:
    """The rows of ``queryset`` whose status is live at ``now`` (as ``credential_url_status``, in SQL)."""
    return queryset.exclude(_credential_url_ended_q()).filter(expires_at__gt=now)


def credential_urls_expired(queryset: QuerySet, *, now: datetime) -> QuerySet:
    """The rows of ``queryset`` that ran out their lifetime at ``now`` without being ended first."""
    return queryset.exclude(_credential_url_ended_q()).filter(expires_at__lte=now)


def credential_urls_ended(queryset: QuerySet) -> QuerySet:
    """The rows of ``queryset`` revoked or ended by their user's sign-in cut-off, expired or not."""
    return queryset.filter(_credential_url_ended_q())
