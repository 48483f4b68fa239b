"""What the benchmark and the load check share: a production-like stack on loopback, and a client.

The stack is the real thing minus Alibaba Cloud: gunicorn (config/gunicorn.conf.py) with
DEBUG off on a PostgreSQL database of its own and a Redis database number of its own, and the
sandbox (`manage.py sandbox`) standing in for STS and OSS. Everything listens on 127.0.0.1 on free
ports and is stopped (and the database dropped) on the way out, whatever happened.

Prerequisites: PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres, Redis on
127.0.0.1:6379 (both as on the developer machines and in CI), and the project's venv.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
STARTUP_TIMEOUT = 30.0

# Variables the stack sets itself; anything the caller's shell (or the Makefile) exported is dropped.
_OWNED_PREFIXES = ("DJANGO_", "ALIYUN_", "GUNICORN_", "THROTTLE_", "SANDBOX_", "JWT_")
_OWNED_NAMES = {"DATABASE_URL", "REDIS_URL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_environment(
    *,
    database: str,
    redis_db: int,
    sts_port: int,
    oss_port: int,
    data_dir: Path,
    redis_port: int = REDIS_PORT,
) -> dict[str, str]:
    """Production settings (DEBUG off) pointed at loopback services. Fresh random keys per run."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_OWNED_PREFIXES) and name not in _OWNED_NAMES
    }
    env.update(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain http on loopback
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
            "REDIS_URL": f"redis://{REDIS_HOST}:{redis_port}/{redis_db}",
            "ALIYUN_ACCESS_KEY_ID": "perf-ram-user",
            "ALIYUN_ACCESS_KEY_SECRET": secrets.token_urlsafe(24),
            "ALIYUN_STS_ROLE_ARN": "acs:ram::1000000000000000:role/perf-uploader",
            "ALIYUN_STS_ENDPOINT": f"127.0.0.1:{sts_port}",
            "ALIYUN_OSS_BUCKET": "perf-bucket",
            "ALIYUN_OSS_REGION": "cn-hangzhou",
            "ALIYUN_OSS_ENDPOINT": f"http://127.0.0.1:{oss_port}",
            "SANDBOX_DATA_DIR": str(data_dir),
            "THROTTLE_STS_TOKEN": "1000000/s",
            "THROTTLE_LOGIN": "1000000/min",
            "GUNICORN_ACCESS_LOG": "",
            "GUNICORN_LOG_LEVEL": "warning",
            "GUNICORN_DRAIN_SECONDS": "0",  # stop at once; the fault check's restart drains on purpose
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# --- services -----------------------------------------------------------------------------------


def _psycopg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_DSN, autocommit=True)


def create_database(name: str) -> None:
    with _psycopg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with _psycopg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(db: int, port: int = REDIS_PORT) -> None:
    import redis

    redis.Redis(host=REDIS_HOST, port=port, db=db).flushdb()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, stdout=subprocess.DEVNULL)


def wait_for_http(
    url: str, *, timeout: float = STARTUP_TIMEOUT, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[1:3]} exited with {process.returncode} while starting")
        try:
            status, _ = request("GET", url, timeout=1)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def background(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child in its own process group, stopped with SIGTERM (then SIGKILL) on the way out."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Stack:
    """The running services and the environment they share."""

    env: dict[str, str]
    workdir: Path
    sts_url: str
    database: str
    redis_db: int
    redis_port: int = REDIS_PORT
    servers: dict[str, tuple[str, subprocess.Popen]] = field(default_factory=dict)
    _exits: ExitStack = field(default_factory=ExitStack)

    def start_gunicorn(self, name: str, *, workers: int = 2, **overrides: str) -> str:
        """Another gunicorn on a free port; ``overrides`` are extra environment (settings) for it."""
        port = free_port()
        env = self.env | {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)} | overrides
        return self._serve(name, port, ["--config", "config/gunicorn.conf.py"], env)

    def start_peer(self, name: str, *, workers: int = 2, threads: int = 4, **overrides: str) -> str:
        """tests/perf/peer_app.py (Alibaba's sample STS app server) on gunicorn in the product's shape."""
        port = free_port()
        args = [
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)),
            *("--worker-class", "gthread", "--pythonpath", "tests/perf", "peer_app:application"),
        ]
        return self._serve(name, port, args, self.env | overrides)

    def _serve(self, name: str, port: int, gunicorn_args: list[str], env: dict[str, str]) -> str:
        args = [str(Path(PYTHON).with_name("gunicorn")), *gunicorn_args]
        process = self._exits.enter_context(background(args, env, self.workdir / f"gunicorn-{name}.log"))
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", process=process)
        self.servers[name] = (url, process)
        return url

    def stop_gunicorn(self, name: str) -> None:
        _, process = self.servers.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)

    def sts_stats(self) -> dict[str, float]:
        _, body = request("GET", f"{self.sts_url}/__sandbox__/stats")
        return json.loads(body)

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"gunicorn-{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def stack(
    *,
    database: str,
    redis_db: int,
    sandbox_args: tuple[str, ...] = (),
    keep_database: bool = False,
    redis_port: int = REDIS_PORT,
    sandbox_log_level: str = "WARNING",
) -> Iterator[Stack]:
    """PostgreSQL database (migrated), flushed Redis db, sandbox; gunicorns are started on demand."""
    with ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="ossup-perf-")))
        sts_port, oss_port = free_port(), free_port()
        env = base_environment(
            database=database,
            redis_db=redis_db,
            sts_port=sts_port,
            oss_port=oss_port,
            data_dir=workdir / "oss",
            redis_port=redis_port,
        )
        create_database(database)
        if not keep_database:
            exits.callback(drop_database, database)
        flush_redis(redis_db, redis_port)
        exits.callback(lambda: _quietly(flush_redis, redis_db, redis_port))
        manage(env, "migrate", "--noinput")
        manage(
            env, "collectstatic", "--noinput", "--verbosity", "0"
        )  # DEBUG off: whitenoise's manifest, as `make serve`
        sandbox = exits.enter_context(
            background(
                [PYTHON, "manage.py", "sandbox", *sandbox_args],
                # A development tool; at INFO it logs each AssumeRole (session name, time) for the fault check.
                {
                    **env,
                    "DJANGO_SETTINGS_MODULE": "config.settings.development",
                    "DJANGO_LOG_LEVEL": sandbox_log_level,
                },
                workdir / "sandbox.log",
            )
        )
        sts_url = f"http://127.0.0.1:{sts_port}"
        wait_for_http(f"{sts_url}/__sandbox__/stats", process=sandbox)
        running = Stack(
            env=env,
            workdir=workdir,
            sts_url=sts_url,
            database=database,
            redis_db=redis_db,
            redis_port=redis_port,
        )
        with running._exits:
            yield running


