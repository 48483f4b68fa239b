"""SIGTERM drains: /readyz turns 503 at once while requests are still served, then gunicorn stops."""

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("target", ["master", "process group"])
def test_sigterm_turns_readyz_503_first_then_stops_after_the_grace_period(tmp_path, target):
    with live_server(tmp_path, "sqlite", GUNICORN_DRAIN_SECONDS="3") as server:
        assert status(server.url + "/readyz") == 200
        terminated = time.monotonic()
        if target == "master":
            server.process.send_signal(signal.SIGTERM)
        else:
            _signal_group(server)
        time.sleep(0.3)
        assert status(server.url + "/readyz") == 503
        assert status(server.url + "/healthz") == 200  # still serving while the balancer notices
        server.process.wait(timeout=30)
        stopped = time.monotonic() - terminated
        print(f"SIGTERM to the {target}: readyz 503 within 0.3 s, stopped after {stopped:.1f} s")
        assert 2.5 < stopped < 15


def _signal_group(server) -> None:
    """SIGTERM to the master and to each worker, as a signal to the process group delivers it."""
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in [master, *map(int, children)]:
        os.kill(pid, signal.SIGTERM)
