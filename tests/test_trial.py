"""`make trial` as documented: the production path (gunicorn, DEBUG off, PostgreSQL, Redis) against the
sandbox, with `make check-deploy` clean for it; probed as a client behind the TLS proxy would be.

Needs PostgreSQL and Redis on loopback (as `make bench`); a database name and Redis db of its own.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABASE, REDIS_DB = "ossup_trial_test", 10

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, *, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if body is not None or "sts-token" in url else "GET",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read() or b"{}")


def test_make_trial_serves_the_production_path_with_a_clean_check_deploy():
    port = free_port()
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}  # a fresh shell
    trial = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "trial",
            f"TRIAL_ARGS=--port {port} --database {DATABASE} --redis-db {REDIS_DB}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops everything" in line for line in lines):
            line = trial.stdout.readline()
            assert line or trial.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        output = "".join(lines)
        assert "System check identified no issues" in output  # make check-deploy, --fail-level WARNING
        password = re.search(r"sign in as trial / (\S+)", output).group(1)
        url = f"http://127.0.0.1:{port}"

        status, ready = call(f"{url}/readyz")
        assert status == 200, ready
        proxy = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy in front would send it
        _, tokens = call(
            f"{url}/api/auth/token/", body={"username": "trial", "password": password}, headers=proxy
        )
        status, credentials = call(
            f"{url}/api/uploads/sts-token/", headers={**proxy, "Authorization": f"Bearer {tokens['access']}"}
        )
        assert status == 200
        assert credentials["accessKeyId"].startswith("STS.") and credentials["bucket"] == "trial-bucket"
    finally:
        os.killpg(trial.pid, signal.SIGINT)
        rest = trial.communicate(timeout=60)[0]
    # Ctrl-C reaches make and the trial alike (one process group, as in a terminal): make reports the
    # interrupt; the trial stops its servers and drops its database.
    assert "trial: stopping" in rest, rest
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone() is None
