"""Reads for reviewers: the audit overview of token issuances over a window of days, and one user's
audit timeline. Nothing here writes (``audit/services.py`` makes the rollups).

Counts are per day of the site's time zone (``TIME_ZONE``). A day that ended more than
``ROLLUP_GRACE`` ago no longer changes, so ``rollup_token_issuances`` (run every few minutes) counts its
rows once into rollups (``IssuanceRollup*``); within a day not rolled up yet each hour is rolled up
``HOUR_GRACE`` after it ends. The overview reads rollups where they exist and the audit rows of every
other hour, so it is exact whether or not the command has run, and with the command scheduled an
overview of 90 days reads rollups and about an hour of rows, not the whole window.

The rollups assume what the service guarantees: rows are appended with ``created_at`` set to the
time of the request, and nothing but the retention command deletes them (which also drops the
rollups it makes stale).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Trunc, TruncDate
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext, pgettext, pgettext_lazy

from avatars.models import AvatarChange
from ledger.models import ObjectEvent
from ledger.selectors import object_events_between, object_events_of
from uploads.models import TokenIssuance

from .models import IssuanceRollup, IssuanceRollupHour, IssuanceRollupHourUser, IssuanceRollupUser

# The outcome in a word, for the audit pages' badges (the choice's label is their tooltip).
OUTCOME_BADGES = {
    TokenIssuance.Outcome.ISSUED: pgettext_lazy("outcome badge", "issued"),
    TokenIssuance.Outcome.REUSED: pgettext_lazy("outcome badge", "reused"),
    TokenIssuance.Outcome.REFUSED: pgettext_lazy("outcome badge", "refused"),
    TokenIssuance.Outcome.FAILED: pgettext_lazy("outcome badge", "failed"),
}

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

# Anomalies worth a look (docs/audit.md, "The overview"). Each is a lower bound, inclusive.
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
class WrittenDay:
    """What OSS reported written into users' folders on one local day (the ledger's uploads)."""

    day: date
    bytes: int
    objects: int


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
    live_since: datetime  # the start of the first day not rolled up: from here on, hour rollups and rows
    written: list[WrittenDay] = field(default_factory=list)  # bytes and objects uploaded, per day
    thresholds: dict[str, int] = field(
        default_factory=lambda: {
            "many_addresses": MANY_ADDRESSES_PER_DAY,
            "refusal_flood": REFUSAL_FLOOD_PER_DAY,
            "failure_burst": FAILURE_BURST_PER_HOUR,
        }
    )


def outcome_counts() -> dict[str, Any]:
    """Requests per outcome, as aggregate expressions over ``TokenIssuance``: the sum of ``attempts``
    (a throttled flood shares one row per throttle window; every other row is 1)."""
    return {outcome: Coalesce(Sum("attempts", filter=Q(outcome=outcome)), 0) for outcome in OUTCOMES}


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def issuance_counts_by_user_and_day(rows: QuerySet) -> list[dict[str, Any]]:
    """Per (local day, username): the outcome counts and the number of distinct client IPs."""
    tz = timezone.get_current_timezone()
    return list(
        rows.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "username")
        .annotate(**outcome_counts(), client_ips=Count("client_ip", distinct=True))
    )


def issuance_counts_by_hour(rows: QuerySet) -> list[dict[str, Any]]:
    """Per local hour (an aware datetime): the outcome counts of all users."""
    tz = timezone.get_current_timezone()
    return list(
        rows.order_by()
        .annotate(hour=Trunc("created_at", "hour", tzinfo=tz))
        .values("hour")
        .annotate(**outcome_counts())
    )


def issuances_between(start: datetime, end: datetime | None = None) -> QuerySet:
    rows = TokenIssuance.objects.filter(created_at__gte=start)
    return rows if end is None else rows.filter(created_at__lt=end)


def issuance_hourly_summary(rows: QuerySet) -> dict[tuple[datetime, str], dict[str, Any]]:
    """Per (local hour, username): the outcome counts and up to ``ADDRESS_SAMPLE`` client IPs."""
    hour = Trunc("created_at", "hour", tzinfo=timezone.get_current_timezone())
    rows = rows.order_by().annotate(hour=hour)
    summary: dict[tuple[datetime, str], dict[str, Any]] = {
        (row["hour"], row["username"]): {**row, "addresses": []}
        for row in rows.values("hour", "username").annotate(**outcome_counts())
    }
    for start, username, address in rows.values_list("hour", "username", "client_ip").distinct():
        kept = summary[start, username]["addresses"]
        if address is not None and len(kept) < ADDRESS_SAMPLE:
            kept.append(address)
    return summary


def _open_hours(open_days: list[date], now: datetime) -> list[datetime]:
    """The starts of the hours of ``open_days`` (days not rolled up) up to the one holding ``now``."""
    hours = []
    for day in open_days:
        hour, end = day_start(day), min(day_start(day + timedelta(days=1)), now)
        while hour < end:
            hours.append(hour)
            hour += timedelta(hours=1)
    return hours


def _unrolled_rows(hours: list[datetime], rolled: set[datetime], now: datetime) -> QuerySet | None:
    """The audit rows of ``hours`` not in ``rolled``, as few ranges as they make; the range that reaches
    the hour of ``now`` has no upper bound (rows are appended, so only the open hour's come after)."""
    ranges: list[list[datetime]] = []
    for hour in hours:
        if hour in rolled:
            continue
        if ranges and ranges[-1][1] == hour:
            ranges[-1][1] = hour + timedelta(hours=1)
        else:
            ranges.append([hour, hour + timedelta(hours=1)])
    if not ranges:
        return None
    match = Q()
    for start, end in ranges:
        match |= Q(created_at__gte=start) if end > now else Q(created_at__gte=start, created_at__lt=end)
    return TokenIssuance.objects.filter(match)


def issuance_overview(*, days: int, now: datetime | None = None) -> Overview:
    """What happened over the last ``days`` local days (today included): counts per day and outcome,
    the top users by issuances, refusals and failures, and the anomalies above their thresholds.

    Rolled-up days come from their rollups, rolled-up hours of the other days from theirs, and every
    other hour from the audit rows. Raises ``ValueError`` for a window that is not positive.
    """
    if days < 1:
        raise ValueError("the window must be at least one day")
    now = now or timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=days - 1)
    zone = timezone.get_current_timezone_name()
    rollups = IssuanceRollup.objects.filter(time_zone=zone, day__gte=first_day, day__lte=today)
    rolled_days = set(rollups.values_list("day", flat=True))
    open_days = [day for day in _days(first_day, today) if day not in rolled_days]
    live_since = day_start(open_days[0]) if open_days else day_start(today + timedelta(days=1))

    per_day: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    per_user: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    anomalies: list[Anomaly] = []

    # Rolled-up days: a few rows each.
    if rolled_days:
        sums = {outcome: Sum(outcome) for outcome in OUTCOMES}
        for row in (
            IssuanceRollupHour.objects.filter(rollup__in=rollups)
            .values(day=F("rollup__day"))
            .order_by()
            .annotate(**sums)
        ):
            _add(per_day[row["day"]], row)
        for row in (
            IssuanceRollupUser.objects.filter(rollup__in=rollups)
            .values("username")
            .order_by()
            .annotate(**sums)
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

    # The other days, per (local hour, username): hour rollups where made, else the audit rows.
    live_rows: list[dict[str, Any]] = []
    live_addresses: dict[tuple[date, str], set[str]] = defaultdict(set)
    hours = _open_hours(open_days, now)
    rolled_hours: set[datetime] = set()
    if hours:
        open_hours = set(hours)  # hour rollups of a day rolled up since are left out: its rollup counts
        for row in IssuanceRollupHourUser.objects.filter(time_zone=zone, hour__gte=hours[0]).values(
            "hour", "username", "addresses", *OUTCOMES
        ):
            if row["hour"] not in open_hours:
                continue
            if row["username"] == "":
                rolled_hours.add(row["hour"])
            else:
                live_rows.append(row)
        # A user's row counts only once its hour's marker says the hour was rolled up whole.
        live_rows = [row for row in live_rows if row["hour"] in rolled_hours]
    rows = _unrolled_rows(hours, rolled_hours, now)
    if rows is not None:
        live_rows += issuance_hourly_summary(rows).values()
    for row in live_rows:
        live_addresses[timezone.localdate(row["hour"]), row["username"]].update(row["addresses"])

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
        written=written_per_day(first_day, today),
    )


