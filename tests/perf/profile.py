#!/usr/bin/env python
"""`make profile`: where the gunicorn workers spend their CPU under the bench's load (py-spy).

Starts the bench's stack (harness.py), loads one scenario with ``--clients`` clients for
``--duration`` seconds while ``py-spy record`` samples every worker (all threads, CPU only), then
prints the frames with the most samples: own (self) time, and inclusive time of the project's own
functions and of the libraries it calls. ``--flame DIR`` also writes a flame graph per worker.
py-spy needs ptrace rights over the workers (root, or CAP_SYS_PTRACE).

Scenarios: ``reused`` (sts-token from the shared cache), ``fresh`` (reuse off: an AssumeRole
call every time), ``refresh`` (reuse on, credentials refreshed every 5 s: the lock and cache steps
around AssumeRole), ``me`` (GET /api/me/) and ``peer`` (tests/perf/peer_app.py).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

import harness
from bench import STS_LATENCY_MS, TOKEN_DURATION, _me, _peer, _sts_token
from harness import run_clients, table, worker_pids

PY_SPY = str(Path(harness.PYTHON).with_name("py-spy"))
SCENARIOS = {
    "reused": ({}, _sts_token),
    "fresh": ({"ALIYUN_STS_REUSE_MARGIN_SECONDS": str(TOKEN_DURATION)}, _sts_token),
    "refresh": ({"ALIYUN_STS_DURATION_SECONDS": "900", "ALIYUN_STS_REUSE_MARGIN_SECONDS": "895"}, _sts_token),
    "me": ({}, _me),
    "peer": (None, _peer),
}


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``module.py:function``, shortened to the package."""
    function, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/python3.11/", str(harness.BASE_DIR) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{function}"


def summarize(collapsed: list[Path], top: int) -> tuple[int, list[list[str]], list[list[str]]]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for path in collapsed:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            total += samples
            frames = [_frame_name(frame) for frame in stack.split(";")[1:]]  # drop the thread name
            if frames:
                own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples

    def rows(counter: collections.Counter[str]) -> list[list[str]]:
        return [[name, f"{100 * n / total:.1f}"] for name, n in counter.most_common(top)]

    return total, rows(own), rows(inclusive)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--flame", type=Path, help="also write an SVG flame graph per worker here")
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every running thread, not only the one holding the GIL (py-spy --gil, the default,"
        " leaves out threads waiting for I/O or for the GIL, so the samples add up to the workers' CPU)",
    )
    args = parser.parse_args()

    overrides, call = SCENARIOS[args.scenario]
    with harness.stack(
        database="ossup_profile", redis_db=args.redis_db, sandbox_args=("--latency-ms", str(STS_LATENCY_MS))
    ) as stack:
        harness.setup_django(stack.env)
        try:
            users = harness.create_users("profile-", args.clients)
        finally:
            harness.close_django_connections()
        tokens = [token for _, _, token in users]
        if overrides is None:
            url = stack.start_peer("profiled", PEER_USER_ID=str(users[0][0]))
        else:
            url = stack.start_gunicorn("profiled", **overrides)
        run_clients("warm-up", [call(url, token) for token in tokens], per_client=20)
        workers = worker_pids(stack.servers["profiled"][1].pid)
        common = ["--rate", str(args.rate), "--duration", str(int(args.duration))]
        common += [] if args.all_threads else ["--gil"]
        outputs, spies = [], []
        for pid in workers:
            outputs.append(stack.workdir / f"profile-{pid}.txt")
            records = [["--format", "raw", "--output", str(outputs[-1])]]
            if args.flame:
                args.flame.mkdir(parents=True, exist_ok=True)
                records.append(["--output", str(args.flame / f"{args.scenario}-{pid}.svg")])
            spies += [
                subprocess.Popen(
                    [PY_SPY, "record", "--pid", str(pid), *common, *record],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for record in records
            ]
        result = run_clients(args.scenario, [call(url, token) for token in tokens], duration=args.duration)
        for spy in spies:
            spy.wait(timeout=60)
        total, own, inclusive = summarize(outputs, args.top)

    print(
        f"\n{args.scenario}: {result.count} requests, {result.rate:.0f}/s, p50 {result.percentile(50):.1f} ms, "
        f"statuses {result.statuses()}; {total} CPU samples at {args.rate}/s over {len(workers)} workers"
    )
    print(table(["own time (% of CPU samples)", "%"], own))
    print()
    print(table(["inclusive time", "%"], inclusive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
