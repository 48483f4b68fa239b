"""Logs: no line carries a query string, and every line about a request carries its request id,
4xx included, on the production server (gunicorn, JSON lines) and on `make run`'s runserver."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live_server import ROOT, free_port, live_server, production_environment

pytestmark = pytest.mark.slow
SECRET = "SeCrEt-in-the-query-0123456789"
REQUESTS = [
    ("GET", "/api/me/?token=" + SECRET, None),  # 401
    ("GET", "/no-such-page/?signature=" + SECRET, None),  # 404
    ("POST", "/api/auth/token/?x=" + SECRET, b"{not json"),  # 400
    ("GET", "/api/uploads/sts-token/?a=" + SECRET, None),  # 401
]


def send_all(base_url: str) -> list[str]:
    """Sends REQUESTS, returns their request ids (from X-Request-ID)."""
    ids = []
    for method, path, body in REQUESTS:
        request = urllib.request.Request(
            base_url + path, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            assert 400 <= error.code < 500, (path, error.code)
            ids.append(error.headers["X-Request-ID"])
    assert len(ids) == len(REQUESTS)
    return ids


def check_lines(lines: list[str], ids: list[str]) -> None:
    assert lines, "no log lines"
    for line in lines:
        assert SECRET not in line and "?" not in line.split("] ", 1)[-1].replace('"?"', ""), line
        assert any(request_id in line for request_id in ids), f"line without a request id: {line}"
    for request_id in ids:  # each request was logged (at least its 4xx line)
        assert any(request_id in line for line in lines), request_id


def test_gunicorn_logs_have_no_query_string_and_a_request_id_on_every_line(tmp_path):
    with live_server(
        tmp_path, "sqlite", GUNICORN_ACCESS_LOG="-", DJANGO_LOG_FORMAT="json", DJANGO_LOG_LEVEL="INFO"
    ) as server:
        time.sleep(0.5)
        start = len(server.log.read_text())
        ids = send_all(server.url)
        time.sleep(1)
        lines = [line for line in server.log.read_text()[start:].splitlines() if line.strip()]
    for line in lines:
        json.loads(line)  # JSON lines, access log and application alike
    print("\n".join(lines))
    check_lines(lines, ids)


def test_runserver_logs_have_no_query_string_and_a_request_id_on_every_line(tmp_path):
    port = free_port()
    env = production_environment(
        DJANGO_DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DJANGO_LOG_FORMAT="text"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    log = Path(tmp_path / "runserver.log")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        start = len(log.read_text())
        ids = send_all(f"http://127.0.0.1:{port}")
        time.sleep(1)
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = [line for line in log.read_text()[start:].splitlines() if line.strip()]
    print("\n".join(lines))
    check_lines(lines, ids)