def written_per_day(first_day: date, last_day: date) -> list[WrittenDay]:
    """Bytes and objects uploaded into users' folders per local day (OSS events, oldest first)."""
    rows = (
        object_events_between(day_start(first_day), day_start(last_day + timedelta(days=1)))
        .filter(kind=ObjectEvent.Kind.CREATED, source=ObjectEvent.Source.EVENT)
        .annotate(day=TruncDate("event_time", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(size=Sum("size"), count=Count("id"))
    )
    found = {row["day"]: (row["size"] or 0, row["count"]) for row in rows}
    return [WrittenDay(day, *found.get(day, (0, 0))) for day in _days(first_day, last_day)]


# An event may carry OSS's clock and an issuance ours: allow this much either way when matching them.
ISSUANCE_MATCH_SKEW = timedelta(minutes=2)


def _file_events(
    *, account_id: int | None, deleted_account_id: int | None, before: datetime | None, limit: int
) -> list["TimelineEvent"]:
    """The uploads and deletes of the account ``account_id`` (or of the deleted account whose id was
    ``deleted_account_id``), flagged where an upload's principal matches no credentials handed to that
    user (a role session of another name, or no issuance live at that time; a bare id writing under
    ``user/<id>/``, which only a user's credentials do)."""
    owner = account_id if account_id is not None else deleted_account_id
    if account_id is not None:
        rows = object_events_of(user_id=account_id)
    else:
        rows = ObjectEvent.objects.filter(**_whose(None, deleted_account_id)).order_by("-event_time", "-id")
    if before is not None:
        rows = rows.filter(event_time__lt=before)
    covering = TokenIssuance.objects.filter(
        **_whose(account_id, deleted_account_id),
        outcome__in=GRANTED,
        role_session_name=OuterRef("session_name"),
        created_at__lte=OuterRef("event_time") + ISSUANCE_MATCH_SKEW,
        expiration__gte=OuterRef("event_time") - ISSUANCE_MATCH_SKEW,
    )
    rows = rows.annotate(matched=Exists(covering))
    events = []
    own_folder = f"user/{owner}/"
    for row in rows[:limit]:
        upload = row.kind == ObjectEvent.Kind.CREATED and row.source == ObjectEvent.Source.EVENT
        flagged = upload and (
            (row.session_name and not row.matched)
            or (not row.session_name and row.key.startswith(own_folder))
        )
        badge = (
            pgettext("timeline badge", "uploaded")
            if row.kind == "created"
            else pgettext("timeline badge", "deleted")
        )
        detail_parts = [row.key, filesizeformat(row.size) if row.kind == "created" else "", row.principal_id]
        if flagged:
            detail_parts.append(gettext("no issuance matches this principal"))
        events.append(
            TimelineEvent(
                row.event_time,
                "file",
                row.pk,
                f"file_{row.kind}" + ("_flagged" if flagged else ""),
                f"{row.get_kind_display()} ({row.get_source_display()})",
                badge,
                " · ".join(part for part in detail_parts if part),
                row.source_ip or None,
                "",
                row.request_id or row.oss_request_id,
                key=row.key,
                flagged=bool(flagged),
                deleted_account_id=row.deleted_account_id,
            )
        )
    return events


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
    start = day_start(row["day"])
    end = day_start(row["day"] + timedelta(days=1))
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


# --- The audit story of one user (the timeline page) ------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    """One audit row of either log, in the shape the timeline shows."""

    at: datetime
    source: str  # "issuance" (uploads.TokenIssuance) or "avatar" (avatars.AvatarChange)
    pk: int
    what: str  # the outcome or kind, e.g. "refused", "confirmation_accepted"
    label: str  # its human name
    badge: str  # what it says in a few words, e.g. "credentials refused"
    detail: str  # error code or reason, and the keys involved
    client_ip: str | None
    user_agent: str
    request_id: str
    key: str = ""  # "file" rows: the object's key
    flagged: bool = False  # "file" rows: an upload whose principal matches no issuance of the user
    deleted_account_id: int | None = None  # rows of a deleted account: the id it had


@dataclass(frozen=True)
class Timeline:
    events: list[TimelineEvent]
    older: datetime | None  # pass as ``before`` for the next page; None when this is the last
    addresses: list[tuple[str, int]]  # client IPs on this page, most frequent first, with counts
    user_agents: list[tuple[str, int]]


def _whose(account_id: int | None, deleted_account_id: int | None = None) -> dict[str, Any]:
    """The rows of the account ``account_id``; with None, of deleted accounts (their user link is
    cleared), only those of the one whose id was ``deleted_account_id`` when that is given."""
    if account_id is not None:
        return {"user_id": account_id}
    if deleted_account_id is not None:
        return {"user__isnull": True, "deleted_account_id": deleted_account_id}
    return {"user__isnull": True}


def deleted_accounts_rows_exist(*, username: str) -> bool:
    """Whether audit rows of deleted accounts named ``username`` exist (their user is gone)."""
    return (
        TokenIssuance.objects.filter(username=username, user__isnull=True).exists()
        or AvatarChange.objects.filter(username=username, user__isnull=True).exists()
    )


def deleted_account_ids(*, username: str, limit: int = 50) -> list[int]:
    """The ids of deleted accounts that were named ``username``, from their audit rows, lowest first
    (at most ``limit``). Rows of accounts deleted before their ids were kept have none."""
    ids: set[int] = set()
    for model in (TokenIssuance, AvatarChange):
        ids.update(
            model.objects.filter(username=username, user__isnull=True, deleted_account_id__isnull=False)
            .values_list("deleted_account_id", flat=True)
            .distinct()[:limit]
        )
    return sorted(ids)[:limit]


def user_audit_timeline(
    *,
    username: str,
    account_id: int | None,
    deleted_account_id: int | None = None,
    before: datetime | None = None,
    limit: int = 200,
    issuances: bool = True,
    avatar_changes: bool = True,
    files: bool = True,
) -> Timeline:
    """The newest ``limit`` audit rows of ``username`` older than ``before``, credential issuances,
    avatar changes and file events merged, newest first.

    ``account_id`` says whose: the rows of that account (the current one with the name), or with None
    the rows of deleted accounts that had the name (their user is gone; the copied name keeps their
    story), only the one whose id was ``deleted_account_id`` when that is given. So a new account that
    takes a deleted account's username never inherits its history. File events are shown for one
    account: ``account_id``, or ``deleted_account_id``.

    Each log is read through its (username, created_at) index, ``limit`` rows at most; ``issuances``
    and ``avatar_changes`` leave a log out (a reviewer without its view permission).
    """
    events: list[TimelineEvent] = []
    if issuances:
        rows = TokenIssuance.objects.filter(username=username, **_whose(account_id, deleted_account_id))
        if before is not None:
            rows = rows.filter(created_at__lt=before)
        for row in rows.order_by("-created_at")[:limit]:
            detail = " · ".join(part for part in (row.error_code, row.access_key_id) if part)
            outcome = OUTCOME_BADGES.get(row.outcome, row.outcome)
            events.append(
                TimelineEvent(
                    row.created_at,
                    "issuance",
                    row.pk,
                    row.outcome,
                    row.get_outcome_display(),
                    pgettext("timeline badge", "credentials %(outcome)s") % {"outcome": outcome},
                    detail,
                    row.client_ip,
                    row.user_agent,
                    row.request_id,
                    deleted_account_id=row.deleted_account_id,
                )
            )
    if avatar_changes:
        changes = AvatarChange.objects.filter(username=username, **_whose(account_id, deleted_account_id))
        if before is not None:
            changes = changes.filter(created_at__lt=before)
        for change in changes.order_by("-created_at")[:limit]:
            parts = (change.reason, change.object_key, change.etag and f"ETag {change.etag}")
            events.append(
                TimelineEvent(
                    change.created_at,
                    "avatar",
                    change.pk,
                    change.kind,
                    change.get_kind_display(),
                    change.get_kind_display().lower(),
                    " · ".join(part for part in parts if part),
                    change.client_ip,
                    change.user_agent,
                    change.request_id,
                    deleted_account_id=change.deleted_account_id,
                )
            )
    if files and (account_id is not None or deleted_account_id is not None):
        events.extend(
            _file_events(
                account_id=account_id, deleted_account_id=deleted_account_id, before=before, limit=limit
            )
        )
    events.sort(key=lambda event: event.at, reverse=True)
    page = events[:limit]
    older = page[-1].at if page and len(page) == limit else None
    return Timeline(
        events=page,
        older=older,
        addresses=Counter(event.client_ip or gettext("unknown") for event in page).most_common(),
        user_agents=Counter(event.user_agent or gettext("(none)") for event in page).most_common(),
    )
