"""The documentation's commands, run as written: the pages' marked blocks against `make run` on free ports,
and the commands that serve until stopped (each started, seen answering, stopped).

`make run` gets its ports from the variables the Makefile and the docs name (PORT, ALIYUN_STS_ENDPOINT,
ALIYUN_OSS_ENDPOINT), so nothing here collides with a `make run` on the default ports. A marked block runs
in bash (`set -eo pipefail`) with the environment `make run` itself exports (read from the Makefile) and the
venv first on PATH, in a folder of its own that holds `.venv` and `manage.py` (links to the project's) and
`me.png`.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import free_port, production_environment
from tests.pngs import png_bytes

from .commands import ELSEWHERE, ROOT, blocks, doc_files, english

pytestmark = pytest.mark.slow

PYTHON = ROOT / ".venv" / "bin" / "python"
# What each page's run must print, beside exiting 0.
EXPECTED_OUTPUT = {
    "README.md": "refused: 403",
    "getting-started.md": "refused: 403",
    "api.md": "\n204\n",
}


def makefile_environment(port: int) -> dict[str, str]:
    """The variables the Makefile exports for `make run` (its `export NAME ?= value` lines)."""
    values = {"HOST": "127.0.0.1", "PORT": str(port)}
    for name, value in re.findall(r"^export (\w+) \?= (.*)$", (ROOT / "Makefile").read_text(), re.M):
        values[name] = re.sub(r"\$\((\w+)\)", lambda match: values[match.group(1)], value.strip())
    return values


def development_environment(tmp_path: Path) -> dict[str, str]:
    """`make run`'s environment on free ports, a database and sandbox data of its own, the venv on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "ALIYUN_", "SANDBOX_", "DATABASE_", "REDIS_", "MAKE", "MFLAGS"))
    }
    port = free_port()
    env.update(makefile_environment(port))
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ALIYUN_STS_ENDPOINT": f"127.0.0.1:{free_port()}",
            "ALIYUN_OSS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'docs.sqlite3'}",
            "SANDBOX_DATA_DIR": str(tmp_path / "sandbox"),
            "DOCS_PORT": str(free_port()),
            "STS_TLS_PORT": str(free_port()),
            "PATH": f"{PYTHON.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(ready, process: subprocess.Popen, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"not ready (exit {process.poll()}):\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    """Stop what we started: its process group, then anything still left in its session (make's children
    run in process groups of their own)."""
    session = process.pid
    try:
        os.killpg(session, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for pid in [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]:
        try:
            if os.getsid(pid) == session:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait(timeout=10)


@pytest.fixture
def make_run(tmp_path) -> Iterator[dict[str, str]]:
    env = development_environment(tmp_path)
    log = tmp_path / "make-run.log"
    process = start("make run", env, log)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{env['PORT']}/healthz") == 200, process, log)
        wait_until(lambda: listening(port_of(env["ALIYUN_OSS_ENDPOINT"])), process, log)
        assert "demo / demo-password" in log.read_text()  # make run prints the demo users
        yield env
    finally:
        stop(process)


def page_script(path: Path, folder: Path) -> str:
    """The page's marked blocks in order: shell as written, python through the venv's interpreter."""
    parts = ["set -eo pipefail"]
    for number, block in enumerate(block for block in blocks(path) if block.run):
        if block.language == "python":
            script = folder / f"block{number}.py"
            script.write_text(block.text)
            parts.append(f"{PYTHON} {script.name}")
        else:
            parts.append(block.text)
    return "\n".join(parts) + "\n"


def test_the_pages_run_as_written(make_run, tmp_path):
    pages = [path for path in filter(english, doc_files()) if any(block.run for block in blocks(path))]
    assert {path.name for path in pages} >= set(EXPECTED_OUTPUT)
    for path in pages:
        folder = tmp_path / path.relative_to(ROOT).as_posix().replace("/", "-")
        folder.mkdir()
        (folder / ".venv").symlink_to(ROOT / ".venv")
        (folder / "manage.py").symlink_to(ROOT / "manage.py")
        (folder / "me.png").write_bytes(png_bytes(32, 32))
        run = subprocess.run(
            ["bash", "-c", page_script(path, folder)],
            cwd=folder,
            env=make_run,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, f"{path.name}:\n{output[-4000:]}"
        assert EXPECTED_OUTPUT.get(path.name, "") in run.stdout, f"{path.name}:\n{output[-4000:]}"

    # The first superuser, as Getting started shows it (without a terminal: the password from the
    # environment, as Django's createsuperuser documents), then signing in with it.
    command = "DJANGO_DEBUG=1 .venv/bin/python manage.py createsuperuser"
    assert command in ELSEWHERE
    env = {**make_run, "DJANGO_SUPERUSER_PASSWORD": "a long docs-test password"}
    created = subprocess.run(
        ["bash", "-c", f"{command} --noinput --username docs-admin --email docs-admin@example.com"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    request = urllib.request.Request(
        f"http://127.0.0.1:{make_run['PORT']}/api/auth/token/",
        data=json.dumps({"username": "docs-admin", "password": "a long docs-test password"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "access" in json.load(response)


def test_long_running_commands_start(tmp_path):
    """Each command shown that serves until stopped: started as written, seen answering, stopped."""
    mine = [
        command
        for command, runner in ELSEWHERE.items()
        if runner.endswith("::test_long_running_commands_start")
    ]
    assert mine
    for number, command in enumerate(mine):
        folder = tmp_path / str(number)
        folder.mkdir()
        env = development_environment(folder)
        if command == "make serve":
            env = production_environment(
                DATABASE_URL=env["DATABASE_URL"], PORT=env["PORT"], PATH=env["PATH"], GUNICORN_ACCESS_LOG=""
            )
            base = f"http://127.0.0.1:{env['PORT']}"

            def ready(base=base):
                return answers(base + "/healthz") == 200 and answers(base + "/readyz") == 200
        elif command == "make run-keyless":

            def ready(env=env):
                return answers(f"http://127.0.0.1:{env['PORT']}/healthz") == 200 and listening(
                    int(env["STS_TLS_PORT"])
                )
        elif command == "make docs-serve":

            def ready(env=env):
                return (
                    answers(f"http://127.0.0.1:{env['DOCS_PORT']}/") == 200
                    and answers(f"http://127.0.0.1:{env['DOCS_PORT']}/zh/") == 200
                )
        else:
            ports = [port_of(env["ALIYUN_STS_ENDPOINT"]), port_of(env["ALIYUN_OSS_ENDPOINT"])]
            ports += [int(port) for port in re.findall(r"--sts-tls-port (\d+)", command)]

            def ready(ports=ports):
                return all(listening(port) for port in ports)

        log = folder / "command.log"
        process = start(command, env, log)
        try:
            wait_until(ready, process, log)
            assert process.poll() is None, f"{command} stopped:\n{log.read_text()[-4000:]}"
        finally:
            stop(process)
