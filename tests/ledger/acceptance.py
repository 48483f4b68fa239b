"""Issue 22's acceptance runs against `make run` on free ports (the sandbox pushing its OSS events to the
web app), for this tree or another one (``--root``: e.g. the commit before the ledger, unpacked).

    .venv/bin/python tests/ledger/acceptance.py appear|sts-abuse|form-reset|confirm-20k [--root DIR]

Prints one line per figure. Not a test (slow, minutes of uploads); docs/ledger.md quotes its output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import oss2
import requests

HERE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(HERE))
from tests.pngs import png_bytes  # noqa: E402

MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """`make run` in ``root`` on free ports, its own SQLite file and sandbox data."""

    def __init__(self, root: Path, **env: str) -> None:
        self.root = root
        self.tmp = Path(tempfile.mkdtemp(prefix="ledger-acceptance-"))
        self.port, sts, oss = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.oss = f"http://127.0.0.1:{oss}"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DJANGO_", "ALIYUN_", "SANDBOX_", "OSS_EVENTS"))
            },
            "DATABASE_URL": f"sqlite:///{self.tmp / 'db.sqlite3'}",
            "SANDBOX_DATA_DIR": str(self.tmp / "sandbox"),
            "ALIYUN_STS_ENDPOINT": f"127.0.0.1:{sts}",
            "ALIYUN_OSS_ENDPOINT": self.oss,
            **env,
        }

    def __enter__(self) -> Stack:
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={self.port}", f"VENV={HERE / '.venv'}"],
            cwd=self.root,
            env=self.env,
            stdout=open(self.tmp / "run.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/accounts/login/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"make run did not start; see {self.tmp / 'run.log'}")
        return self

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)

    def session(self, username: str = "demo", password: str = "demo-password") -> requests.Session:
        api = requests.Session()
        token = api.post(
            f"{self.url}/api/auth/token/", json={"username": username, "password": password}, timeout=10
        )
        token.raise_for_status()
        api.headers["Authorization"] = f"Bearer {token.json()['access']}"
        return api

    def token_bucket(self, api: requests.Session) -> tuple[oss2.Bucket, str, dict]:
        body = api.post(f"{self.url}/api/uploads/sts-token/", timeout=10).json()
        auth = oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])
        return oss2.Bucket(auth, body["endpoint"], body["bucket"]), body["prefix"], body

    def server_bucket(self) -> oss2.Bucket:
        return oss2.Bucket(oss2.Auth("sandbox-ram-user", "sandbox-ram-user-secret"), self.oss, "demo-avatars")

    def stored(self, user_id: int) -> tuple[int, int]:
        bucket = self.server_bucket()
        items = [
            o
            for prefix in (f"user/{user_id}/", f"avatars/{user_id}/")
            for o in oss2.ObjectIterator(bucket, prefix=prefix)
        ]
        return sum(o.size for o in items), len(items)


def storage(stack: Stack, api: requests.Session) -> dict:
    return api.get(f"{stack.url}/api/me/", timeout=10).json()["storage"]


def appear(stack: Stack) -> None:
    api = stack.session()
    bucket, prefix, _ = stack.token_bucket(api)
    started = time.monotonic()
    bucket.put_object(f"{prefix}a.txt", b"a" * 300)
    bucket.put_object(f"{prefix}b.txt", b"b" * 200)
    while True:
        listed = api.get(f"{stack.url}/api/uploads/objects/", timeout=10).json()["results"]
        used = storage(stack, api)
        if len(listed) == 2 and used["usedObjects"] == 2:
            break
        time.sleep(0.05)
    print(
        f"appear: oss2 uploads listed after {time.monotonic() - started:.2f} s: {[i['key'] for i in listed]}; /api/me usedBytes={used['usedBytes']} usedObjects={used['usedObjects']}"
    )
    started = time.monotonic()
    answer = api.delete(f"{stack.url}/api/uploads/objects/", params={"key": f"{prefix}a.txt"}, timeout=10)
    listed = api.get(f"{stack.url}/api/uploads/objects/", timeout=10).json()["results"]
    used = storage(stack, api)
    print(
        f"appear: DELETE {prefix}a.txt -> {answer.status_code}; listed now {[i['key'] for i in listed]}; usedBytes={used['usedBytes']} ({time.monotonic() - started:.2f} s)"
    )
    other = api.delete(f"{stack.url}/api/uploads/objects/", params={"key": "user/999/x.txt"}, timeout=10)
    print(f"appear: DELETE another user's key -> {other.status_code} {other.json()}")


def sts_abuse(stack: Stack, seconds: float = 60.0, size: int = 16 * MIB, threads: int = 4) -> None:
    api = stack.session()
    bucket, prefix, body = stack.token_bucket(api)
    data = b"\0" * size
    stop = time.monotonic() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()
    first_refusal: list[float] = []
    started = time.monotonic()
    asks: list[str] = []

    def writer() -> None:
        while time.monotonic() < stop:
            with lock:
                n = next(counter)
            bucket.put_object(f"{prefix}abuse/{n}.bin", data)

    def asker() -> None:
        while time.monotonic() < stop:
            answer = api.post(f"{stack.url}/api/uploads/sts-token/", timeout=10)
            code = answer.json().get("code", "") if answer.status_code != 200 else "issued"
            asks.append(code)
            if answer.status_code == 403 and not first_refusal:
                first_refusal.append(time.monotonic() - started)
            time.sleep(1)

    with concurrent.futures.ThreadPoolExecutor(threads + 1) as pool:
        futures = [pool.submit(writer) for _ in range(threads)] + [pool.submit(asker)]
        for future in futures:
            future.result()
    time.sleep(3)
    stored, objects = stack.stored(int(prefix.split("/")[1]))
    quota = 100 * MIB
    used = storage(stack, api)
    print(
        f"sts-abuse: {seconds:.0f} s, {threads} threads x {size // MIB} MiB with one token (expires {body['expiration']}): "
        f"stored {stored / MIB:.0f} MiB in {objects} objects, {max(0, stored - quota) / MIB:.0f} MiB beyond the 100 MiB quota "
        f"({stored / MIB / seconds:.1f} MiB/s); sts-token answers: {asks.count('issued')} issued, {asks.count('quota_exceeded')} quota_exceeded, "
        f"first refusal at {first_refusal[0] if first_refusal else float('nan'):.1f} s; /api/me usedBytes {used['usedBytes'] / MIB:.0f} MiB"
    )


def form_reset(stack: Stack, seconds: float = 60.0) -> None:
    """Issue 22's reset: collect forms of 5 MiB until refused, spend one on a small avatar and confirm it
    (which, before the ledger, recounted the folders and zeroed every reservation), ask again; at the
    end send 5 MiB through every form still held."""
    api = stack.session()
    small = png_bytes(4, 4)
    data = small + b"\0" * (5 * MIB - len(small))
    held: list[dict] = []
    granted = confirmations = 0
    after_confirmation: list[int] = []
    started = time.monotonic()

    def ask() -> requests.Response:
        return api.post(
            f"{stack.url}/api/uploads/post-policy/",
            json={"contentType": "image/png", "size": len(data)},
            timeout=10,
        )

    while time.monotonic() - started < seconds:
        answer = ask()
        if answer.status_code == 429:
            time.sleep(1)
            continue
        if answer.status_code == 200:
            granted += 1
            held.append(answer.json())
            continue
        if not held:
            break
        form = held.pop()
        requests.post(
            form["url"], data=list(form["fields"].items()), files={"file": ("a.png", small)}, timeout=30
        )
        time.sleep(1)  # the upload's event
        confirmed = api.post(f"{stack.url}/api/me/avatar/", json={"key": form["key"]}, timeout=30)
        confirmations += confirmed.status_code == 200
        again = ask()
        after_confirmation.append(again.status_code)
        if again.status_code == 200:
            granted += 1
            held.append(again.json())
        elif again.status_code == 403:
            break
    sent = 0
    for form in held:
        answer = requests.post(
            form["url"], data=list(form["fields"].items()), files={"file": ("a.png", data)}, timeout=60
        )
        sent += answer.status_code == 204
    time.sleep(3)
    me = api.get(f"{stack.url}/api/me/", timeout=10).json()
    stored, objects = stack.stored(me["id"])
    print(
        f"form-reset: {time.monotonic() - started:.0f} s: {granted} forms of 5 MiB granted, {confirmations} confirmations, "
        f"the next form after each confirmation answered {after_confirmation}; {sent} forms then carried 5 MiB; "
        f"stored {stored / MIB:.0f} MiB in {objects} objects against a 100 MiB quota"
    )


def confirm_20k(stack: Stack, count: int = 20_000) -> None:
    api = stack.session()

    def confirm_once() -> float:
        image = png_bytes(8, 8)
        form = api.post(
            f"{stack.url}/api/uploads/post-policy/",
            json={"contentType": "image/png", "size": len(image)},
            timeout=10,
        ).json()
        sent = requests.post(
            form["url"], data=list(form["fields"].items()), files={"file": ("a.png", image)}, timeout=30
        )
        assert sent.status_code == 204, sent.text
        started = time.monotonic()
        answer = api.post(f"{stack.url}/api/me/avatar/", json={"key": form["key"]}, timeout=120)
        assert answer.status_code == 200, answer.text
        return time.monotonic() - started

    empty = confirm_once()
    bucket, prefix, _ = stack.token_bucket(api)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: bucket.put_object(f"{prefix}planted/{n}.txt", b"x"), range(count)))
    planted = time.monotonic() - started
    time.sleep(2)
    full = confirm_once()
    print(
        f"confirm-20k: avatar confirmation {empty:.3f} s with an empty folder, {full:.3f} s with {count} objects in it (planted in {planted:.0f} s)"
    )


SCENARIOS = {"appear": appear, "sts-abuse": sts_abuse, "form-reset": form_reset, "confirm-20k": confirm_20k}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--root", type=Path, default=HERE)
    args = parser.parse_args()
    env = {"UPLOAD_QUOTA_OBJECTS": "0"} if args.scenario == "confirm-20k" else {}
    with Stack(args.root.resolve(), **env) as stack:
        SCENARIOS[args.scenario](stack)
