#!/usr/bin/env python
"""`make loadcheck`: many clients against gunicorn while the STS misbehaves; exit 1 on a defect.

50 concurrent clients (two per user, so requests of one user race for the same credentials) for
30 s against gunicorn (2 workers x 4 threads) on PostgreSQL + Redis, with the sandbox STS throttling
every 7th and failing every 11th AssumeRole call, token reuse disabled so every issuance really
calls STS, and a per-user issuance throttle low enough to be hit. Passes when:

* no request crashed: no 500 and no other 5xx than the API's documented answers to STS faults
  (503 ``sts_throttled``/``sts_unavailable``/``audit_unavailable``, 502 ``sts_rejected``), which are
  counted and reported separately; no request went unanswered;
* the audit log lost nothing: exactly one TokenIssuance row per answered issuance request
  (200 issued, 429 refused, 502/503 failed), and the outcomes match the statuses.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import harness
from harness import Result, bearer, request, run_clients, table

DOCUMENTED_STS_ERRORS = {
    503: {"sts_throttled", "sts_unavailable", "audit_unavailable"},
    502: {"sts_rejected"},
}
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
    parser.add_argument("--issuance-rate", default="6/min", help="THROTTLE_STS_TOKEN per user (6/min)")
    args = parser.parse_args()

    started = time.perf_counter()
    with harness.stack(
        database="ossup_loadcheck",
        redis_db=14,
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
                ALIYUN_STS_REUSE_MARGIN_SECONDS="3600",  # = the token lifetime: nothing is reused
                THROTTLE_STS_TOKEN=args.issuance_rate,
            )
            calls = [_client(url, users[i % len(users)][2], seed=i) for i in range(args.clients)]
            stats_before = stack.sts_stats()
            result: Result = run_clients("load", calls, duration=args.duration, keep_bodies=True)
            stats_after = stack.sts_stats()

            audit = _outcomes()
        except BaseException:
            print(f"--- gunicorn log ---\n{stack.log_tail('loadcheck', 40)}", file=sys.stderr)
            raise
        finally:
            harness.close_django_connections()
        server_log = stack.log_tail("loadcheck", 40)
    return report(args, result, audit, stats_before, stats_after, server_log, time.perf_counter() - started)


def _outcomes() -> dict[str, int]:
    from django.db.models import Count

    from uploads.models import TokenIssuance

    return {
        row["outcome"]: row["n"] for row in TokenIssuance.objects.values("outcome").annotate(n=Count("id"))
    }


def report(
    args: argparse.Namespace,
    result: Result,
    audit: dict[str, int],
    stats_before: dict[str, float],
    stats_after: dict[str, float],
    server_log: str,
    seconds: float,
) -> int:
    by_endpoint: dict[tuple[str, int], int] = {}
    fault_codes: dict[str, int] = {}
    failures: list[str] = []
    for sample in result.samples:
        endpoint = sample.body.split(b" ", 1)[0].decode() if sample.status else "?"
        by_endpoint[(endpoint, sample.status)] = by_endpoint.get((endpoint, sample.status), 0) + 1
        if sample.status == 0:
            failures.append(f"no answer: {sample.body.decode()}")
        elif sample.status >= 500:
            code = _code(sample.body)
            if code in DOCUMENTED_STS_ERRORS.get(sample.status, set()):
                fault_codes[f"{sample.status} {code}"] = fault_codes.get(f"{sample.status} {code}", 0) + 1
            else:
                failures.append(f"{endpoint} answered {sample.status} ({code})")
        elif endpoint == "me" and sample.status != 200:
            failures.append(f"me answered {sample.status}")
        elif endpoint == "sts" and sample.status not in AUDITED_STATUSES:
            failures.append(f"sts-token answered {sample.status} ({_code(sample.body)})")

    answered = {status: by_endpoint.get(("sts", status), 0) for status in sorted(AUDITED_STATUSES)}
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
        f"reuse off, issuance limit {args.issuance_rate} per user"
    )
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
        f"{sts['failed']} failed (injected); the SDK retried most of them"
    )
    print(f"documented 5xx answers to STS faults: {fault_codes or 'none'}")
    print(f"audit rows: {audit_rows} ({audit}); issuance requests answered: {expected_rows}")
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for failure in sorted(set(failures))[:20]:
            print(f"  - {failure} (x{failures.count(failure)})")
        print(f"--- gunicorn log (tail) ---\n{server_log}")
        return 1
    print(
        f"\nPASSED: 0 crashes (5xx other than documented STS faults), 0 audit rows lost ({seconds:.0f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
