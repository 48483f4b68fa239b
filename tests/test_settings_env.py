"""Start-up from the environment: production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_check(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALIYUN_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "DJANGO_SECRET_KEY": "s" * 50,
    "DJANGO_JWT_SIGNING_KEY": "j" * 50,
    "DJANGO_ALLOWED_HOSTS": "uploads.example.com",
    "ALIYUN_ACCESS_KEY_ID": "ram-user-key",
    "ALIYUN_ACCESS_KEY_SECRET": "ram-user-secret",
    "ALIYUN_STS_ROLE_ARN": "acs:ram::1234567890123456:role/oss-uploader",
    "ALIYUN_OSS_BUCKET": "my-avatars",
}


def test_production_environment_passes_checks():
    result = run_check(**PRODUCTION)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_JWT_SIGNING_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_missing_secret_stops_start_up_with_a_clear_message(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run_check(**env)
    assert result.returncode != 0
    assert "The environment is not ready for production" in result.stderr
    assert missing in result.stderr
    assert "Traceback" not in result.stderr


def test_every_missing_production_setting_is_reported_at_once_without_a_traceback():
    result = run_check(ALIYUN_STS_DURATION_SECONDS="an hour")
    assert result.returncode == 1
    print(result.stderr)
    for name in [
        "DJANGO_SECRET_KEY",
        "DJANGO_JWT_SIGNING_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
        "ALIYUN_STS_ROLE_ARN",
        "ALIYUN_OSS_BUCKET",
        "ALIYUN_STS_DURATION_SECONDS",
    ]:
        assert name in result.stderr, name
    assert "Traceback" not in result.stderr and "DJANGO_DEBUG=1" in result.stderr


def test_non_integer_setting_names_the_variable():
    result = run_check(**PRODUCTION, ALIYUN_STS_DURATION_SECONDS="an hour")
    assert result.returncode != 0
    assert "ALIYUN_STS_DURATION_SECONDS must be an integer" in result.stderr


def test_development_needs_no_secrets():
    result = run_check(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALIYUN_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings():
    import secrets

    env = {
        **PRODUCTION,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "DATABASE_URL": "postgres://app:password@db.internal:5432/app",  # SQLite would warn (accounts.W001)
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_logs_are_json_lines_with_a_request_id():
    import json

    result = run_manage(
        "shell",
        "-c",
        "import logging; logging.getLogger('uploads').warning('hello %s', 'world')",
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if "hello world" in line)
    record = json.loads(line)
    assert record["message"] == "hello world"
    assert record["level"] == "WARNING" and record["logger"] == "uploads"
    assert record["request_id"] == "-"  # outside a request; inside one it is the X-Request-ID


def _installed_apps(**env: str) -> list[str]:
    result = run_manage(
        "shell", "-c", "from django.conf import settings; print(','.join(settings.INSTALLED_APPS))", **env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split(",")


def test_production_installs_no_sandbox_and_development_does():
    production = _installed_apps(**PRODUCTION)
    assert "sandbox" not in production
    assert {"uploads", "audit", "operators", "avatars"} <= set(production)
    assert "sandbox" in _installed_apps(DJANGO_DEBUG="1")


def test_production_refuses_to_run_the_sandbox_with_a_clear_message():
    result = run_manage("sandbox", **PRODUCTION)
    assert result.returncode != 0
    assert "The sandbox is a development tool" in result.stderr
    assert "DJANGO_DEBUG=1" in result.stderr
    assert "Traceback" not in result.stderr
