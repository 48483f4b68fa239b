"""OSS event notifications pushed by the sandbox as Simple Message Queue (MNS) pushes them.

A local receiver (stdlib ``http.server``) plays the product's future ``POST /api/uploads/oss-events/``
and verifies each push the way Alibaba's "Verify a signature on an HTTP server" page says, written
here independently of the sandbox's code: the certificate URL (Base64 in ``x-mns-signing-cert-url``),
the ``Date``, the ``Content-MD5`` of the body, and the RSA-SHA1 (PKCS#1 v1.5) signature over
``POST\\n<Content-MD5>\\n<Content-Type>\\n<Date>\\n<x-mns-* lines><path>``. Uploads go through oss2 and
alibabacloud-oss-v2 with credentials the sandbox STS hands to the official STS SDK.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_sts20150401.models import AssumeRoleRequest
from alibabacloud_tea_openapi.models import Config as StsConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.tokens import IssuedCredentials
from tests.sandbox.conftest import oss2_bucket, user_session_policy, v2_client

MNS_NS = "{http://mns.aliyuncs.com/doc/v1/}"
RECEIVER_PATH = "/api/uploads/oss-events/"


@dataclass
class Push:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every push; answers from ``statuses`` in turn (then 204), after ``delay`` seconds."""

    url: str = ""
    pushes: list[Push] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Push]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.pushes) >= count:
                    return list(self.pushes)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} pushes, got {len(self.pushes)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.pushes.append(Push(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 204
            time.sleep(state.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}{RECEIVER_PATH}"
    yield state
    server.shutdown()
    server.server_close()


def start_sandbox(tmp_path, receiver: Receiver, **overrides: Any) -> Sandbox:
    values = {
        "data_dir": tmp_path / "events",
        "event_endpoint": receiver.url,
        "event_retry_scale": 0.001,
        "event_max_attempts": 3,
        **overrides,
    }
    return Sandbox(SandboxConfig.from_settings(**values))


@pytest.fixture
def event_sandbox(tmp_path, receiver) -> Iterator[Sandbox]:
    with start_sandbox(tmp_path, receiver) as running:
        yield running


def sts_credentials(sandbox: Sandbox, user_id: int = 7) -> tuple[IssuedCredentials, str]:
    """Credentials from the sandbox STS through the official STS SDK, and their AssumedRoleId."""
    config = sandbox.config
    client = StsClient(
        StsConfig(
            access_key_id=config.access_key_id,
            access_key_secret=config.access_key_secret,
            endpoint=sandbox.sts_endpoint,
            protocol="http",
        )
    )
    body = client.assume_role(
        AssumeRoleRequest(
            role_arn=config.role_arn,
            role_session_name=f"user-{user_id}",
            duration_seconds=900,
            policy=json.dumps(
                user_session_policy(
                    config.bucket, user_id, ["oss:PutObject", "oss:GetObject", "oss:DeleteObject"]
                )
            ),
        )
    ).body
    creds = IssuedCredentials(
        access_key_id=body.credentials.access_key_id,
        access_key_secret=body.credentials.access_key_secret,
        security_token=body.credentials.security_token,
        expiration=datetime.now(UTC) + timedelta(seconds=900),
        assumed_role_arn=body.assumed_role_user.arn,
        assumed_role_id=body.assumed_role_user.assumed_role_id,
    )
    return creds, body.assumed_role_user.assumed_role_id


def verified(push: Push, sandbox: Sandbox) -> dict[str, Any]:
    """Check the push as a receiver must, and return its decoded event (one per message here)."""
    headers = push.headers
    cert_url = base64.b64decode(headers["x-mns-signing-cert-url"]).decode()
    assert cert_url == f"{sandbox.oss_endpoint}/__sandbox__/mns-signing-cert.pem"
    certificate = x509.load_pem_x509_certificate(requests.get(cert_url, timeout=5).content)
    sent_at = parsedate_to_datetime(headers["date"])
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 15 * 60
    assert headers["content-md5"] == base64.b64encode(hashlib.md5(push.body).hexdigest().encode()).decode()
    assert headers["x-mns-version"] == "2015-06-06" and headers["x-mns-request-id"]
    assert push.path == RECEIVER_PATH
    mns = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-mns-"))
    )
    signed = f"POST\n{headers['content-md5']}\n{headers['content-type']}\n{headers['date']}\n{mns}{push.path}"
    certificate.public_key().verify(
        base64.b64decode(headers["authorization"]), signed.encode(), padding.PKCS1v15(), hashes.SHA1()
    )
    if headers["content-type"].startswith("text/xml"):
        root = ET.fromstring(push.body)
        assert root.tag == f"{MNS_NS}Notification"
        fields = {child.tag.removeprefix(MNS_NS): child.text or "" for child in root}
        assert fields["TopicOwner"] == sandbox.config.owner_account_id
        assert fields["TopicName"] == sandbox.config.event_topic
        assert fields["SubscriptionName"] == sandbox.config.event_subscription
        assert fields["MessageMD5"] == hashlib.md5(fields["Message"].encode()).hexdigest().upper()
        assert abs(int(fields["PublishTime"]) / 1000 - time.time()) < 60
        message = fields["Message"]
    else:
        assert headers["x-mns-message-id"]
        message = push.body.decode()
    document = json.loads(base64.b64decode(message))
    (event,) = document["events"]
    return event


def test_uploads_and_a_delete_through_both_sdks_are_pushed_signed(event_sandbox, receiver) -> None:
    creds, assumed_role_id = sts_credentials(event_sandbox)
    bucket = oss2_bucket(event_sandbox.oss_endpoint, event_sandbox.config.bucket, creds)
    v2 = v2_client(event_sandbox.oss_endpoint, creds)

    put = bucket.put_object("user/7/events/a b.png", b"a" * 300, headers={"Content-Type": "image/png"})
    put_v2 = v2.put_object(
        oss_v2.models.PutObjectRequest(
            bucket=event_sandbox.config.bucket, key="user/7/events/v2.bin", body=io.BytesIO(b"v" * 10)
        )
    )
    overwrite = bucket.put_object("user/7/events/a b.png", b"b" * 100)
    deleted = bucket.delete_object("user/7/events/a b.png")

    events = [verified(push, event_sandbox) for push in receiver.wait_for(4)]
    by_request = {event["responseElements"]["requestId"]: event for event in events}
    first, second, third, removal = (
        by_request[put.request_id],
        by_request[put_v2.request_id],
        by_request[overwrite.request_id],
        by_request[deleted.request_id],
    )
    config = event_sandbox.config
    assert first["eventName"] == "ObjectCreated:PutObject"
    assert first["eventSource"] == "acs:oss" and first["eventVersion"] == "1.0"
    assert first["oss"]["bucket"] == {
        "arn": f"acs:oss:{config.region}:{config.owner_account_id}:{config.bucket}",
        "name": config.bucket,
        "ownerIdentity": config.owner_account_id,
        "virtualBucket": "",
    }
    assert first["oss"]["object"] == {
        "key": "user/7/events/a b.png",
        "size": 300,
        "deltaSize": 300,
        "eTag": hashlib.md5(b"a" * 300).hexdigest().upper(),
    }
    assert first["oss"]["ossSchemaVersion"] == "1.0" and first["region"] == config.region
    assert first["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert first["userIdentity"] == {"principalId": assumed_role_id}
    assert datetime.strptime(first["eventTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert (second["eventName"], second["oss"]["object"]["key"]) == (
        "ObjectCreated:PutObject",
        "user/7/events/v2.bin",
    )
    assert (third["oss"]["object"]["size"], third["oss"]["object"]["deltaSize"]) == (100, -200)
    assert removal["eventName"] == "ObjectRemoved:DeleteObject"
    assert (removal["oss"]["object"]["size"], removal["oss"]["object"]["deltaSize"]) == (0, -100)
    assert removal["userIdentity"]["principalId"] == assumed_role_id


def test_simplified_format_carries_the_bare_message_and_its_id_in_a_header(tmp_path, receiver) -> None:
    with start_sandbox(tmp_path, receiver, event_format="simplified") as running:
        creds, _ = sts_credentials(running)
        oss2_bucket(running.oss_endpoint, running.config.bucket, creds).put_object("user/7/s.txt", b"s")
        (push,) = receiver.wait_for(1)
        event = verified(push, running)

    assert push.headers["content-type"].startswith("text/plain")
    assert event["oss"]["object"]["key"] == "user/7/s.txt"


def test_every_write_and_delete_kind_is_announced(event_sandbox, receiver) -> None:
    config = event_sandbox.config
    server = oss2.Bucket(
        oss2.AuthV4(config.access_key_id, config.access_key_secret),
        event_sandbox.oss_endpoint,
        config.bucket,
        region=config.region,
    )
    server.put_object("user/7/k/source", b"src")
    server.copy_object(config.bucket, "user/7/k/source", "user/7/k/copy")
    upload_id = server.init_multipart_upload("user/7/k/multi").upload_id
    etag = server.upload_part("user/7/k/multi", upload_id, 1, b"m" * 10).etag
    server.complete_multipart_upload("user/7/k/multi", upload_id, [oss2.models.PartInfo(1, etag)])
    server.append_object("user/7/k/log", 0, b"12345")
    server.append_object("user/7/k/log", 5, b"678")
    server.put_symlink("user/7/k/source", "user/7/k/link")  # no event: not in MNS's event list
    server.batch_delete_objects(["user/7/k/source", "user/7/k/copy"])

    pushes = receiver.wait_for(7)
    names = sorted(
        (e["eventName"], e["oss"]["object"]["key"]) for e in (verified(p, event_sandbox) for p in pushes)
    )
    assert names == [
        ("ObjectCreated:AppendObject", "user/7/k/log"),
        ("ObjectCreated:AppendObject", "user/7/k/log"),
        ("ObjectCreated:CompleteMultipartUpload", "user/7/k/multi"),
        ("ObjectCreated:CopyObject", "user/7/k/copy"),
        ("ObjectCreated:PutObject", "user/7/k/source"),
        ("ObjectRemoved:DeleteObjects", "user/7/k/copy"),
        ("ObjectRemoved:DeleteObjects", "user/7/k/source"),
    ]
    appended = [
        verified(p, event_sandbox) for p in pushes if b"AppendObject" in base64.b64decode(_message(p))
    ]
    assert sorted(e["oss"]["object"]["position"] for e in appended) == [0, 5]
    assert server.get_object("user/7/k/log").read() == b"12345678"
    time.sleep(0.2)
    assert len(receiver.pushes) == 7  # the symlink was not announced


def _message(push: Push) -> str:
    root = ET.fromstring(push.body)
    return root.findtext(f"{MNS_NS}Message") or ""


def test_a_post_object_upload_is_announced(event_sandbox, receiver) -> None:
    from aliyun.post_policy import post_object_form

    creds, assumed_role_id = sts_credentials(event_sandbox)
    now = datetime.now(UTC)
    fields = post_object_form(
        bucket=event_sandbox.config.bucket,
        region=event_sandbox.config.region,
        key="user/7/form.png",
        content_type="image/png",
        max_bytes=1000,
        now=now,
        expiration=now + timedelta(minutes=5),
        access_key_id=creds.access_key_id,
        access_key_secret=creds.access_key_secret,
        security_token=creds.security_token,
    )
    answer = requests.post(
        f"{event_sandbox.oss_endpoint}/{event_sandbox.config.bucket}",
        data=fields,
        files={"file": ("f.png", b"png!", "image/png")},
        timeout=5,
    )
    assert answer.status_code == 204, answer.text

    (push,) = receiver.wait_for(1)
    event = verified(push, event_sandbox)
    assert event["eventName"] == "ObjectCreated:PostObject"
    assert event["responseElements"]["requestId"] == answer.headers["x-oss-request-id"]
    assert event["userIdentity"]["principalId"] == assumed_role_id


def test_a_push_answered_500_is_retried_until_204(event_sandbox, receiver) -> None:
    receiver.statuses = [500, 503]
    creds, _ = sts_credentials(event_sandbox)
    oss2_bucket(event_sandbox.oss_endpoint, event_sandbox.config.bucket, creds).put_object("user/7/r", b"r")

    pushes = receiver.wait_for(3)
    assert event_sandbox.events.wait_idle()
    stats = requests.get(f"{event_sandbox.oss_endpoint}/__sandbox__/stats", timeout=5).json()["events"]
    recent = requests.get(f"{event_sandbox.oss_endpoint}/__sandbox__/events?last=5", timeout=5).json()

    assert len({verified(push, event_sandbox)["responseElements"]["requestId"] for push in pushes}) == 1
    assert len({push.headers["x-mns-request-id"] for push in pushes}) == 3  # each attempt is its own request
    assert stats == {"published": 1, "sent": 3, "succeeded": 1, "retried": 2, "gave_up": 0, "pending": 0}
    assert recent[-1]["outcome"] == "delivered" and recent[-1]["history"] == ["500", "503", "204"]


def test_a_push_never_answered_204_gives_up_after_the_configured_attempts(tmp_path, receiver) -> None:
    receiver.statuses = [500] * 10
    with start_sandbox(tmp_path, receiver, event_max_attempts=3) as running:
        creds, _ = sts_credentials(running)
        oss2_bucket(running.oss_endpoint, running.config.bucket, creds).put_object("user/7/g", b"g")
        receiver.wait_for(3)
        assert running.events.wait_idle()
        stats = running.events.snapshot()

    assert stats == {"published": 1, "sent": 3, "succeeded": 0, "retried": 2, "gave_up": 1, "pending": 0}
    assert len(receiver.pushes) == 3


def test_a_slow_receiver_never_delays_the_oss_answer_and_counts_as_no_answer(tmp_path, receiver) -> None:
    receiver.delay = 1.0
    with start_sandbox(tmp_path, receiver, event_timeout_seconds=0.3, event_max_attempts=2) as running:
        creds, _ = sts_credentials(running)
        started = time.monotonic()
        oss2_bucket(running.oss_endpoint, running.config.bucket, creds).put_object("user/7/slow", b"s")
        answered_in = time.monotonic() - started
        assert running.events.wait_idle(timeout=10)
        recent = running.events.recent(1)

    assert answered_in < 0.5
    assert recent[0]["history"] == ["no answer", "no answer"] and recent[0]["outcome"] == "gave-up"


def test_duplicate_delivery_switch_sends_each_message_twice_with_one_message_id(
    event_sandbox, receiver
) -> None:
    event_sandbox.events.configure(duplicate=True, max_delay_ms=50)
    creds, _ = sts_credentials(event_sandbox)
    bucket = oss2_bucket(event_sandbox.oss_endpoint, event_sandbox.config.bucket, creds)
    bucket.put_object("user/7/d1", b"1")
    bucket.put_object("user/7/d2", b"2")

    pushes = receiver.wait_for(4)
    ids = [ET.fromstring(p.body).findtext(f"{MNS_NS}MessageId") for p in pushes]
    keys = [verified(p, event_sandbox)["oss"]["object"]["key"] for p in pushes]

    assert sorted(keys) == ["user/7/d1", "user/7/d1", "user/7/d2", "user/7/d2"]
    assert len(set(ids)) == 2 and all(ids.count(i) == 2 for i in ids)


def test_no_endpoint_no_pushes_and_the_certificate_survives_a_restart(tmp_path, receiver) -> None:
    with start_sandbox(tmp_path, receiver, event_endpoint="") as running:
        creds, _ = sts_credentials(running)
        oss2_bucket(running.oss_endpoint, running.config.bucket, creds).put_object("user/7/off", b"o")
        first = requests.get(f"{running.oss_endpoint}/__sandbox__/mns-signing-cert.pem", timeout=5).content
        assert running.events.snapshot()["published"] == 0
    with start_sandbox(tmp_path, receiver, event_endpoint="") as again:
        second = requests.get(f"{again.oss_endpoint}/__sandbox__/mns-signing-cert.pem", timeout=5).content

    assert first == second and first.startswith(b"-----BEGIN CERTIFICATE-----")
    assert receiver.pushes == []


_key_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n\\"), min_size=1, max_size=40
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_key_text)
def test_any_key_arrives_in_its_event_as_stored(event_sandbox, receiver, name: str) -> None:
    config = event_sandbox.config
    server = oss2.Bucket(
        oss2.AuthV4(config.access_key_id, config.access_key_secret),
        event_sandbox.oss_endpoint,
        config.bucket,
        region=config.region,
    )
    key = f"user/7/any/{name}"
    receiver.pushes.clear()
    answer = server.put_object(key, b"k")

    (push,) = receiver.wait_for(1)
    event = verified(push, event_sandbox)
    assert event["oss"]["object"]["key"] == key
    assert event["responseElements"]["requestId"] == answer.request_id
