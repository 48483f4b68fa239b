"""Login, refresh and logout each have their own rate budget per address; failed logins are counted
per username and per address (django-axes, accounts/lockout.py) and lock with a stable code."""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.throttling import ScopedRateThrottle, rate_limits_clear

pytestmark = pytest.mark.django_db


def api_login(username: str, password: str, address: str = "127.0.0.1"):
    return APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


@pytest.fixture
def limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    return settings


# --- Budgets ------------------------------------------------------------------------------------


def test_an_exhausted_login_budget_leaves_refresh_and_logout_alone(api_client, user, password, monkeypatch):
    tokens = api_login("alice", password).json()
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {"login": "2/min", "refresh": "5/min", "logout": "5/min"}
    )
    rate_limits_clear()
    assert [api_login("alice", password).status_code for _ in range(3)] == [200, 200, 429]

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    logout = api_client.post("/api/auth/logout/", {"refresh": refreshed.json()["refresh"]}, format="json")
    assert logout.status_code == 200


def test_refresh_has_its_own_budget_and_answers_throttled(api_client, user, password, monkeypatch):
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {"login": "100/min", "refresh": "2/min", "logout": "2/min"}
    )
    statuses = [
        api_client.post("/api/auth/token/refresh/", {"refresh": "x"}, format="json") for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 429]
    assert statuses[-1].json()["code"] == "throttled" and int(statuses[-1]["Retry-After"]) > 0
    assert api_login("alice", password).status_code == 200  # login's budget is another one
    logouts = [
        api_client.post("/api/auth/logout/", {"refresh": "x"}, format="json").status_code for _ in range(3)
    ]
    assert logouts == [401, 401, 429]


def test_the_budgets_are_configured_by_their_own_settings(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert {"login", "refresh", "logout"} <= set(rates)


# --- Failed logins: per username, per address ----------------------------------------------------


def test_a_username_is_locked_after_its_failures_from_any_address(limits, user, other_user, password):
    statuses = [api_login("alice", "wrong", address=f"10.0.0.{n + 1}").status_code for n in range(3)]
    assert statuses == [401, 401, 429]  # the failure that reaches the limit is answered as locked

    locked = api_login("alice", password, address="10.9.9.9")  # the right password, a new address
    assert locked.status_code == 429
    assert locked.json() == {
        "detail": "Too many failed logins for this username or from your address; try again later.",
        "code": "login_locked",
    }
    assert int(locked["Retry-After"]) == 15 * 60
    assert api_login("bob", password, address="10.0.0.1").status_code == 200  # others are not


def test_an_address_is_locked_after_its_own_higher_count(limits, user, password):
    for n in range(4):
        assert api_login(f"guess{n}", "wrong", address="10.0.0.7").status_code == 401
    assert api_login("alice", password, address="10.0.0.7").status_code == 200  # 4 < 5 per address
    assert api_login("guess9", "wrong", address="10.0.0.7").status_code == 429  # the 5th

    assert api_login("alice", password, address="10.0.0.7").json()["code"] == "login_locked"
    assert api_login("alice", password, address="10.0.0.8").status_code == 200  # the user is not locked


def test_the_lockout_ends_after_the_cool_off(limits, user, password):
    for _ in range(3):
        api_login("alice", "wrong")
    assert api_login("alice", password).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time.replace(year=2000))
    assert api_login("alice", password).status_code == 200


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_login_forms_answer_a_clear_page_when_locked(limits, user, password, path):
    client = Client()
    for _ in range(2):
        assert client.post(path, {"username": "alice", "password": "wrong"}).status_code == 200
    assert client.post(path, {"username": "alice", "password": "wrong"}).status_code == 429
    locked = client.post(path, {"username": "alice", "password": password})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 15 * 60
    assert b"Too many failed logins for this username or from your address" in locked.content
    assert b"15 minutes" in locked.content
    assert "_auth_user_id" not in client.session


def test_the_api_and_the_forms_share_the_count(limits, user, password):
    Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    Client().post("/admin/login/", {"username": "alice", "password": "wrong"})
    api_login("alice", "wrong")
    assert api_login("alice", password).json()["code"] == "login_locked"


def test_no_password_or_csrf_token_is_stored(limits, user):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    csrf = page.context["csrf_token"]
    secret = "my-S3cret-passw0rd"
    client.post(
        "/accounts/login/", {"username": "alice", "password": secret, "csrfmiddlewaretoken": str(csrf)}
    )
    APIClient().post("/api/auth/token/", {"username": "alice", "password": secret}, format="json")

    stored = " ".join(str(value) for row in AccessAttempt.objects.values() for value in row.values())
    assert AccessAttempt.objects.exists()
    assert secret not in stored
    assert str(csrf) not in stored and client.cookies["csrftoken"].value not in stored


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    username=st.one_of(st.text(max_size=40), st.text(min_size=200, max_size=5000)),
    secret=st.text(max_size=80),
)
def test_any_username_and_password_is_a_clear_answer_never_a_500(limits, username, secret):
    rate_limits_clear()
    response = api_login(username, secret)
    assert response.status_code in (400, 401, 429), response.content
    assert response.json()["code"] in ("invalid", "no_active_account", "login_locked")
    assert all(len(name or "") <= 150 for name in AccessAttempt.objects.values_list("username", flat=True))
