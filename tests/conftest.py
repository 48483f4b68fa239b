"""Shared fixtures: a real local sandbox (STS + OSS over HTTP) the whole run points at."""

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import oss2
import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from rest_framework.test import APIClient

from accounts.throttling import rate_limits_clear
from core.dependencies import redis_breaker
from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from uploads.services.reuse import local_credentials_clear


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox per test run, configured from the same ALIYUN_* settings as the app."""
    config = SandboxConfig.from_settings(data_dir=tmp_path_factory.mktemp("sandbox"))
    with Sandbox(config) as running:
        yield running


@pytest.fixture(autouse=True)
def _point_at_sandbox(settings, sandbox: Sandbox) -> Iterator[None]:
    """Every test talks to the sandbox, starts with an empty cache and no injected faults."""
    settings.ALIYUN_STS_ENDPOINT = sandbox.sts_endpoint
    settings.ALIYUN_OSS_ENDPOINT = sandbox.oss_endpoint
    sandbox.config.faults.configure(latency_ms=0, throttle_every=0, fail_every=0)
    cache.clear()
    local_credentials_clear()
    rate_limits_clear()
    yield
    sandbox.config.faults.configure(latency_ms=0, throttle_every=0, fail_every=0)
    redis_breaker.call(cache.clear, lambda: None)  # a test may have pointed the cache at a dead Redis
    local_credentials_clear()
    rate_limits_clear()


@pytest.fixture(scope="session")
def keyless_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox for the server's identity without an AccessKey (RRSA; tests/keyless.py): the test settings' account, role and bucket, plus STS over HTTPS (the credentials library calls
    AssumeRoleWithOIDC over HTTPS only) and a projected OIDC token. The process trusts the sandbox's CA
    through SSL_CERT_FILE, as `make run-keyless` sets it for the web app."""
    config = SandboxConfig.from_settings(data_dir=tmp_path_factory.mktemp("keyless"))
    with Sandbox(config, sts_tls_address=("127.0.0.1", 0)) as running, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(running.ca_file))
        yield running


_LIVE_SERVER_TURNS = threading.RLock()


def one_at_a_time(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, made to wait its turn behind the live server's requests (see below)."""

    @functools.wraps(function)
    def in_turn(*args: Any, **kwargs: Any) -> Any:
        with _LIVE_SERVER_TURNS:
            return function(*args, **kwargs)

    return in_turn


@pytest.fixture(autouse=True)
def _live_server_takes_turns(request, monkeypatch) -> None:
    """On SQLite, pytest-django's live server answers one request at a time.

    Its threads share one in-memory SQLite connection (Django's LiveServerThread), so two requests at
    once (two OSS event pushes, a push and a page's hand-out) would share one transaction: one's
    savepoint or rollback would undo the other's, and the connection would stay broken for the rest of
    the run. PostgreSQL gives each thread its own connection, so there they run side by side. A test
    thread that reads the database while the live server writes wraps its reader in ``one_at_a_time``.
    """
    if "live_server" in request.fixturenames and connection.vendor == "sqlite":
        monkeypatch.setattr(WSGIHandler, "__call__", one_at_a_time(WSGIHandler.__call__))


@pytest.fixture
def server_oss(settings, sandbox: Sandbox) -> oss2.Bucket:
    """The bucket as the server's own RAM key sees it: how tests read back what a user uploaded
    (a user's credentials are write-only, aliyun/policy.py)."""
    auth = oss2.AuthV4(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET)
    return oss2.Bucket(
        auth, sandbox.oss_endpoint, settings.ALIYUN_OSS_BUCKET, region=settings.ALIYUN_OSS_REGION
    )


@pytest.fixture
def password() -> str:
    return "correct horse battery staple"


@pytest.fixture
def user(django_user_model, password):
    return django_user_model.objects.create_user(username="alice", password=password)


@pytest.fixture
def other_user(django_user_model, password):
    return django_user_model.objects.create_user(username="bob", password=password)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def jwt_client(api_client, user, password) -> APIClient:
    """An API client logged in the way a mobile app is: a bearer access token."""
    response = api_client.post(
        "/api/auth/token/", {"username": user.username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return api_client


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The isolation runs' counts (keys, cases, SDK operations), so a run states what it covered."""
    from tests.isolation import REPORT

    if REPORT:
        terminalreporter.section("isolation")
        for name, count in sorted(REPORT.items()):
            terminalreporter.write_line(f"{name}: {count}")
