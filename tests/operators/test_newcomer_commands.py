"""The docs' operator commands for the local sandbox (docs/operating/aliyun.md), pasted as a newcomer would: a fresh shell (no
DJANGO_*/ALIYUN_* variables, no activated venv), `make`, and the lines of the page's block as written.

Only the ports move (the page says how), so that the test runs beside a `make run` of one's own.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "operating" / "aliyun.md"
MARKER = "<!-- tests/operators/test_newcomer_commands.py runs this block as written, in a fresh shell. -->"

pytestmark = pytest.mark.slow


def documented_commands() -> list[str]:
    """The command lines of the page's sh block after MARKER, without their comments."""
    block = PAGE.read_text().split(MARKER, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def newcomer_shell(tmp_path):
    """A fresh shell's environment (PATH, HOME, locale) plus the ports the page says may move, and a
    `make sandbox` running with them, as `make run` would run it."""
    sts, oss, web = free_port(), free_port(), free_port()
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TERM") if name in os.environ}
    env |= {
        "PORT": str(web),
        "ALIYUN_STS_ENDPOINT": f"127.0.0.1:{sts}",
        "ALIYUN_OSS_ENDPOINT": f"http://127.0.0.1:{oss}",
        "SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),  # a sandbox of its own, not var/sandbox
    }
    sandbox = subprocess.Popen(
        ["make", "--no-print-directory", "sandbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{oss}/", timeout=1)
                break
            except requests.ConnectionError:
                assert sandbox.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.2)
        yield env
    finally:
        os.killpg(sandbox.pid, signal.SIGTERM)  # as Ctrl-C in the terminal of `make sandbox`
        try:
            sandbox.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(sandbox.pid, signal.SIGKILL)
            sandbox.wait()


def test_the_docs_sandbox_operator_commands_work_as_written(newcomer_shell):
    env = newcomer_shell
    commands = documented_commands()
    assert commands == [
        "make aliyun-setup",
        'make aliyun-setup ARGS="--apply --yes"',
        "make doctor",
    ]
    outputs = []
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout + done.stderr)
        # The report only: no SDK log line (oss2's "INFO oss2.api [-] Exception: …", "Start to …").
        assert not re.search(r"\b(INFO|DEBUG)\b|oss2\.|NoSuchCORSConfiguration", done.stderr + done.stdout), (
            command
        )

    port = env["PORT"]
    assert "Applied" in outputs[1]
    assert "✗" not in outputs[2] and re.search(r"\n(\d+) of \1 checks passed\.", outputs[2])
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        assert f"✓ CORS: a browser at {origin} may upload and read ETag" in outputs[2]
        preflight = requests.options(
            f"{env['ALIYUN_OSS_ENDPOINT']}/demo-avatars/user/1/a.png",
            headers={"Origin": origin, "Access-Control-Request-Method": "PUT"},
            timeout=5,
        )
        assert preflight.status_code == 200, origin  # applying did not lock the demo's origins out

    # An app origin added later: the doctor finds it missing, applying again adds it and keeps the others.
    with_app = env | {"ALIYUN_OSS_APP_ORIGINS": "capacitor://localhost"}
    doctor = subprocess.run(["make", "doctor"], cwd=ROOT, env=with_app, capture_output=True, text=True)
    assert doctor.returncode != 0 and "✗ CORS: a browser at capacitor://localhost" in doctor.stdout
    subprocess.run(
        ["make", "aliyun-setup", "ARGS=--apply --yes"],
        cwd=ROOT,
        env=with_app,
        check=True,
        capture_output=True,
    )
    doctor = subprocess.run(["make", "doctor"], cwd=ROOT, env=with_app, capture_output=True, text=True)
    assert doctor.returncode == 0 and "✗" not in doctor.stdout, doctor.stdout


def test_a_bare_manage_py_names_everything_missing_at_once(tmp_path):
    """Without make or .env (DEBUG off): one message naming every missing variable, no traceback."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "aliyun_setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    for name in ("DJANGO_SECRET_KEY", "ALIYUN_STS_ROLE_ARN", "ALIYUN_OSS_BUCKET", "DJANGO_DEBUG=1"):
        assert name in done.stderr
