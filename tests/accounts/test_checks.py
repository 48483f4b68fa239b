"""Deploy checks of the sign-in settings and of the Alibaba endpoints and keys, each firing on its
bad value and quiet on a good production configuration; demo users cannot sign in with DEBUG off."""

import pytest
from django.core.checks import run_checks
from django.core.management import call_command

GOOD_KEY = "k" * 48


def ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(include_deployment_checks=True, **kwargs)}


OURS = {
    "accounts.E001",
    "accounts.E002",
    "accounts.E003",
    "accounts.E004",
    "accounts.W001",
    "uploads.E030",
    "uploads.E031",
}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": GOOD_KEY}
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    return settings


@pytest.mark.django_db
def test_a_good_production_configuration_is_quiet(production):
    found = ids(databases=["default"]) & OURS
    expected = {"accounts.W001"} if production.DATABASES["default"]["ENGINE"].endswith("sqlite3") else set()
    assert found == expected


@pytest.mark.parametrize(
    ("key", "check_id"),
    [
        ("short-key", "accounts.E001"),
        ("same-as-secret", "accounts.E002"),
        ("development", "accounts.E003"),
    ],
)
def test_jwt_signing_key_checks(production, key, check_id):
    value = {
        "short-key": "x" * 31,
        "same-as-secret": production.SECRET_KEY,
        "development": production.JWT_DEVELOPMENT_SIGNING_KEY,
    }[key]
    production.SIMPLE_JWT = {**production.SIMPLE_JWT, "SIGNING_KEY": value}
    messages = [m for m in run_checks() if m.id == check_id]
    assert len(messages) == 1 and messages[0].hint
    assert "x" * 31 not in messages[0].msg  # the key itself is never shown


def test_jwt_checks_are_quiet_in_development(settings):
    settings.DEBUG = True
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": settings.JWT_DEVELOPMENT_SIGNING_KEY}
    assert not ids() & {"accounts.E001", "accounts.E002", "accounts.E003"}
    assert len(settings.JWT_DEVELOPMENT_SIGNING_KEY.encode()) >= 32  # PyJWT does not warn in development


@pytest.mark.parametrize(
    ("endpoint", "fires"),
    [
        ("http://oss-cn-hangzhou.aliyuncs.com", True),
        ("http://10.0.0.5:8702", True),
        ("http://127.0.0.1:8702", False),
        ("http://localhost:8702", False),
        ("http://[::1]:8702", False),
        ("https://oss-cn-hangzhou.aliyuncs.com", False),
    ],
)
def test_plain_http_oss_endpoint_off_this_machine(production, endpoint, fires):
    production.ALIYUN_OSS_ENDPOINT = endpoint
    assert ("uploads.E030" in ids()) is fires


@pytest.mark.parametrize(
    ("name", "value"),
    [("ALIYUN_ACCESS_KEY_ID", "sandbox-ram-user"), ("ALIYUN_ACCESS_KEY_SECRET", "sandbox-ram-user-secret")],
)
def test_the_sandbox_key_pair_is_refused(production, name, value):
    setattr(production, name, value)
    assert "uploads.E031" in ids()


@pytest.mark.django_db
def test_sqlite_with_debug_off_warns(production, monkeypatch):
    monkeypatch.setitem(production.DATABASES["default"], "ENGINE", "django.db.backends.sqlite3")
    assert "accounts.W001" in ids()
    monkeypatch.setitem(production.DATABASES["default"], "ENGINE", "django.db.backends.postgresql")
    assert "accounts.W001" not in ids()


@pytest.fixture
def demo_users(settings):
    settings.DEBUG = True
    call_command("create_demo_users", stdout=None)
    settings.DEBUG = False


@pytest.mark.django_db
def test_active_demo_users_fail_the_check_until_deactivated(production, demo_users, django_user_model):
    assert "accounts.E004" in ids(databases=["default"])
    assert "accounts.E004" not in ids()  # without a database the check stays out of the way
    django_user_model.objects.filter(is_demo=True).update(is_active=False)
    assert "accounts.E004" not in ids(databases=["default"])


@pytest.mark.django_db
def test_a_demo_user_cannot_sign_in_with_debug_off(client, settings, demo_users):
    token = client.post(
        "/api/auth/token/", {"username": "demo", "password": "demo-password"}, content_type="application/json"
    )
    assert (token.status_code, token.json()["code"]) == (401, "no_active_account")
    page = client.post("/accounts/login/", {"username": "demo", "password": "demo-password"})
    assert page.status_code == 200 and not page.wsgi_request.user.is_authenticated
    admin = client.post("/admin/login/", {"username": "admin", "password": "admin-password"})
    assert admin.status_code == 200 and not admin.wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_a_demo_users_tokens_and_sessions_end_when_debug_goes_off(
    client, settings, demo_users, django_user_model
):
    settings.DEBUG = True
    tokens = client.post(
        "/api/auth/token/", {"username": "demo", "password": "demo-password"}, content_type="application/json"
    ).json()
    client.force_login(django_user_model.objects.get(username="admin"))
    assert client.get("/admin/").status_code == 200
    settings.DEBUG = False
    me = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert (me.status_code, me.json()["code"]) == (401, "user_inactive")
    refresh = client.post(
        "/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, content_type="application/json"
    )
    assert refresh.status_code == 401
    assert client.get("/admin/").status_code == 302  # the staff demo session no longer signs in
