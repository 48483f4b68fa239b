"""JWT login, refresh, logout and /api/me/ as a mobile app uses them; session login pages."""

import jwt
import pytest
from django.conf import settings
from rest_framework.throttling import ScopedRateThrottle

pytestmark = pytest.mark.django_db


def obtain(api_client, username: str, password: str):
    return api_client.post("/api/auth/token/", {"username": username, "password": password}, format="json")


def test_login_returns_access_and_refresh_tokens_signed_with_their_own_key(api_client, user, password):
    response = obtain(api_client, user.username, password)

    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    claims = jwt.decode(tokens["access"], settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    assert claims["user_id"] == str(user.pk)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens["access"], settings.SECRET_KEY, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("username", "password_value"), [("alice", "wrong password"), ("nobody", "whatever")]
)
def test_wrong_credentials_are_401_json(api_client, user, username, password_value):
    response = obtain(api_client, username, password_value)
    assert response.status_code == 401
    assert response.json() == {
        "detail": "No active account found with the given credentials",
        "code": "no_active_account",
    }


def test_missing_fields_are_400_with_field_errors(api_client):
    response = api_client.post("/api/auth/token/", {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "password" in response.json()["errors"]


def test_malformed_login_json_is_400(api_client):
    response = api_client.post("/api/auth/token/", data="{", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_me_returns_id_and_username(jwt_client, user):
    response = jwt_client.get("/api/me/")
    assert response.status_code == 200
    assert response.json()["id"] == user.pk
    assert response.json()["username"] == "alice"


def test_me_requires_authentication(api_client):
    response = api_client.get("/api/me/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_refresh_rotates_and_logout_blacklists(api_client, user, password):
    tokens = obtain(api_client, user.username, password).json()

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    new_refresh = refreshed.json()["refresh"]
    reused = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"

    logout = api_client.post("/api/auth/logout/", {"refresh": new_refresh}, format="json")
    assert logout.status_code == 200
    after_logout = api_client.post("/api/auth/token/refresh/", {"refresh": new_refresh}, format="json")
    assert after_logout.status_code == 401
    assert after_logout.json()["code"] == "token_not_valid"


def test_answers_carrying_tokens_are_never_stored_by_a_cache(api_client, user, password):
    """As every other answer with credentials in it (sts-token, sts-server, /api/me/): a shared or
    browser cache must not keep a token pair (RFC 6749 5.1 asks the same of token endpoints)."""
    login = obtain(api_client, user.username, password)
    refreshed = api_client.post(
        "/api/auth/token/refresh/", {"refresh": login.json()["refresh"]}, format="json"
    )

    assert login.status_code == refreshed.status_code == 200
    assert login["Cache-Control"] == "no-store"
    assert refreshed["Cache-Control"] == "no-store"


def test_logout_with_garbage_token_is_401(api_client):
    response = api_client.post("/api/auth/logout/", {"refresh": "garbage"}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_login_is_rate_limited_per_client(api_client, user, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min", "sts_token": "100/min"})
    statuses = [obtain(api_client, "alice", "wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    refused = obtain(api_client, "alice", "wrong")
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0


def test_unknown_api_path_is_json_404(api_client):
    response = api_client.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_session_login_page_logs_in_and_redirects_home(client, user, password):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content

    response = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_anonymous_home_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_logout_page_ends_the_session(client, user):
    client.force_login(user)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_session_login_form_shares_the_login_rate_limit(client, user, password, monkeypatch):
    from accounts.throttling import LoginRateThrottle

    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    statuses = [
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]  # the form again, with an error
    refused = client.post("/accounts/login/", {"username": "alice", "password": password})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert b"Too many login attempts" in refused.content


def test_admin_login_form_is_rate_limited_too(client, user, monkeypatch):
    from accounts.throttling import LoginRateThrottle

    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    for _ in range(2):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/admin/login/", {"username": "alice", "password": "wrong"}).status_code == 429
