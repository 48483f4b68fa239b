#!/usr/bin/env python
"""`make loadcheck`: many clients against gunicorn while the STS misbehaves; exit 1 on a defect.

50 concurrent clients (two per user, so requests of one user race for the same credentials) for
30 s against gunicorn (2 workers x 4 threads) on PostgreSQL + Redis, with the sandbox STS throttling
every 7th and failing every 11th AssumeRole call. Credentials live 900 s and are refreshed once
less than 895 s is left, so every user's credentials are due for a new AssumeRole call every 5 s
(STS is called all the time, as with reuse off, but the production code path runs); a per-user
issuance throttle (2/s) is low enough to be hit. Before the clock starts every user gets
credentials once: the steady state, where users already hold some (a user with none has nothing
to fall back on while STS fails, and gets a documented 503; the warm-up retries that and reports it).

Passes when:

* no 5xx and no unanswered request: the SDK's retries and the stale-if-error fallback (a user's
  still-valid credentials when a refresh fails) absorb the STS faults;
* the audit log lost nothing: every answered issuance request is counted in TokenIssuance (one
  row each; throttled refusals of a user within one window share a row and count in ``attempts``)
  (200 issued/reused, 429 refused, 502/503 failed), the warm-up's included, and the outcomes
  match the statuses.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import harness
from harness import Result, bearer, request, run_clients, table

# A user with no credentials yet while STS fails: the documented 503s the warm-up waits out.
STS_FAULT_CODES = {"sts_throttled", "sts_unavailable"}
WARM_UP_ATTEMPTS = 10
AUDITED_STATUSES = {200, 429, 502, 503}
OUTCOME_OF_STATUS = {200: {"issued", "reused"}, 429: {"refused"}, 502: {"failed"}, 503: {"failed"}}


def _client(url: str, token: str, seed: int):
    """Mostly issuance requests, some profile reads; each answer is tagged with its endpoint."""
    rng = random.Random(seed)
    headers = bearer(token)

    def call() -> tuple[int, bytes]:
        if rng.random() < 0.15:
            status, body = request("GET", f"{url}/api/me/", headers=headers, timeout=90)
            return status, b"me " + body
        status, body = request(
            "POST", f"{url}/api/uploads/sts-token/", headers=headers, body=b"{}", timeout=90
        )
        return status, b"sts " + body

    return call


def _code(body: bytes) -> str:
    try:
        return json.loads(body.split(b" ", 1)[1]).get("code", "")
    except (ValueError, IndexError, AttributeError):
        return "<not the API's JSON>"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (30; CI uses less)")
    parser.add_argument("--throttle-every", type=int, default=7)
    parser.add_argument("--fail-every", type=int, default=11)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--issuance-rate", default="2/s", help="THROTTLE_STS_TOKEN per user (2/s)")
    parser.add_argument("--database", default="ossup_loadcheck", help="PostgreSQL database to create")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database number (14)")
    args = parser.parse_args()

    started = time.perf_counter()
    with harness.stack(
        database=args.database,
        redis_db=args.redis_db,
        sandbox_args=(
            "--latency-ms",
            str(args.latency_ms),
            "--throttle-every",
            str(args.throttle_every),
            "--fail-every",
            str(args.fail_every),
        ),
    ) as stack:
        harness.setup_django(stack.env)
        try:
            users = harness.create_users("load-", max(1, args.clients // 2))
            url = stack.start_gunicorn(
                "loadcheck",
                ALIYUN_STS_DURATION_SECONDS="900",
                ALIYUN_STS_REUSE_MARGIN_SECONDS="895",  # refresh once 5 s old
                THROTTLE_STS_TOKEN=args.issuance_rate,
            )
            warm_up = _warm_up(url, [token for _, _, token in users])
            calls = [_client(url, users[i % len(users)][2], seed=i) for i in range(args.clients)]
            stats_before = stack.sts_stats()
            result: Result = run_clients("load", calls, duration=args.duration, keep_bodies=True)
            stats_after = stack.sts_stats()

            audit, stale = _outcomes()
        except BaseException:
            print(f"--- gunicorn log ---\n{stack.log_tail('loadcheck', 40)}", file=sys.stderr)
            raise
        finally:
            harness.close_django_connections()
        server_log = stack.log_tail("loadcheck", 40)
    return report(
        args,
        warm_up,
        result,
        audit,
        stale,
        stats_before,
        stats_after,
        server_log,
        time.perf_counter() - started,
    )


def _warm_up(url: str, tokens: list[str]) -> dict[int, int]:
    """One issuance per user, retried (after Retry-After) while STS fails: answers by status."""
    statuses: dict[int, int] = {}
    for token in tokens:
        for _ in range(WARM_UP_ATTEMPTS):
            status, body = request("POST", f"{url}/api/uploads/sts-token/", headers=bearer(token), body=b"{}")
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                break
            if status != 503 or _code(b"sts " + body) not in STS_FAULT_CODES:
                raise SystemExit(f"warm-up: sts-token answered {status} {body[:200]!r}")
            time.sleep(1)
        else:
            raise SystemExit(f"warm-up: no credentials after {WARM_UP_ATTEMPTS} attempts")
    return statuses


def _outcomes() -> tuple[dict[str, int], int]:
    """Audit rows by outcome, and how many ``reused`` rows carry an error code (stale-if-error)."""
    from django.db.models import Sum

    from uploads.models import TokenIssuance

    # Requests, not rows: throttled refusals within one window share a row and count in attempts.
    outcomes = {
        row["outcome"]: row["n"]
        for row in TokenIssuance.objects.values("outcome").annotate(n=Sum("attempts"))
    }
    stale = TokenIssuance.objects.filter(outcome=TokenIssuance.Outcome.REUSED).exclude(error_code="")
    return outcomes, stale.count()


def report(
    args: argparse.Namespace,
    warm_up: dict[int, int],
    result: Result,
    audit: dict[str, int],
    stale: int,
    stats_before: dict[str, float],
    stats_after: dict[str, float],
    server_log: str,
    seconds: float,
) -> int:
    by_endpoint: dict[tuple[str, int], int] = {}
    failures: list[str] = []
    for sample in result.samples:
        endpoint = sample.body.split(b" ", 1)[0].decode() if sample.status else "?"
        by_endpoint[(endpoint, sample.status)] = by_endpoint.get((endpoint, sample.status), 0) + 1
        if sample.status == 0:
            failures.append(f"no answer: {sample.body.decode()}")
        elif sample.status >= 500:
            failures.append(f"{endpoint} answered {sample.status} ({_code(sample.body)})")
        elif endpoint == "me" and sample.status != 200:
            failures.append(f"me answered {sample.status}")
        elif endpoint == "sts" and sample.status not in AUDITED_STATUSES:
            failures.append(f"sts-token answered {sample.status} ({_code(sample.body)})")

    answered = {
        status: by_endpoint.get(("sts", status), 0) + warm_up.get(status, 0)
        for status in sorted(AUDITED_STATUSES)
    }
    expected_rows = sum(answered.values())
    audit_rows = sum(audit.values())
    for status, outcomes in OUTCOME_OF_STATUS.items():
        if status in (502, 503):
            continue
        rows = sum(audit.get(outcome, 0) for outcome in outcomes)
        if rows != answered[status]:
            failures.append(f"{answered[status]} answers {status} but {rows} audit rows {sorted(outcomes)}")
    failed_rows, failed_answers = audit.get("failed", 0), answered[502] + answered[503]
    if failed_rows != failed_answers:
        failures.append(f"{failed_answers} answers 502/503 but {failed_rows} audit rows 'failed'")
    if audit_rows != expected_rows:
        failures.append(f"audit rows {audit_rows} != issuance requests answered {expected_rows}")

    sts = {
        key: int(stats_after[key] - stats_before[key])
        for key in ("received", "issued", "throttled", "failed")
    }
    print()
    print(
        f"Load check: {args.clients} clients for {args.duration:.0f} s, gunicorn 2 workers + PostgreSQL + Redis, "
        f"STS latency {args.latency_ms:.0f} ms, throttle every {args.throttle_every}, fail every {args.fail_every}, "
        f"credentials refreshed every 5 s, issuance limit {args.issuance_rate} per user"
    )
    print(f"warm-up (one issuance per user, retried while STS fails): answers {warm_up}")
    print(
        table(
            ["endpoint", "status", "answers"],
            [[endpoint, status or "none", n] for (endpoint, status), n in sorted(by_endpoint.items())],
        )
    )
    print(
        f"\nrequests {result.count} in {result.elapsed:.1f} s ({result.rate:.0f}/s), "
        f"p50 {result.percentile(50):.0f} ms, p99 {result.percentile(99):.0f} ms"
    )
    print(
        f"STS calls: {sts['received']} received, {sts['issued']} issued, {sts['throttled']} throttled, "
        f"{sts['failed']} failed (injected); the server retried them within the STS budget, and "
        f"{stale} request(s) got the user's still-valid credentials "
        "while STS was failing (stale-if-error)"
    )
    print(f"audit rows: {audit_rows} ({audit}); issuance requests answered: {expected_rows}")
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for failure in sorted(set(failures))[:20]:
            print(f"  - {failure} (x{failures.count(failure)})")
        print(f"--- gunicorn log (tail) ---\n{server_log}")
        return 1
    print(f"\nPASSED: 0 x 5xx, 0 unanswered, 0 audit rows lost ({seconds:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
