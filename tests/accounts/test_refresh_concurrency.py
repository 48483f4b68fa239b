"""Atomic refresh rotation: of N concurrent refreshes of one token exactly one succeeds, so a
stolen refresh token replayed alongside its owner's does not fork into two valid families.

Against gunicorn (threaded workers, two processes) on a real database: SQLite always, PostgreSQL
too when the suite runs on it (DATABASE_URL)."""

import os
import threading

import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow

DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("DATABASE_URL", "").startswith("postgres") else [])
CONCURRENT = 8
ROUNDS = 3


@pytest.mark.parametrize("database", DATABASES)
def test_of_concurrent_refreshes_of_one_token_exactly_one_succeeds(tmp_path, database):
    with live_server(tmp_path, database) as server:
        server.manage(
            "shell",
            "-c",
            "from accounts.models import User; User.objects.create_user('racer', password='racer-password-1')",
        )
        status, tokens = server.post_json(
            "/api/auth/token/", {"username": "racer", "password": "racer-password-1"}
        )
        assert status == 200, tokens
        token = tokens["refresh"]
        for _ in range(ROUNDS):
            barrier = threading.Barrier(CONCURRENT)
            results: list[tuple[int, dict]] = []

            def refresh(
                token: str = token, barrier: threading.Barrier = barrier, results: list = results
            ) -> None:
                barrier.wait()
                results.append(server.post_json("/api/auth/token/refresh/", {"refresh": token}))

            threads = [threading.Thread(target=refresh) for _ in range(CONCURRENT)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)

            statuses = sorted(status for status, _body in results)
            print(f"{database}: {CONCURRENT} concurrent refreshes of one token -> {statuses}")
            assert statuses == [200] + [401] * (CONCURRENT - 1), (results, server.log.read_text()[-3000:])
            assert {body["code"] for status, body in results if status == 401} == {"token_not_valid"}
            token = next(body["refresh"] for status, body in results if status == 200)
            # The winner's new token works (and is the next round's token).
            status, body = server.post_json("/api/auth/token/refresh/", {"refresh": token})
            assert status == 200, body
            token = body["refresh"]
