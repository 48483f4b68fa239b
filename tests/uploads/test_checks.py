"""Settings validation at start-up: each check fires on bad values, with an id and a hint."""

import pytest
from django.core.checks import run_checks


def check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id.startswith("uploads.")}


def test_test_settings_pass():
    assert check_ids() == set()


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("ALIYUN_STS_ROLE_ARN", "arn:aws:iam::123:role/x", "uploads.E001"),
        ("ALIYUN_STS_ROLE_ARN", "acs:ram::abc:role/x", "uploads.E001"),
        ("ALIYUN_OSS_BUCKET", "Bad_Bucket", "uploads.E002"),
        ("ALIYUN_OSS_BUCKET", "ab", "uploads.E002"),
        ("ALIYUN_OSS_BUCKET", "-leading-hyphen", "uploads.E002"),
        ("ALIYUN_STS_DURATION_SECONDS", 899, "uploads.E003"),
        ("ALIYUN_STS_DURATION_SECONDS", 43201, "uploads.E003"),
        ("ALIYUN_STS_ENDPOINT", "https://sts.aliyuncs.com", "uploads.E005"),
        ("ALIYUN_OSS_ENDPOINT", "oss-cn-hangzhou.aliyuncs.com", "uploads.E006"),
        ("ALIYUN_OSS_REGION", "oss-cn-hangzhou", "uploads.E007"),
        ("ALIYUN_STS_MAX_ATTEMPTS", 0, "uploads.E008"),
        ("ALIYUN_STS_STALE_IF_ERROR_SECONDS", -1, "uploads.E009"),
        ("ALIYUN_STS_STALE_IF_ERROR_SECONDS", 900, "uploads.W003"),
        ("ALIYUN_STS_REUSE_MARGIN_SECONDS", 3600, "uploads.W001"),
        ("CREDENTIAL_URL_LIFETIME_MINUTES", 0, "uploads.E020"),
        ("CREDENTIAL_URL_LIFETIME_MINUTES", 7 * 24 * 60 + 1, "uploads.E020"),  # past the refresh token
        ("UPLOAD_QUOTA_BYTES", -1, "uploads.E010"),
        ("UPLOAD_QUOTA_OBJECTS", -1, "uploads.E011"),
        ("ALIYUN_OSS_OWNER_ACCOUNT_ID", "owner", "uploads.E012"),
        ("ALIYUN_OSS_OWNER_ACCOUNT_ID", "acs:ram::1234:role/x", "uploads.E012"),
        ("ALIYUN_OSS_OWNER_ACCOUNT_ID", "12*", "uploads.E012"),
        ("ALIYUN_STS_MAX_CALLS_PER_SECOND", -1, "uploads.E060"),
        ("ALIYUN_STS_QUEUE_SECONDS", -1, "uploads.E061"),
        ("ALIYUN_STS_WAITERS_PER_PROCESS", -1, "uploads.E062"),
        ("ALIYUN_STS_REFRESH_THREADS", 0, "uploads.E063"),
        ("APP_INSTANCES", 0, "uploads.E064"),
        ("ALIYUN_STS_MAX_CALLS_PER_SECOND", 101, "uploads.W060"),
        ("ALIYUN_STS_STALE_IF_ERROR_SECONDS", 120, "uploads.W061"),
    ],
)
def test_bad_value_is_reported_with_hint(settings, setting, value, check_id):
    setattr(settings, setting, value)
    messages = [m for m in run_checks() if m.id == check_id]
    assert len(messages) == 1
    assert messages[0].hint


@pytest.mark.parametrize(
    "missing",
    ["ALIYUN_STS_ROLE_ARN", "ALIYUN_OSS_BUCKET"],
)
def test_missing_settings_are_an_error_when_debug_is_off(settings, missing):
    settings.DEBUG = False
    setattr(settings, missing, "")
    messages = [m for m in run_checks() if m.id == "uploads.E004"]
    assert len(messages) == 1 and missing in messages[0].msg


@pytest.mark.parametrize("missing", ["ALIYUN_ACCESS_KEY_ID", "ALIYUN_ACCESS_KEY_SECRET"])
def test_half_an_access_key_is_an_error(settings, missing):
    setattr(settings, missing, "")
    messages = [m for m in run_checks() if m.id == "uploads.E041"]
    assert (
        len(messages) == 1
        and "Only one of ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET" in messages[0].msg
    )


def test_missing_identity_is_fine_in_development(settings):
    settings.DEBUG = True
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    assert not {"uploads.E004", "uploads.E040"} & set(check_ids())


def test_checks_make_no_network_calls(settings, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a system check opened a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    settings.ALIYUN_STS_ENDPOINT = "sts.aliyuncs.com"
    assert check_ids() == set()


def test_deploy_check_warns_about_a_per_process_cache(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "uploads.W002" in {m.id for m in run_checks(include_deployment_checks=True)}
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15"}
    }
    assert "uploads.W002" not in {m.id for m in run_checks(include_deployment_checks=True)}


def test_a_numeric_owner_account_override_passes(settings):
    settings.ALIYUN_OSS_OWNER_ACCOUNT_ID = "5555000011112222"
    assert check_ids() == set()


@pytest.mark.parametrize(("margin", "refused"), [(299, True), (0, True), (300, False), (900, False)])
def test_a_reuse_margin_below_the_mobile_sdks_refresh_margin_is_refused(settings, margin, refused):
    settings.ALIYUN_STS_REUSE_MARGIN_SECONDS = margin
    ids = {message.id for message in run_checks()}
    assert ("uploads.E013" in ids) is refused
