"""The audit pages in Chromium at a reviewer's 1440 px, under a strict Content-Security-Policy:
the overview's chart and table show the database's numbers, and the list fits without scrolling."""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import Browser, Page, Route, expect

from audit.selectors import OUTCOMES
from tests.audit.test_overview import database_counts, seed_mix
from uploads.models import TokenIssuance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
# What django-csp will send (issue 11), at its strictest: nothing inline, nothing from elsewhere.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def with_strict_csp(route: Route) -> None:
    response = route.fetch(max_redirects=0)
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})


@pytest.fixture
def reviewer_page(browser: Browser, live_server, django_user_model):
    """A security reviewer (staff, view permission only), logged in through the admin's form at 1440 px."""
    reviewer = django_user_model.objects.create_user(
        username="reviewer", password="review-pass", is_staff=True
    )
    reviewer.user_permissions.add(Permission.objects.get(codename="view_tokenissuance"))
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.route("**/admin/**", with_strict_csp)
    page.console_messages_seen = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.console_messages_seen.append(f"{msg.type}: {msg.text}"))  # type: ignore[attr-defined]
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", "review-pass")
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/")
    yield page
    page.unroute_all(behavior="ignoreErrors")  # a request still in flight must not fail the teardown
    context.close()


def screenshot(page: Page, artifacts: Path, name: str, *, full_page: bool = True) -> None:
    """Into test-artifacts/, and into docs/ for the README when UPDATE_README_SCREENSHOT is set."""
    page.screenshot(path=str(artifacts / name), full_page=full_page)
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        shutil.copyfile(artifacts / name, DOCS / name)


def csp_violations(page: Page) -> list[str]:
    return [m for m in page.console_messages_seen if "Content Security Policy" in m]  # type: ignore[attr-defined]


def test_the_overview_shows_the_databases_numbers(reviewer_page, live_server, artifacts):
    page = reviewer_page
    seed_mix(timezone.now())
    page.goto(f"{live_server.url}/admin/uploads/tokenissuance/")
    page.click('[data-testid="overview-link"]')
    page.click('[data-testid="window-7"]')
    expect(page.locator("#overview-chart")).to_have_attribute("data-ready", "true")

    today = timezone.localdate()
    first = today - timezone.timedelta(days=6)
    expected = database_counts(first, today)
    # The table: one row per day, a cell per outcome.
    for day_offset in range(7):
        day = first + timezone.timedelta(days=day_offset)
        cells = page.locator(f'[data-day="{day.isoformat()}"] td').all_inner_texts()
        assert [int(text) for text in cells[:4]] == [expected[day, outcome] for outcome in OUTCOMES], day
    # The totals above the chart.
    for outcome in OUTCOMES:
        shown = page.locator(f'[data-testid="overview-totals"] [data-outcome="{outcome}"]').inner_text()
        assert int(shown) == sum(n for (_, o), n in expected.items() if o == outcome)
    # The chart itself, as Chart.js holds it: the same series, day by day.
    drawn = page.evaluate(
        """() => { const chart = Chart.getChart(document.getElementById('overview-chart'));
                   return {labels: chart.data.labels, data: chart.data.datasets.map(d => d.data)}; }"""
    )
    days = [first + timezone.timedelta(days=n) for n in range(7)]
    assert drawn["labels"] == [day.isoformat() for day in days]
    assert drawn["data"] == [[expected[day, outcome] for day in days] for outcome in OUTCOMES]
    # One of each anomaly, each opening the rows behind it.
    kinds = page.locator('[data-testid="anomalies"] tr').evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert sorted(kinds) == ["failure_burst", "many_addresses", "refusal_flood"]
    assert csp_violations(page) == [], page.console_messages_seen  # type: ignore[attr-defined]
    screenshot(page, artifacts, "audit-overview.png")

    page.click('[data-testid="anomalies"] tr[data-kind="refusal_flood"] a:text("rows")')
    expect(page.locator("#result_list")).to_be_visible()
    assert page.locator("#result_list tbody tr").count() == 100


def test_the_list_fits_1440_px_with_seconds_and_zone(reviewer_page, live_server, artifacts):
    page = reviewer_page
    seed_mix(timezone.now())
    TokenIssuance.objects.create(
        username="a-rather-long-username-of-forty-chars-xx",
        outcome="failed",
        auth_method="session",
        prefix="user/1/",
        error_code="InvalidAccessKeyId.NotFound",
        access_key_id="STS.NUgYrLnoC37mZZCNnAbez2yBBX9v",
        client_ip="2001:db8:85a3:1234:5678:8a2e:370:7334",
        request_id="7c9e6679742540de944be07fc1f90ae7",
    )
    page.goto(f"{live_server.url}/admin/uploads/tokenissuance/")
    expect(page.locator("#result_list")).to_be_visible()
    screenshot(page, artifacts, "audit-list.png", full_page=False)  # what a reviewer sees first

    widths = page.evaluate(
        """() => { const results = document.querySelector('#changelist .results');
                   const columns = [...document.querySelectorAll('#result_list thead th')]
                       .map(th => th.className + ':' + th.offsetWidth);
                   return {page: document.documentElement.scrollWidth, viewport: window.innerWidth,
                           results: results.scrollWidth, visible: results.clientWidth, columns}; }"""
    )
    assert widths["page"] <= widths["viewport"], widths
    assert widths["results"] <= widths["visible"], str(widths)  # no horizontal scroll bar on the table
    first_time = page.locator(
        "#result_list tbody tr td.field-time, #result_list tbody tr th.field-time"
    ).first
    assert first_time.inner_text().endswith(" UTC") and first_time.inner_text().count(":") == 2
    # Every row is one line high: badges and ids do not wrap.
    heights = page.locator("#result_list tbody tr").evaluate_all("rows => rows.map(r => r.offsetHeight)")
    assert max(heights) <= min(heights) + 2, heights
    assert csp_violations(page) == [], page.console_messages_seen  # type: ignore[attr-defined]
