"""The audit overview: counts per day and outcome, top users and anomalies, equal to the audit rows."""

import re
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import selectors
from audit.models import IssuanceRollup, IssuanceRollupHourUser
from audit.selectors import issuance_overview
from audit.services import issuance_rollups_ensure, issuance_rollups_update
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db
OVERVIEW = "/admin/uploads/tokenissuance/overview/"
CHANGELIST = "/admin/uploads/tokenissuance/"


def row(username: str, outcome: str, at: datetime, ip: str = "203.0.113.7", **fields) -> TokenIssuance:
    fields.setdefault("error_code", "throttled" if outcome == "refused" else "")
    return TokenIssuance(
        username=username,
        outcome=outcome,
        auth_method="jwt",
        prefix="user/1/",
        client_ip=ip,
        created_at=at,
        **fields,
    )


def local_noon(now: datetime, days_ago: int) -> datetime:
    day = timezone.localdate(now) - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(12)))


def seed_mix(now: datetime) -> None:
    """Ten days of mixed outcomes from four users, today included, with one of each anomaly: carol
    from 5 addresses two days ago, bob refused 100 times yesterday, 10 failures in this hour."""
    rows = []
    for day in range(10):
        at = now - timedelta(days=day, minutes=7)
        rows += [row("alice", "issued", at - timedelta(minutes=n)) for n in range(day % 3 + 1)]
        rows += [row("alice", "reused", at - timedelta(minutes=n)) for n in range(day + 2)]
        rows += [row("bob", "refused", at) for _ in range(day % 4)]
        rows += [row("carol", "failed", at, error_code="ServiceUnavailable") for _ in range(day % 2)]
    rows += [row("carol", "issued", local_noon(now, 2), ip=f"198.51.100.{n}") for n in range(5)]
    rows += [row("bob", "refused", local_noon(now, 1) + timedelta(seconds=n)) for n in range(100)]
    burst_hour = now.replace(minute=0, second=0, microsecond=0)
    rows += [row("dave", "failed", burst_hour + timedelta(seconds=n)) for n in range(10)]
    TokenIssuance.objects.bulk_create(rows)


def database_counts(first_day, last_day) -> Counter:
    """What the database says, counted in Python from every row: (local day, outcome) -> rows."""
    counts: Counter = Counter()
    for created_at, outcome in TokenIssuance.objects.values_list("created_at", "outcome"):
        day = timezone.localdate(created_at)
        if first_day <= day <= last_day:
            counts[day, outcome] += 1
    return counts


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def reviewer(django_user_model):
    user = django_user_model.objects.create_user(username="reviewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tokenissuance"))
    return user


@pytest.mark.parametrize("days", [7, 30, 90])
def test_counts_per_day_equal_the_database(now, days):
    seed_mix(now)
    overview = issuance_overview(days=days)

    expected = database_counts(overview.first_day, overview.last_day)
    assert len(overview.days) == days
    for counts in overview.days:
        for outcome in selectors.OUTCOMES:
            assert getattr(counts, outcome) == expected[counts.day, outcome], (counts.day, outcome)
    assert overview.totals.total == sum(expected.values())
    # The same numbers again once the closed days and hours come from their rollups.
    issuance_rollups_update()
    assert issuance_overview(days=days).days == overview.days
    assert issuance_overview(days=days).anomalies == overview.anomalies


def test_the_overview_never_writes(now):
    seed_mix(now)
    with CaptureQueriesContext(connection) as queries:
        issuance_overview(days=90)
    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not IssuanceRollup.objects.exists()
    assert not IssuanceRollupHourUser.objects.exists()


def test_top_users_and_anomalies(now):
    seed_mix(now)
    overview = issuance_overview(days=30)

    granted = Counter(
        TokenIssuance.objects.filter(outcome__in=["issued", "reused"]).values_list("username", flat=True)
    )
    assert [(u.username, u.count) for u in overview.top_issuances] == sorted(
        granted.items(), key=lambda item: (-item[1], item[0])
    )
    assert overview.top_refusals[0].username == "bob"
    assert overview.top_refusals[0].count == TokenIssuance.objects.filter(outcome="refused").count()
    assert {u.username for u in overview.top_failures} == {"carol", "dave"}

    found = {(a.kind, a.username, timezone.localdate(a.start)) for a in overview.anomalies}
    today = timezone.localdate(now)
    assert ("many_addresses", "carol", today - timedelta(days=2)) in found
    assert ("refusal_flood", "bob", today - timedelta(days=1)) in found
    bursts = [a for a in overview.anomalies if a.kind == "failure_burst"]
    assert len(bursts) == 1 and bursts[0].value >= 10
    assert not any(a.kind == "many_addresses" and a.username == "alice" for a in overview.anomalies)