def _quietly(function: Callable[..., Any], *args: Any) -> None:
    """Clean-up that may find its service gone (a Redis the fault check stopped)."""
    try:
        function(*args)
    except Exception as exc:
        print(f"clean-up skipped: {type(exc).__name__}", file=sys.stderr)


def setup_django(env: dict[str, str]) -> None:
    """Use the stack's settings in this process too (users, tokens, audit counts)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def create_users(prefix: str, count: int) -> list[tuple[int, str, str]]:
    """``count`` users and a JWT access token for each: (id, username, token). One password hash."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    user_model = get_user_model()
    password = make_password("perf-password")
    users = user_model.objects.bulk_create(
        user_model(username=f"{prefix}{n:03d}", password=password) for n in range(count)
    )
    return [(user.pk, user.username, str(AccessToken.for_user(user))) for user in users]


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


# --- client -------------------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    """One request on a new connection (gunicorn's sync workers close every connection anyway)."""
    assert url.startswith("http://127.0.0.1:"), "loopback only"
    host_port, _, path = url[len("http://") :].partition("/")
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, "/" + path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Sample:
    status: int  # 0: no answer (connection error or timeout)
    seconds: float
    body: bytes = b""


@dataclass
class Result:
    name: str
    clients: int
    elapsed: float
    samples: list[Sample]
    server_cpu_ms: float | None = None  # the server's CPU per request, when the caller measured it

    @property
    def count(self) -> int:
        return len(self.samples)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """Milliseconds, nearest-rank."""
        times = sorted(sample.seconds for sample in self.samples)
        if not times:
            return float("nan")
        index = min(len(times) - 1, max(0, round(q / 100 * len(times) + 0.5) - 1))
        return times[index] * 1000

    @property
    def median(self) -> float:
        return statistics.median(sample.seconds for sample in self.samples) * 1000

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.samples:
            counts[sample.status] = counts.get(sample.status, 0) + 1
        return dict(sorted(counts.items()))


def run_clients(
    name: str,
    calls: list[Callable[[], tuple[int, bytes]]],
    *,
    duration: float | None = None,
    per_client: int | None = None,
    keep_bodies: bool = False,
) -> Result:
    """One thread per entry of ``calls``, each calling it in a loop for ``duration`` seconds or
    ``per_client`` times, all released at once."""
    samples: list[list[Sample]] = [[] for _ in calls]
    start = threading.Barrier(len(calls) + 1)
    stop_at: list[float] = [0.0]

    def client(index: int) -> None:
        call, own = calls[index], samples[index]
        start.wait()
        while True:
            if per_client is not None and len(own) >= per_client:
                return
            if duration is not None and time.perf_counter() >= stop_at[0]:
                return
            began = time.perf_counter()
            try:
                status, body = call()
            except OSError as exc:
                status, body = 0, type(exc).__name__.encode()
            own.append(
                Sample(status, time.perf_counter() - began, body if keep_bodies or status >= 500 else b"")
            )

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + (duration or 0)
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Result(name, len(calls), elapsed, [sample for own in samples for sample in own])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# --- processes ----------------------------------------------------------------------------------


def worker_pids(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the resident set's high-water mark over the process's life."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])
