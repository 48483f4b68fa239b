"""System checks of the server's identity: no AccessKey with a provider passes, neither is refused, both
warn (the AccessKey wins), a keyless duration above an hour, half-configured RRSA, plain-http STS for RRSA,
the server session's length; and production settings stop asking for an AccessKey when a provider is set."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

ROOT = Path(__file__).resolve().parents[2]
RRSA = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1234567890123456:role/uploads-server",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
}


def messages(settings, **values) -> dict[str, str]:
    settings.DEBUG = False
    for name, value in values.items():
        setattr(settings, name, value)
    return {m.id: m.msg for m in run_checks() if m.id.startswith("uploads.")}


NO_KEY = {"ALIYUN_ACCESS_KEY_ID": "", "ALIYUN_ACCESS_KEY_SECRET": ""}


@pytest.mark.parametrize(
    "provider",
    [
        RRSA | {"ALIYUN_STS_ENDPOINT": "sts-vpc.cn-hangzhou.aliyuncs.com"},
        {"ALIBABA_CLOUD_ECS_METADATA": "uploads-server"},
        {"ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:8080/credentials"},
    ],
    ids=["rrsa", "ecs", "uri"],
)
def test_a_provider_without_an_access_key_is_accepted(settings, provider):
    found = messages(settings, **NO_KEY, **provider)
    assert not {"uploads.E004", "uploads.E040", "uploads.E041", "uploads.W040", "uploads.E044"} & set(
        found
    ), found


def test_neither_an_access_key_nor_a_provider_is_refused(settings):
    found = messages(settings, **NO_KEY)
    assert "neither an AccessKey nor a credentials provider" in found["uploads.E040"]


def test_both_warn_that_the_access_key_wins(settings):
    found = messages(settings, **{"ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:8080/c"})
    assert found["uploads.W040"].endswith("the AccessKey is used.")


def test_two_providers_warn_which_is_used(settings):
    found = messages(
        settings, **NO_KEY, **RRSA, ALIBABA_CLOUD_ECS_METADATA="r", ALIYUN_STS_ENDPOINT="sts.aliyuncs.com"
    )
    assert found["uploads.W042"].startswith("More than one credentials provider is configured: RRSA")


def test_a_chained_duration_above_an_hour_is_refused_when_keyless(settings):
    found = messages(settings, **NO_KEY, ALIBABA_CLOUD_ECS_METADATA="r", ALIYUN_STS_DURATION_SECONDS=7200)
    assert "at most 3600 s" in found["uploads.E042"] and "uploads.W014" not in found
    assert "uploads.E042" not in messages(settings, ALIYUN_STS_DURATION_SECONDS=3600)


def test_half_configured_rrsa_names_what_is_missing(settings):
    found = messages(settings, ALIBABA_CLOUD_ROLE_ARN=RRSA["ALIBABA_CLOUD_ROLE_ARN"])
    assert found["uploads.E043"] == (
        "RRSA is configured only in part: ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE missing."
    )


def test_rrsa_needs_https_sts(settings):
    found = messages(settings, **NO_KEY, **RRSA, ALIYUN_STS_ENDPOINT="127.0.0.1:8701")
    assert "uploads.E044" in found
    assert "uploads.E044" not in messages(settings, ALIYUN_STS_HTTPS_ENDPOINT="127.0.0.1:8703")
    assert "uploads.E046" in messages(settings, ALIYUN_STS_HTTPS_ENDPOINT="https://127.0.0.1:8703")


@pytest.mark.parametrize(
    ("seconds", "check"), [(899, "uploads.E045"), (43201, "uploads.E045"), (1200, "uploads.W041")]
)
def test_the_server_session_length(settings, seconds, check):
    found = messages(
        settings,
        **NO_KEY,
        **RRSA,
        ALIYUN_STS_ENDPOINT="sts.aliyuncs.com",
        ALIYUN_SERVER_SESSION_SECONDS=seconds,
    )
    assert check in found


def test_the_sandbox_key_pair_is_still_refused_in_production(settings):
    found = messages(
        settings,
        ALIYUN_ACCESS_KEY_ID="sandbox-ram-user",
        ALIYUN_ACCESS_KEY_SECRET="sandbox-ram-user-secret",
        ALIBABA_CLOUD_CREDENTIALS_URI="http://127.0.0.1:8080/c",
    )
    assert "uploads.E031" in found and "uploads.W040" in found


def _production_start(**values: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALIYUN_", "ALIBABA_CLOUD_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "0", **values}
    code = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return result.stderr


def test_production_does_not_ask_for_an_access_key_when_a_provider_is_set():
    assert "ALIYUN_ACCESS_KEY_ID" in _production_start()
    keyless = _production_start(ALIBABA_CLOUD_CREDENTIALS_URI="http://127.0.0.1:8080/credentials")
    assert "ALIYUN_OSS_BUCKET" in keyless and "ALIYUN_ACCESS_KEY" not in keyless
    assert "ALIYUN_ACCESS_KEY" not in _production_start(**RRSA)
