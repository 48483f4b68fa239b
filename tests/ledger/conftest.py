"""Fixtures for the ledger: the session sandbox pushing its OSS events, as MNS does, to a live server.

``events_to`` points the sandbox's publisher at ``POST /api/uploads/oss-events/`` of pytest-django's
live server and lets the product accept the sandbox's certificate URL (its OSS origin); ``push``
builds a push signed with the sandbox's key, for the pushes a test must shape itself (forged,
altered, replayed, out of order).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from django.db import connection
from werkzeug.http import http_date

from aliyun.mns import local_certificates_clear
from operators import doctor
from sandbox.events import CERT_PATH, MNS_XML_NAMESPACE, string_to_sign
from sandbox.server import Sandbox
from tests.conftest import one_at_a_time

EVENTS_PATH = "/api/uploads/oss-events/"


@dataclass
class Events:
    base_url: str
    sandbox: Sandbox

    def idle(self, timeout: float = 10.0) -> None:
        assert self.sandbox.events.wait_idle(timeout), self.sandbox.events.snapshot()


@pytest.fixture(autouse=True)
def _doctor_takes_turns(monkeypatch) -> None:
    """The doctor polls the ledger for its probe from the test's thread while the live server applies
    pushes; on SQLite the two share one connection, so the poll waits its turn (``one_at_a_time``)."""
    if connection.vendor == "sqlite":
        monkeypatch.setattr(doctor, "probe_event_received_at", one_at_a_time(doctor.probe_event_received_at))


@pytest.fixture
def events_to(live_server, sandbox: Sandbox, settings) -> Iterator[Events]:
    settings.OSS_EVENTS_CERT_URL_PREFIXES = [f"{sandbox.oss_endpoint}/__sandbox__/"]
    local_certificates_clear()
    config = sandbox.config
    saved = (config.event_endpoint, config.event_retry_scale, config.event_max_attempts)
    config.event_endpoint = f"{live_server.url}{EVENTS_PATH}"
    config.event_retry_scale = 0.01
    config.event_max_attempts = 20
    yield Events(live_server.url, sandbox)
    sandbox.events.wait_idle(10)
    config.event_endpoint, config.event_retry_scale, config.event_max_attempts = saved
    sandbox.events.configure(duplicate=False, max_delay_ms=0, url_encode_keys=False)
    local_certificates_clear()


def event(
    key: str,
    *,
    name: str = "ObjectCreated:PutObject",
    size: int = 10,
    when: datetime | None = None,
    request_id: str | None = None,
    bucket: str = "avatars-test",
    principal: str = "300000000000000001:user-1",
) -> dict[str, Any]:
    when = when or datetime.now(UTC)
    return {
        "eventName": name,
        "eventSource": "acs:oss",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:cn-hangzhou:1234567890123456:{bucket}",
                "name": bucket,
                "ownerIdentity": "1234567890123456",
            },
            "object": {
                "key": key,
                "size": 0 if "Removed" in name else size,
                "deltaSize": size,
                "eTag": "ABC",
            },
            "ossSchemaVersion": "1.0",
            "ruleId": "test",
        },
        "region": "cn-hangzhou",
        "requestParameters": {"sourceIPAddress": "192.0.2.7"},
        "responseElements": {"requestId": request_id or uuid.uuid4().hex.upper()[:24]},
        "userIdentity": {"principalId": principal},
    }


def xml_body(
    events: list[dict[str, Any]],
    *,
    message_id: str | None = None,
    topic: str = "oss-events",
    owner: str = "1234567890123456",
) -> bytes:
    message = base64.b64encode(json.dumps({"events": events}).encode()).decode()
    root = ET.Element("Notification", xmlns=MNS_XML_NAMESPACE)
    for name, value in (
        ("TopicOwner", owner),
        ("TopicName", topic),
        ("Subscriber", owner),
        ("SubscriptionName", "uploads-server"),
        ("MessageId", message_id or uuid.uuid4().hex.upper()),
        ("MessageMD5", hashlib.md5(message.encode()).hexdigest().upper()),
        ("Message", message),
        ("PublishTime", str(int(time.time() * 1000))),
    ):
        ET.SubElement(root, name).text = value
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")


PushFn = Callable[..., requests.Response]


@pytest.fixture
def push(events_to: Events) -> PushFn:
    """POST ``body`` as MNS would, signed with the sandbox's key (``sign`` another function to forge)."""
    sandbox = events_to.sandbox

    def send(
        body: bytes,
        *,
        cert_url: str | None = None,
        date: str | None = None,
        sign: Callable[[str], str] | None = None,
        tamper: Callable[[bytes], bytes] | None = None,
        content_type: str = "text/xml;charset=utf-8",
    ) -> requests.Response:
        cert_url = cert_url if cert_url is not None else f"{sandbox.oss_endpoint}{CERT_PATH}"
        content_md5 = base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()
        headers = {
            "Date": date or http_date(datetime.now(UTC)),
            "Content-Type": content_type,
            "Content-MD5": content_md5,
            "x-mns-request-id": uuid.uuid4().hex.upper(),
            "x-mns-version": "2015-06-06",
            "x-mns-signing-cert-url": base64.b64encode(cert_url.encode()).decode(),
        }
        text = string_to_sign(
            content_md5=content_md5,
            content_type=content_type,
            date=headers["Date"],
            headers=headers,
            path=EVENTS_PATH,
        )
        headers["Authorization"] = (sign or sandbox.events.signer.sign)(text)
        sent = tamper(body) if tamper else body
        return requests.post(f"{events_to.base_url}{EVENTS_PATH}", data=sent, headers=headers, timeout=10)

    return send


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy; returns it (AssertionError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "not within the time allowed"
            return value
        time.sleep(0.05)


from tests.operators.conftest import fresh_sandbox  # noqa: E402,F401  (the doctor tests' own sandbox)
