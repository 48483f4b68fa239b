"""Revocation: a password change, a deactivation and "Sign out everywhere" end the user's refresh
tokens, access tokens and sessions issued before; a fresh login works."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from hypothesis import given
from hypothesis import strategies as st

from accounts.selectors import token_is_current
from accounts.services import user_tokens_revoke
from accounts.tokens import AccessToken, token_issued_at

pytestmark = pytest.mark.django_db


def login(api_client, username, password) -> dict:
    response = api_client.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def me(api_client, access: str):
    return api_client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {access}")


def refresh(api_client, token: str):
    return api_client.post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def assert_ended(api_client, tokens: dict) -> None:
    old_me, old_refresh = me(api_client, tokens["access"]), refresh(api_client, tokens["refresh"])
    assert (old_me.status_code, old_me.json()["code"]) == (401, "token_revoked"), old_me.json()
    assert (old_refresh.status_code, old_refresh.json()["code"]) == (401, "token_revoked"), old_refresh.json()


@pytest.fixture
def staff_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="root-password-1234")
    client.force_login(admin)
    return client


def test_password_change_in_code_ends_old_tokens_and_a_fresh_login_works(api_client, user, password):
    tokens = login(api_client, "alice", password)
    assert me(api_client, tokens["access"]).status_code == 200

    user.set_password("a brand new password")
    user.save()

    assert_ended(api_client, tokens)
    fresh = login(api_client, "alice", "a brand new password")
    assert me(api_client, fresh["access"]).status_code == 200
    assert refresh(api_client, fresh["refresh"]).status_code == 200


def test_password_change_in_the_admin_ends_old_tokens(api_client, staff_client, user, password):
    tokens = login(api_client, "alice", password)
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {
            "password1": "admin-chosen-password-42",
            "password2": "admin-chosen-password-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    assert_ended(api_client, tokens)
    assert me(api_client, login(api_client, "alice", "admin-chosen-password-42")["access"]).status_code == 200


def test_changepassword_command_ends_old_tokens(api_client, user, password, monkeypatch):
    tokens = login(api_client, "alice", password)
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass",
        lambda prompt="": "command-chosen-password-42",
    )
    call_command("changepassword", "alice", stdout=None)

    assert_ended(api_client, tokens)
    assert (
        me(api_client, login(api_client, "alice", "command-chosen-password-42")["access"]).status_code == 200
    )


def test_deactivation_ends_old_tokens_even_after_reactivation(api_client, user, password):
    tokens = login(api_client, "alice", password)

    user.is_active = False
    user.save()
    inactive_me = me(api_client, tokens["access"])
    assert (inactive_me.status_code, inactive_me.json()["code"]) == (401, "user_inactive")
    assert refresh(api_client, tokens["refresh"]).status_code == 401
    assert (
        api_client.post(
            "/api/auth/token/", {"username": "alice", "password": password}, format="json"
        ).status_code
        == 401
    )

    user.is_active = True
    user.save()
    assert_ended(api_client, tokens)
    assert me(api_client, login(api_client, "alice", password)["access"]).status_code == 200


def test_sign_out_everywhere_admin_action_ends_tokens_and_sessions(
    api_client, staff_client, client, user, password
):
    from django.test import Client

    tokens = login(api_client, "alice", password)
    browser = Client()
    browser.force_login(user)
    assert browser.get("/api/me/").status_code == 200

    response = staff_client.post(
        "/admin/accounts/user/", {"action": "sign_out_everywhere", "_selected_action": [user.pk]}, follow=True
    )
    assert b"Signed out 1 user everywhere" in response.content

    assert_ended(api_client, tokens)
    assert browser.get("/api/me/").status_code == 401  # the session is gone: anonymous
    assert browser.get("/").status_code == 302  # the demo page sends it to the login page
    assert me(api_client, login(api_client, "alice", password)["access"]).status_code == 200


def test_a_hash_upgrade_at_login_does_not_sign_anyone_out(api_client, user, password, settings):
    tokens = login(api_client, "alice", password)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    login(api_client, "alice", password)  # re-hashed with the new preferred hasher on the way
    user.refresh_from_db()
    assert user.password.startswith("scrypt$")
    assert me(api_client, tokens["access"]).status_code == 200


def test_refresh_token_after_revoke_is_refused_but_the_access_minted_before_is_not_reused(
    api_client, user, password
):
    tokens = login(api_client, "alice", password)
    rotated = refresh(api_client, tokens["refresh"]).json()
    user_tokens_revoke(user=user)
    assert_ended(api_client, rotated)


@given(
    issued=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    offset_us=st.integers(min_value=-5_000_000, max_value=5_000_000),
)
def test_token_issue_time_survives_the_jwt_to_the_microsecond(issued, offset_us):
    """The cut-off compares exactly: a token issued one microsecond before it is refused, one
    issued at or after it stands, whatever the time of day."""
    token = AccessToken()
    token.set_iat(at_time=issued)
    decoded = AccessToken(str(token), verify=False)
    assert token_issued_at(decoded) == issued

    class _User:
        is_active, is_demo = True, False
        tokens_valid_after = issued + timedelta(microseconds=offset_us)

    assert token_is_current(user=_User(), issued_at=token_issued_at(decoded)) is (offset_us <= 0)


@pytest.mark.parametrize("cut_off_by", ["password change", "logout", "sign out everywhere"])
def test_moving_the_cut_off_drops_the_cached_sts_credentials(api_client, user, password, cut_off_by):
    """STS credentials already handed out cannot be ended (they live until their Expiration), but the
    server never hands the same ones out again after the cut-off moves: the next hand-out is a new key."""
    tokens = login(api_client, user.username, password)
    first = api_client.post("/api/uploads/sts-token/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert first.status_code == 200, first.content
    again = api_client.post("/api/uploads/sts-token/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert again.json()["accessKeyId"] == first.json()["accessKeyId"]  # reused while nothing changed

    if cut_off_by == "password change":
        user.set_password("a new password, long enough")
        user.save()
        password = "a new password, long enough"
    elif cut_off_by == "logout":
        assert (
            api_client.post("/api/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code
            == 200
        )
    else:
        user_tokens_revoke(user=user)
    fresh = login(api_client, user.username, password)
    after = api_client.post("/api/uploads/sts-token/", HTTP_AUTHORIZATION=f"Bearer {fresh['access']}")

    assert after.status_code == 200, after.content
    assert after.json()["accessKeyId"] != first.json()["accessKeyId"]
