"""A credential URL against the production server: gunicorn (DEBUG off), its access log on, every
application logger at DEBUG, and the sandbox for STS and OSS. A plain GET with no headers gets
credentials oss2 uploads with; logout and a password change end the URL; and the secret is in no
line gunicorn or Django wrote.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import oss2
import pytest
import requests
from django.conf import settings as django_settings

from core.redaction import REDACTED

pytestmark = pytest.mark.slow
BASE_DIR = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(tmp_path: Path, sandbox, port: int) -> dict[str, str]:
    keep = {name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "ALIYUN_"))}
    keep.pop("DATABASE_URL", None)
    keep.pop("REDIS_URL", None)
    return keep | {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_JWT_SIGNING_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_LOG_LEVEL": "DEBUG",
        "DJANGO_LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ALIYUN_ACCESS_KEY_ID": django_settings.ALIYUN_ACCESS_KEY_ID,
        "ALIYUN_ACCESS_KEY_SECRET": django_settings.ALIYUN_ACCESS_KEY_SECRET,
        "ALIYUN_STS_ROLE_ARN": django_settings.ALIYUN_STS_ROLE_ARN,
        "ALIYUN_STS_ENDPOINT": sandbox.sts_endpoint,
        "ALIYUN_OSS_BUCKET": django_settings.ALIYUN_OSS_BUCKET,
        "ALIYUN_OSS_REGION": django_settings.ALIYUN_OSS_REGION,
        "ALIYUN_OSS_ENDPOINT": sandbox.oss_endpoint,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": "-",
        "GUNICORN_LOG_LEVEL": "debug",
        "PYTHONUNBUFFERED": "1",
    }


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60  # a busy machine starts gunicorn slowly
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited while starting"
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_credential_url_end_to_end_and_never_logged(tmp_path, sandbox):
    port = _free_port()
    env = _environment(tmp_path, sandbox, port)
    _manage(env, "migrate", "--noinput")
    _manage(
        env,
        "shell",
        "-c",
        "from accounts.models import User; User.objects.create_user('carol', password='carol-password-1')",
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "--config", "config/gunicorn.conf.py"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/healthz", server)
        tokens = requests.post(
            f"{base}/api/auth/token/", json={"username": "carol", "password": "carol-password-1"}, timeout=30
        ).json()
        bearer = {"Authorization": f"Bearer {tokens['access']}"}
        created = requests.post(f"{base}/api/uploads/sts-server-url/", headers=bearer, timeout=30)
        assert created.status_code == 201
        url = created.json()["url"]
        secret = url.rstrip("/").rsplit("/", 1)[1]
        assert url == f"{base}/api/uploads/sts-server/{secret}/"

        # What a stock provider does: a plain GET, no headers of ours at all.
        answer = requests.get(url, timeout=30).json()
        assert answer["StatusCode"] == "200"
        auth = oss2.StsAuth(answer["AccessKeyId"], answer["AccessKeySecret"], answer["SecurityToken"])
        bucket = oss2.Bucket(auth, sandbox.oss_endpoint, django_settings.ALIYUN_OSS_BUCKET)
        assert bucket.put_object("user/1/live.txt", b"live").status == 200

        # Paths Django itself logs (a 404), with the secret in them.
        assert requests.get(f"{url}nothing-here/", timeout=30).status_code == 404
        no_slash = requests.get(f"{base}/api/uploads/sts-server/{secret}", timeout=30, allow_redirects=False)
        assert no_slash.status_code == 301  # APPEND_SLASH

        logout = requests.post(f"{base}/api/auth/logout/", json={"refresh": tokens["refresh"]}, timeout=30)
        assert logout.status_code == 200
        ended = requests.get(url, timeout=30)
        assert (ended.status_code, ended.json()["StatusCode"], ended.json()["ErrorCode"]) == (
            200,
            "401",
            "credential_url_revoked",
        )

        # A password change ends a URL too (a fresh sign-in, a fresh URL, then the change).
        tokens = requests.post(
            f"{base}/api/auth/token/", json={"username": "carol", "password": "carol-password-1"}, timeout=30
        ).json()
        second = requests.post(
            f"{base}/api/uploads/sts-server-url/",
            headers={"Authorization": f"Bearer {tokens['access']}"},
            timeout=30,
        ).json()["url"]
        second_secret = second.rstrip("/").rsplit("/", 1)[1]
        assert requests.get(second, timeout=30).json()["StatusCode"] == "200"
        _manage(
            env,
            "shell",
            "-c",
            "from accounts.models import User; u = User.objects.get(username='carol'); "
            "u.set_password('carol-password-2'); u.save()",
        )
        changed = requests.get(second, timeout=30).json()
        assert (changed["StatusCode"], changed["ErrorCode"]) == ("401", "credential_url_revoked")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)

    log_text = log_path.read_text()
    assert "/api/uploads/sts-server/" in log_text  # the requests were logged...
    assert REDACTED in log_text
    assert secret not in log_text  # ...and the secret never was
    assert secret[len("osscu_") :][:16] not in log_text
    assert second_secret not in log_text
    print("".join(line + "\n" for line in log_text.splitlines() if "sts-server/" in line))  # shown with -s
