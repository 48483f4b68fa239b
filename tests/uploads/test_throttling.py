"""Per-user throttling of credential issuance: 429 JSON, Retry-After, and an audit row."""

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db
URL = "/api/uploads/sts-token/"


def test_issuance_is_rate_limited_per_user_and_refusals_are_audited(
    jwt_client, monkeypatch, django_user_model
):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "2/min", "login": "100/min"})

    statuses = [jwt_client.post(URL).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    refused = jwt_client.post(URL)
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    outcomes = list(TokenIssuance.objects.order_by("id").values_list("outcome", "error_code", "attempts"))
    assert outcomes == [("issued", "", 1), ("reused", "", 1), ("refused", "throttled", 2)]


def test_throttle_is_per_user_not_global(jwt_client, api_client, other_user, password, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "1/min", "login": "100/min"})
    assert jwt_client.post(URL).status_code == 200
    assert jwt_client.post(URL).status_code == 429

    from rest_framework.test import APIClient

    other = APIClient()
    token = other.post("/api/auth/token/", {"username": "bob", "password": password}, format="json").json()[
        "access"
    ]
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert other.post(URL).status_code == 200


def test_a_throttled_flood_costs_one_refused_row_per_window_that_counts_every_refusal(
    jwt_client, monkeypatch, user
):
    """300 requests in a minute with 60 allowed: the 240 refusals are one or two rows (a window
    may close mid-flood) whose attempts add up, and each granted request keeps its own row."""
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "60/min", "login": "100/min"})

    statuses = [jwt_client.post(URL).status_code for _ in range(300)]

    assert statuses.count(200) == 60 and statuses.count(429) == 240
    refused = TokenIssuance.objects.filter(user=user, outcome="refused")
    print(
        f"300 requests: {refused.count()} refused row(s), attempts {list(refused.values_list('attempts', flat=True))}"
    )
    assert 1 <= refused.count() <= 2
    assert sum(refused.values_list("attempts", flat=True)) == 240
    row = refused.earliest("created_at")
    assert row.last_attempt_at is not None and row.last_attempt_at > row.created_at
    assert TokenIssuance.objects.filter(user=user).exclude(outcome="refused").count() == 60


def test_a_refusal_after_the_window_starts_a_new_row(jwt_client, monkeypatch, user):
    from datetime import timedelta

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "1/min", "login": "100/min"})
    assert [jwt_client.post(URL).status_code for _ in range(3)] == [200, 429, 429]
    TokenIssuance.objects.filter(outcome="refused").update(
        created_at=TokenIssuance.objects.get(outcome="refused").created_at - timedelta(seconds=61)
    )
    assert jwt_client.post(URL).status_code == 429
    assert list(
        TokenIssuance.objects.filter(outcome="refused")
        .order_by("created_at")
        .values_list("attempts", flat=True)
    ) == [2, 1]


@pytest.mark.parametrize("endpoint", ["sts-server", "credential-url"])
def test_the_stock_format_endpoints_compact_throttled_refusals_like_sts_token(
    endpoint, jwt_client, monkeypatch, user
):
    """80 GETs of ``GET /api/uploads/sts-server/`` (bearer token) or of one credential URL with the
    default 60/min: 60 answers, and the 20 refusals share one row (two if a window closes mid-run)
    whose attempts add up to 20, as sts-token's do."""
    rates = {"sts_token": "60/min", "credential_url": "60/min", "login": "100/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    if endpoint == "sts-server":
        url, client = "/api/uploads/sts-server/", jwt_client
    else:
        url = jwt_client.post("/api/uploads/sts-server-url/").json()["url"].removeprefix("http://testserver")
        client = APIClient()
    TokenIssuance.objects.all().delete()

    answers = [client.get(url) for _ in range(80)]

    codes = [answer.json().get("ErrorCode", "ok") for answer in answers]
    assert codes.count("ok") == 60
    refused = TokenIssuance.objects.filter(user=user, outcome="refused")
    rows = list(refused.values_list("error_code", "attempts"))
    print(f"{endpoint}: 80 GETs -> refused rows {rows}")
    assert 1 <= len(rows) <= 2 and {code for code, _ in rows} == {"throttled"}
    assert sum(attempts for _, attempts in rows) == codes.count("throttled")


def test_a_credential_url_has_a_budget_of_its_own(jwt_client, monkeypatch, user):
    """Whoever holds one of a user's credential URLs can use up that URL's budget, not the user's own
    sts-token budget."""
    rates = {"sts_token": "5/min", "credential_url": "3/min", "login": "100/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    url = jwt_client.post("/api/uploads/sts-server-url/").json()["url"].removeprefix("http://testserver")
    holder = APIClient()
    codes = [holder.get(url).json().get("ErrorCode", "ok") for _ in range(10)]
    assert codes == ["ok"] * 3 + ["throttled"] * 7
    assert (
        jwt_client.post(URL).status_code == 200
    )  # the owner's own budget: 1 of 5 used by the URL's creation


def test_guessed_credential_urls_are_throttled_per_address_and_audited_in_bounded_rows(db):
    """300 guesses from one address: the first 30 (THROTTLE_CREDENTIAL_URL_FAILURES, 30/min) answer
    credential_url_invalid, the rest throttled; the audit holds one row per code per window (two if a
    window closes mid-run), with no user, the guesser's address, and attempts adding up to 300."""
    guesser = APIClient(REMOTE_ADDR="198.51.100.23")
    answers = [guesser.get(f"/api/uploads/sts-server/osscu_guess{n:040d}/").json() for n in range(300)]
    codes = [answer["ErrorCode"] for answer in answers]
    assert codes.count("credential_url_invalid") == 30 and codes.count("throttled") == 270
    assert {answer["StatusCode"] for answer in answers} == {"401", "429"}
    rows = list(
        TokenIssuance.objects.filter(outcome="refused").values_list(
            "username", "client_ip", "error_code", "attempts"
        )
    )
    print(f"300 guesses -> {len(rows)} audit rows: {rows}")
    assert 2 <= len(rows) <= 4
    assert {(username, ip) for username, ip, _, _ in rows} == {("", "198.51.100.23")}
    assert sum(attempts for *_, attempts in rows) == 300
    another = APIClient(REMOTE_ADDR="203.0.113.99").get("/api/uploads/sts-server/osscu_other/").json()
    assert another["ErrorCode"] == "credential_url_invalid"  # per address: others are not held back


def test_reviewers_see_guesses_in_the_list_and_the_overview(client, django_user_model):
    from django.contrib.auth.models import Permission

    APIClient(REMOTE_ADDR="198.51.100.23").get("/api/uploads/sts-server/osscu_guess/")
    reviewer = django_user_model.objects.create_user(username="reviewer", password="x", is_staff=True)
    reviewer.user_permissions.add(Permission.objects.get(codename="view_tokenissuance"))
    client.force_login(reviewer)
    listing = client.get("/admin/uploads/tokenissuance/")
    assert listing.status_code == 200 and "credential_url_invalid" in listing.content.decode()
    assert client.get("/admin/uploads/tokenissuance/overview/").status_code == 200
