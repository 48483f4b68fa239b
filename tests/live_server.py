"""A production-like server in a subprocess for tests that need real concurrency: gunicorn
(config/gunicorn.conf.py, threaded workers, DEBUG off) on a database of its own, migrated afresh.

SQLite: a file in a temporary folder. PostgreSQL: when the suite runs on it (DATABASE_URL), a
database of its own on the same server, dropped on the way out.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_OWNED = ("DJANGO_", "ALIYUN_", "GUNICORN_", "THROTTLE_", "SANDBOX_", "JWT_", "DATABASE_", "REDIS_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_environment(**overrides: str) -> dict[str, str]:
    """DEBUG off, fresh random keys, nothing inherited from the caller's DJANGO_*/ALIYUN_* variables."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(_OWNED)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "ALIYUN_ACCESS_KEY_ID": "live-test-ram-user",
            "ALIYUN_ACCESS_KEY_SECRET": secrets.token_urlsafe(24),
            "ALIYUN_STS_ROLE_ARN": "acs:ram::1000000000000000:role/live-test",
            "ALIYUN_STS_ENDPOINT": "127.0.0.1:1",
            "ALIYUN_OSS_ENDPOINT": "http://127.0.0.1:1",
            "ALIYUN_OSS_BUCKET": "live-test-bucket",
            "THROTTLE_LOGIN": "100000/min",
            "THROTTLE_STS_TOKEN": "100000/min",
            "GUNICORN_DRAIN_SECONDS": "0",  # stop at once on SIGTERM (tests/core/test_drain.py drains)
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None

    def post_json(self, path: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def _postgres_database_url(name: str) -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return url.rsplit("/", 1)[0] + "/" + name


def _postgres_admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(statement)


@contextmanager
def live_server(tmp_path: Path, database: str, **overrides: str) -> Iterator[LiveServer]:
    """``database`` is "sqlite" or "postgresql" (the latter only when the suite runs on PostgreSQL)."""
    name = f"live_{os.getpid()}_{secrets.token_hex(4)}"
    if database == "postgresql":
        url = _postgres_database_url(name)
        assert url is not None
        _postgres_admin(url, f'CREATE DATABASE "{name}"')
    else:
        url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    port = free_port()
    env = production_environment(
        **{
            "DATABASE_URL": url,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "8",
            "GUNICORN_ACCESS_LOG": "",
            **overrides,
        }
    )
    log = tmp_path / "gunicorn.log"
    server = LiveServer(url=f"http://127.0.0.1:{port}", env=env, log=log)
    process = None
    try:
        server.manage("migrate", "--noinput")
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py"],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server.process = process
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(server.url + "/healthz", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        if database == "postgresql":
            _postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
