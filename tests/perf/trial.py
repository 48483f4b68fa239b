"""`make trial`: the production path on this machine, against the local sandbox, until Ctrl-C.

gunicorn (config/gunicorn.conf.py) with DEBUG off, on a PostgreSQL database of its own
(`ossup_trial` at 127.0.0.1:5432) and a Redis database number of its own (12, at 127.0.0.1:6379);
the sandbox (`manage.py sandbox`, a development tool: config.settings.development) stands in for
STS and OSS. Keys are generated for this run (Django's, the JWT signing key, and the RAM user's
AccessKey pair, which the sandbox accepts because it reads the same ALIYUN_* settings), so the
production checks that refuse the sandbox's published pair (uploads.E031) pass honestly.

The settings are production's as they stand behind a TLS-terminating proxy: HTTPS redirect, secure
cookies and HSTS on, and DJANGO_SECURE_PROXY_SSL_HEADER=1. So `make check-deploy` is clean for this
environment (the trial runs it first and stops if not) without silencing any check. Send
`X-Forwarded-Proto: https` as that proxy would; the probes (/healthz, /readyz) answer plain http.

Prerequisites: PostgreSQL (trust auth for user postgres) and Redis on loopback, as for `make bench`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # tests/perf/harness.py: the services and the process handling

TRIAL_USER = "trial"


def trial_environment(
    *, database: str, redis_db: int, port: int, sts_port: int, oss_port: int, data_dir: Path
):
    """Production settings behind a TLS proxy, fresh keys, loopback services; the caller's
    DJANGO_*/ALIYUN_*/... variables are dropped (harness.base_environment)."""
    env = harness.base_environment(
        database=database, redis_db=redis_db, sts_port=sts_port, oss_port=oss_port, data_dir=data_dir
    )
    for benchmark_only in (
        "THROTTLE_STS_TOKEN",
        "THROTTLE_LOGIN",
        "GUNICORN_ACCESS_LOG",
        "GUNICORN_LOG_LEVEL",
    ):
        env.pop(benchmark_only)  # the product's defaults, not the benchmark's
    env.update(
        {
            "DJANGO_SECURE_SSL_REDIRECT": "1",
            "DJANGO_SECURE_PROXY_SSL_HEADER": "1",
            "DJANGO_LOG_LEVEL": "INFO",
            "ALIYUN_ACCESS_KEY_ID": f"trial-{secrets.token_hex(8)}",
            "ALIYUN_STS_ROLE_ARN": "acs:ram::1000000000000000:role/trial-uploader",
            "ALIYUN_OSS_BUCKET": "trial-bucket",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
        }
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8100, help="gunicorn's port on 127.0.0.1 (8100)")
    parser.add_argument(
        "--database", default="ossup_trial", help="PostgreSQL database, created afresh (ossup_trial)"
    )
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database number, flushed (12)")
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the database on the way out"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    with ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="ossup-trial-")))
        sts_port, oss_port = harness.free_port(), harness.free_port()
        env = trial_environment(
            database=args.database,
            redis_db=args.redis_db,
            port=args.port,
            sts_port=sts_port,
            oss_port=oss_port,
            data_dir=workdir / "sandbox",
        )
        harness.create_database(args.database)
        if not args.keep_database:
            exits.callback(harness.drop_database, args.database)
        harness.flush_redis(args.redis_db)
        exits.callback(harness.flush_redis, args.redis_db)

        harness.manage(env, "migrate", "--noinput")
        # After migrate: the deploy checks read the database too (no active demo users).
        print(f"trial: make check-deploy (PostgreSQL {args.database}, Redis db {args.redis_db})", flush=True)
        checked = subprocess.run(
            ["make", "--no-print-directory", "check-deploy"], cwd=harness.BASE_DIR, env=env
        )
        if checked.returncode != 0:
            print(
                "trial: make check-deploy is not clean for the trial's environment: stopped.", file=sys.stderr
            )
            return 1
        harness.manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        password = secrets.token_urlsafe(12)
        harness.manage(
            env | {"DJANGO_SUPERUSER_PASSWORD": password},
            *("createsuperuser", "--noinput", "--username", TRIAL_USER, "--email", "trial@example.com"),
        )

        sandbox = exits.enter_context(
            harness.background(
                [harness.PYTHON, "manage.py", "sandbox"],
                env | {"DJANGO_SETTINGS_MODULE": "config.settings.development"},  # a development tool
                workdir / "sandbox.log",
            )
        )
        harness.wait_for_http(f"http://127.0.0.1:{sts_port}/__sandbox__/stats", process=sandbox)
        gunicorn = exits.enter_context(
            harness.background(
                [str(Path(harness.PYTHON).with_name("gunicorn")), "--config", "config/gunicorn.conf.py"],
                env,
                workdir / "gunicorn.log",
            )
        )
        url = f"http://127.0.0.1:{args.port}"
        harness.wait_for_http(f"{url}/healthz", process=gunicorn)
        print(
            f"trial: ready at {url} (gunicorn, DEBUG off, as behind a TLS proxy: send X-Forwarded-Proto: https)\n"
            f"trial: sign in as {TRIAL_USER} / {password} (a superuser of this run's database only)\n"
            f"trial: curl {url}/readyz\n"
            f"trial: curl -H 'X-Forwarded-Proto: https' -H 'Content-Type: application/json' "
            f'-d \'{{"username": "{TRIAL_USER}", "password": "{password}"}}\' {url}/api/auth/token/\n'
            f"trial: logs in {workdir}; Ctrl-C stops everything"
            + ("" if args.keep_database else f" and drops {args.database}"),
            flush=True,
        )
        while not stop.wait(0.5):
            for name, process in (("gunicorn", gunicorn), ("sandbox", sandbox)):
                if process.poll() is not None:
                    print(f"trial: {name} exited with {process.returncode}", file=sys.stderr)
                    return 1
        print("trial: stopping", flush=True)
    return 0


if __name__ == "__main__":
    os.chdir(harness.BASE_DIR)
    sys.exit(main())