def test_thresholds_are_inclusive_lower_bounds(now):
    yesterday = now - timedelta(days=1)
    rows = [
        row("eve", "issued", yesterday, ip=f"192.0.2.{n}")
        for n in range(selectors.MANY_ADDRESSES_PER_DAY - 1)
    ]
    rows += [
        row("eve", "refused", yesterday, ip="192.0.2.0") for _ in range(selectors.REFUSAL_FLOOD_PER_DAY - 1)
    ]
    TokenIssuance.objects.bulk_create(rows)
    assert issuance_overview(days=7).anomalies == []


def test_closed_days_are_rolled_up_once_and_not_read_again(now):
    seed_mix(now)
    issuance_rollups_update()
    assert IssuanceRollup.objects.count() >= 88

    with CaptureQueriesContext(connection) as queries:
        issuance_overview(days=30)
    reads = [q["sql"] for q in queries if 'FROM "uploads_tokenissuance"' in q["sql"]]
    assert len(reads) == 2  # today's rows only (per user and per hour); every closed day is a rollup
    assert all('"created_at" >=' in sql and '"created_at" <' not in sql for sql in reads)
    assert issuance_rollups_ensure(days=[timezone.localdate(now) - timedelta(days=3)]) == 0


def test_a_day_is_live_until_an_hour_after_it_ended(now):
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(now), datetime.min.time()))
    just_after = midnight + timedelta(minutes=30)
    issuance_rollups_update(now=just_after)
    overview = issuance_overview(days=7, now=just_after)
    assert overview.live_since == midnight - timedelta(days=1)  # yesterday is still counted live
    assert not IssuanceRollup.objects.filter(day=timezone.localdate(midnight - timedelta(days=1))).exists()
    issuance_rollups_update(now=midnight + timedelta(hours=1))
    later = issuance_overview(days=7, now=midnight + timedelta(hours=1))
    assert later.live_since == midnight


def test_a_rollup_made_meanwhile_by_another_request_is_kept(now):
    day = timezone.localdate(now) - timedelta(days=3)
    TokenIssuance.objects.create(
        **{
            "username": "alice",
            "outcome": "issued",
            "auth_method": "jwt",
            "prefix": "user/1/",
            "created_at": now - timedelta(days=3),
        }
    )
    IssuanceRollup.objects.create(day=day, time_zone=timezone.get_current_timezone_name())
    assert issuance_rollups_ensure(days=[day]) == 0


def test_days_follow_the_site_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8: 20:00 UTC is 04:00 the next local day
    with timezone.override("Asia/Shanghai"):
        now = timezone.now()
        at = (now - timedelta(days=3)).astimezone(UTC).replace(hour=20, minute=0, second=0, microsecond=0)
        TokenIssuance.objects.create(
            username="alice", outcome="issued", auth_method="jwt", prefix="u/", created_at=at
        )
        issuance_rollups_update()
        overview = issuance_overview(days=7)
        counted = {c.day: c.issued for c in overview.days if c.issued}
        assert counted == {(at + timedelta(hours=8)).date(): 1}
        assert IssuanceRollup.objects.filter(time_zone="Asia/Shanghai").exists()


def test_pruning_drops_the_rollups_it_makes_stale(now):
    seed_mix(now)
    issuance_rollups_update()
    call_command("prune_token_issuances", "--older-than-days", "3", stdout=None)
    overview = issuance_overview(days=30)
    expected = database_counts(overview.first_day, overview.last_day)
    assert overview.totals.total == sum(expected.values())


# --- the page ------------------------------------------------------------------------------------


