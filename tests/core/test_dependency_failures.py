"""A dependency that fails is a 503 with a code and Retry-After, never a 500, and its log lines are
bounded: database errors injected at the project's own seams (Django's execute wrappers), Redis
errors with a server that refuses or never answers."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection
from django.test import Client

from core.dependencies import Breaker, OutageLogFilter, redis_breaker, redis_errors
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db


@contextmanager
def database_down(*, after: int = 0) -> Iterator[None]:
    """Every query of this thread fails as a terminated backend's does (after ``after`` of them)."""
    seen = [0]

    def fail(execute, sql, params, many, context):
        seen[0] += 1
        if seen[0] > after:
            raise OperationalError("terminating connection due to administrator command")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        yield


def test_jwt_authentication_with_the_database_down_is_503_with_retry_after(jwt_client):
    with database_down():
        response = jwt_client.get("/api/me/")
    assert response.status_code == 503, response.content
    assert response.json() == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "database_unavailable",
    }
    assert response["Retry-After"] == "5"


def test_the_quota_read_failing_is_503_not_500(jwt_client):
    with database_down(after=1):  # the user's row loads; the quota's does not
        response = jwt_client.post("/api/uploads/sts-token/")
    assert response.status_code == 503, response.content
    assert response.json()["code"] in {"database_unavailable", "audit_unavailable"}
    assert response["Retry-After"]


def test_no_credentials_leave_without_their_audit_row(jwt_client, monkeypatch):
    from uploads.services import audit

    def no_row(*args, **kwargs):
        raise OperationalError("the audit table is gone")

    monkeypatch.setattr(audit.compiled, "create", no_row)
    response = jwt_client.post("/api/uploads/sts-token/")
    assert response.status_code == 503 and response.json()["code"] == "audit_unavailable"
    assert "accessKeyId" not in response.json()
    assert not TokenIssuance.objects.exists()


def test_an_html_page_with_the_database_down_is_503_too(admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    with database_down():
        response = client.get("/admin/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"Traceback" not in response.content


def test_database_errors_are_logged_once_per_interval_without_traceback(jwt_client, caplog):
    handler_filter = OutageLogFilter()
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    collector = Collect()
    collector.addFilter(handler_filter)
    logging.getLogger().addHandler(collector)
    try:
        with database_down():
            statuses = [jwt_client.get("/api/me/").status_code for _ in range(30)]
    finally:
        logging.getLogger().removeHandler(collector)
    assert statuses == [503] * 30
    text = "\n".join(lines)
    assert len(lines) <= 3, text  # the authentication's line, django.request's 503 line
    assert "Traceback" not in text and "administrator command" not in text
    assert "OperationalError" in text


def test_the_log_filter_counts_what_it_held_back():
    log_filter = OutageLogFilter()
    log_filter.interval = 0.2

    def record() -> logging.LogRecord:
        try:
            raise OperationalError("secret host 10.0.0.5")
        except OperationalError:
            import sys

            return logging.LogRecord("x", logging.ERROR, __file__, 1, "write failed", (), sys.exc_info())

    passed = [log_filter.filter(record()) for _ in range(5)]
    time.sleep(0.25)
    last = record()
    assert passed == [True, False, False, False, False] and log_filter.filter(last)
    assert last.getMessage() == "write failed (OperationalError) [4 more like it in the last 0 s]"
    assert last.exc_info is None and "10.0.0.5" not in last.getMessage()


# --- Redis ------------------------------------------------------------------------------------------


@pytest.fixture
def silent_redis() -> Iterator[int]:
    """A port that accepts connections and never answers: a stalled Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    server.close()


def _redis_settings(settings, port: int) -> None:
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


def test_a_stalled_redis_costs_one_timeout_then_nothing(jwt_client, settings, silent_redis):
    """Hand-outs go on from per-process state; only the first call waits for the timeout."""
    _redis_settings(settings, silent_redis)
    settings.REDIS_TIMEOUT_MS = 200
    times, statuses = [], []
    for _ in range(10):
        started = time.monotonic()
        statuses.append(jwt_client.post("/api/uploads/sts-token/").status_code)
        times.append(time.monotonic() - started)
    assert statuses == [200] * 10
    assert max(times[1:]) < 0.5, times  # the breaker is open: no further timeouts
    assert redis_breaker.down


def test_readyz_answers_within_its_bound_when_redis_stalls(settings, silent_redis):
    _redis_settings(settings, silent_redis)
    settings.CACHES["default"]["OPTIONS"] = {"SOCKET_CONNECT_TIMEOUT": 10, "SOCKET_TIMEOUT": 10}
    started = time.monotonic()
    response = Client().get("/readyz")
    assert time.monotonic() - started < 3
    assert response.status_code == 503 and response.json()["checks"]["cache"] == "fail: timeout"


def test_the_breaker_logs_an_outage_once_then_a_summary_then_the_recovery(caplog):
    breaker = Breaker("Redis", redis_errors, open_seconds=0.0, log_interval_seconds=0.2)
    error = ConnectionError("refused")
    with caplog.at_level(logging.WARNING, logger="core.dependencies"):
        for _ in range(50):
            assert breaker.call(lambda: (_ for _ in ()).throw(error), lambda: "fallback") == "fallback"
        time.sleep(0.25)
        breaker.call(lambda: (_ for _ in ()).throw(error), lambda: None)
        assert breaker.call(lambda: "answer", lambda: "fallback") == "answer"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    assert messages[0].startswith("Redis unavailable (ConnectionError)")
    assert "still unavailable" in messages[1] and "50 failed" in messages[1]
    assert messages[2].startswith("Redis available again")
    assert not breaker.down