class _Scan(HTMLParser):
    """Everything a strict Content-Security-Policy would block: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if "style" in names or any(name.startswith("on") for name in names):
            self.problems.append(f"<{tag}> with {sorted(names)}")
        if tag == "style":
            self.problems.append("<style>")
        self._in_script = tag == "script" and "src" not in names and names.get("type") != "application/json"

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline script: {data[:60]!r}")

    def handle_endtag(self, tag):
        self._in_script = False


def test_reviewer_sees_the_databases_counts(client, reviewer, now):
    seed_mix(now)
    client.force_login(reviewer)
    page = client.get(OVERVIEW, {"days": 7})

    assert page.status_code == 200
    overview = page.context["overview"]
    expected = database_counts(overview.first_day, overview.last_day)
    html = page.content.decode()
    for outcome in selectors.OUTCOMES:
        total = sum(n for (_, o), n in expected.items() if o == outcome)
        assert f'data-outcome="{outcome}">{total}<' in html
    today = timezone.localdate(now).isoformat()
    assert f'data-day="{today}"' in html
    assert 'id="overview-chart-data" type="application/json"' in html
    assert "/static/vendor/chart.js/chart.umd.min.js" in html


def test_the_page_needs_no_inline_script_or_style(client, reviewer, now):
    seed_mix(now)
    client.force_login(reviewer)
    scan = _Scan()
    scan.feed(client.get(OVERVIEW).content.decode())
    assert scan.problems == []


@pytest.mark.parametrize(
    ("query", "window"), [({"days": "90"}, 90), ({"days": "12"}, 30), ({"days": "x"}, 30), ({}, 30)]
)
def test_window_choice(client, reviewer, query, window):
    client.force_login(reviewer)
    assert client.get(OVERVIEW, query).context["overview"].window_days == window


def test_non_staff_and_staff_without_permission_are_refused(client, django_user_model):
    assert client.get(OVERVIEW).status_code == 302  # anonymous: to the admin login
    client.force_login(django_user_model.objects.create_user(username="plain", password="x"))
    response = client.get(OVERVIEW)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(django_user_model.objects.create_user(username="staff", password="x", is_staff=True))
    assert client.get(OVERVIEW).status_code == 403


def test_linked_from_the_list_and_each_anomaly_opens_its_rows(client, reviewer, now):
    seed_mix(now)
    client.force_login(reviewer)
    assert f'href="{OVERVIEW}"' in client.get(CHANGELIST).content.decode()

    page = client.get(OVERVIEW)
    for anomaly, url, _ in page.context["anomalies"]:
        listed = client.get(url)
        assert listed.status_code == 200, url
        if anomaly.kind == "failure_burst":
            assert listed.context["cl"].result_count == anomaly.value
        elif anomaly.kind == "refusal_flood":
            assert listed.context["cl"].result_count == anomaly.value
        else:
            ips = {r.client_ip for r in listed.context["cl"].result_list}
            assert len(ips) == anomaly.value


def test_the_list_shows_seconds_and_the_time_zone(client, reviewer, now):
    at = now.replace(microsecond=0)
    TokenIssuance.objects.create(
        username="alice", outcome="refused", auth_method="jwt", prefix="u/", created_at=at
    )
    client.force_login(reviewer)
    html = client.get(CHANGELIST).content.decode()
    assert re.search(rf">{at:%Y-%m-%d %H:%M:%S} UTC</time>", html)
    assert 'class="audit-badge audit-refused"' in html


def test_todays_closed_hours_are_rolled_up_and_still_count_exactly(now):
    noon = local_noon(now, 0)
    at_half_past = noon + timedelta(minutes=30)
    rows = [row("frank", "issued", noon - timedelta(hours=3, minutes=n), ip=f"192.0.2.{n}") for n in range(3)]
    rows += [
        row("frank", "refused", noon - timedelta(hours=1, minutes=n), ip=f"192.0.2.{n + 3}") for n in range(2)
    ]
    rows += [row("frank", "reused", noon + timedelta(minutes=10), ip="192.0.2.1")]
    TokenIssuance.objects.bulk_create(rows)

    issuance_rollups_update(now=at_half_past)
    overview = issuance_overview(days=7, now=at_half_past)

    assert IssuanceRollupHourUser.objects.filter(username="").count() == 12  # 00:00 to 11:00 are closed
    today = overview.days[-1]
    assert (today.issued, today.reused, today.refused, today.failed) == (3, 1, 2, 0)
    # Five addresses over two rolled-up hours make one "many addresses" day (the sixth row repeats one).
    assert [(a.kind, a.username, a.value) for a in overview.anomalies] == [("many_addresses", "frank", 5)]
    with CaptureQueriesContext(connection) as queries:
        assert issuance_overview(days=7, now=at_half_past).days == overview.days
    reads = [q["sql"] for q in queries if 'FROM "uploads_tokenissuance"' in q["sql"]]
    assert len(reads) == 2  # only the open hour's rows
