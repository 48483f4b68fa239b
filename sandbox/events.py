"""OSS event notifications, pushed to an HTTP endpoint the way Simple Message Queue (formerly MNS) does.

On Alibaba Cloud an OSS event notification rule publishes object events of a bucket to an MNS topic,
and a topic subscription pushes each message to an HTTP endpoint. The sandbox plays both parts for
its one bucket: after every object write or delete it answered with success, it queues one message
per object and a background thread POSTs it to ``SandboxConfig.event_endpoint`` (empty: off), so an
OSS answer never waits on a push.

What is pushed, with the Alibaba page each fact comes from:

- **The message** ("Event notification" / "OSS event notifications" in the SMQ guide): the OSS event
  JSON, **Base64-encoded** ("The content of OSS-based event notification is in the JSON format and is
  Base64-encoded"). See :func:`event_record` for the exact shape the product must parse.
- **The push** ("HttpEndpoint"): ``POST <endpoint path>`` (``/notifications`` when the URL names no
  path); headers ``Authorization``, ``x-mns-signing-cert-url`` (Base64 of the certificate's URL),
  ``x-mns-request-id``, ``x-mns-version: 2015-06-06``, ``Date``, ``Content-Type``, ``Content-MD5``;
  SIMPLIFIED adds ``x-mns-message-id``. Body: XML (``<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">``
  with TopicOwner, TopicName, Subscriber, SubscriptionName, MessageId, MessageMD5, Message,
  PublishTime in milliseconds) or SIMPLIFIED (the message itself, unchanged).
- **The signature** ("Verify a signature on an HTTP server" / "HTTP subscription signature"):
  ``Authorization`` = Base64(RSA PKCS#1 v1.5 SHA-1 signature) over
  ``POST\\n<Content-MD5>\\n<Content-Type>\\n<Date>\\n`` + every ``x-mns-*`` header as
  ``name:value\\n`` (names lower-cased, sorted, no spaces around the colon) + the request path.
  Alibaba's certificate lives under ``https://mnstest.oss-cn-hangzhou.aliyuncs.com/``; the sandbox
  signs with its own RSA key and serves its self-signed certificate under its OSS origin
  (:data:`CERT_PATH`), a prefix the product may accept only when it talks to the local sandbox.
  ``Content-MD5`` is what MNS's own example shows: Base64 of the *hex* MD5 of the body.
- **Retries** ("NotifyStrategy"): anything but 204, or no answer within 5 s, is retried.
  ``EXPONENTIAL_DECAY_RETRY``: 176 retries at 1, 2, 4, ... 256, then 512 s (about a day);
  ``BACKOFF_RETRY`` (MNS's default): 3 retries 10-20 s apart. ``event_retry_scale`` shrinks the waits
  for tests. Delivery is at least once and unordered; the :class:`PushFaults` switches make that
  visible (every push twice, random delays that reorder).

Not verifiable from Alibaba's pages, so chosen to be safe for a receiver under every reading (and
said so in the README): whether ``key`` is URL-encoded (the sandbox sends it as stored, or
URL-encoded with ``PushFaults.url_encode_keys``), what ``principalId`` holds for an STS session (see
:func:`principal_id`), the SIMPLIFIED ``Content-Type``, and the size fields of removal events.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import http.client
import itertools
import json
import logging
import os
import random
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.http import http_date

from sandbox.config import SandboxConfig
from sandbox.tokens import Principal

__all__ = [
    "CERT_PATH",
    "EVENT_FORMATS",
    "RETRY_STRATEGIES",
    "EventPublisher",
    "ObjectChange",
    "PushFaults",
    "Signer",
    "event_record",
    "principal_id",
    "retries_of",
    "string_to_sign",
]

logger = logging.getLogger(__name__)

CERT_PATH = "/__sandbox__/mns-signing-cert.pem"
MNS_VERSION = "2015-06-06"
MNS_XML_NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
XML_CONTENT_TYPE = "text/xml;charset=utf-8"
SIMPLIFIED_CONTENT_TYPE = "text/plain;charset=utf-8"  # not documented; MNS sends the body unchanged
DEFAULT_PATH = "/notifications"
RECENT_LIMIT = 500
EventFormat = Literal["xml", "simplified"]
RetryStrategy = Literal["exponential", "backoff"]
EVENT_FORMATS: tuple[str, ...] = ("xml", "simplified")
RETRY_STRATEGIES: tuple[str, ...] = ("exponential", "backoff")
# NotifyStrategy EXPONENTIAL_DECAY_RETRY: 1, 2, 4, ... 256, then 512 s, 176 retries in all.
EXPONENTIAL_RETRIES = 176
BACKOFF_RETRIES = 3


def retries_of(strategy: str) -> int:
    """How many times MNS retries a failed push under a NotifyStrategy ("NotifyStrategy" page)."""
    return BACKOFF_RETRIES if strategy == "backoff" else EXPONENTIAL_RETRIES


# ---------------------------------------------------------------------------------- the event


@dataclass(frozen=True)
class ObjectChange:
    """One object written or removed by a request OSS answered with success.

    ``name`` is the event name without its group (``PutObject``, ``DeleteObjects`` ...); ``size`` and
    ``previous_size`` are bytes (``previous_size`` 0 when the key was new or absent); ``etag`` is the
    stored ETag with or without quotes ("" for a removal of nothing); ``position`` is AppendObject's.
    """

    name: str
    key: str
    size: int
    previous_size: int
    etag: str
    request_id: str
    source_ip: str
    principal_id: str
    position: int | None = None

    @property
    def removed(self) -> bool:
        return self.name in ("DeleteObject", "DeleteObjects")


def principal_id(config: SandboxConfig, principal: Principal) -> str:
    """``userIdentity.principalId`` for a request signed by ``principal``.

    Alibaba documents the field as "the UID of the requester" (Event notification page) and shows
    account ids (``"1148956468186985"``). For an STS session the value is not documented; the sandbox
    sends the session's ``AssumedRoleId`` as AssumeRole returned it (``<role id>:<role session name>``,
    e.g. ``"300000000000000001:user-7"``), which is how ActionTrail names an assumed-role principal.
    A long-term key of the RAM user gives the RAM user's numeric id. A receiver should accept both a
    bare id and ``<id>:<session name>``, and never trust it beyond matching it to its own issuances.
    """
    if principal.is_sts and principal.assumed_role_id:
        return principal.assumed_role_id
    user = config.ram.user_of_key(principal.access_key_id)
    if user is None:
        return config.owner_account_id
    return str(config.ram.call("GetUser", {"UserName": user})["User"]["UserId"])


def event_record(
    config: SandboxConfig, change: ObjectChange, when: datetime, *, rule_id: str, url_encode_key: bool = False
) -> dict[str, Any]:
    """One element of the message's ``events`` list, shaped as the "Event notification" page documents.

    ::

        {"eventName": "ObjectCreated:PutObject" | "ObjectCreated:PostObject" | "ObjectCreated:CopyObject"
                      | "ObjectCreated:CompleteMultipartUpload" | "ObjectCreated:AppendObject"
                      | "ObjectRemoved:DeleteObject" | "ObjectRemoved:DeleteObjects",
         "eventSource": "acs:oss",
         "eventTime": "2026-05-01T12:00:00.000Z",           # ISO 8601 UTC, milliseconds
         "eventVersion": "1.0",
         "oss": {"bucket": {"arn": "acs:oss:<region>:<owner account id>:<bucket>", "name": "<bucket>",
                            "ownerIdentity": "<owner account id>", "virtualBucket": ""},
                 "object": {"key": "<key>",                 # as stored (URL-encoded if configured)
                            "size": <int bytes>,            # 0 for a removal
                            "deltaSize": <int bytes>,       # new size - previous size; -previous on removal
                            "eTag": "<upper-case hex, no quotes; multipart: hex-N>" | "",
                            "position": <int>},             # AppendObject only: where it appended
                 "ossSchemaVersion": "1.0", "ruleId": "<rule id>"},
         "region": "<region, e.g. cn-hangzhou>",
         "requestParameters": {"sourceIPAddress": "<client address>"},
         "responseElements": {"requestId": "<the x-oss-request-id of the write>"},
         "userIdentity": {"principalId": "<see principal_id()>"}}
    """
    group = "ObjectRemoved" if change.removed else "ObjectCreated"
    size = 0 if change.removed else change.size
    obj: dict[str, Any] = {
        "deltaSize": size - change.previous_size,
        "eTag": change.etag.strip('"').upper(),
        "key": quote(change.key, safe="") if url_encode_key else change.key,
        "size": size,
    }
    if change.position is not None:
        obj["position"] = change.position
    return {
        "eventName": f"{group}:{change.name}",
        "eventSource": "acs:oss",
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{config.region}:{config.owner_account_id}:{config.bucket}",
                "name": config.bucket,
                "ownerIdentity": config.owner_account_id,
                "virtualBucket": "",
            },
            "object": obj,
            "ossSchemaVersion": "1.0",
            "ruleId": rule_id,
        },
        "region": config.region,
        "requestParameters": {"sourceIPAddress": change.source_ip},
        "responseElements": {"requestId": change.request_id},
        "userIdentity": {"principalId": change.principal_id},
    }


# ---------------------------------------------------------------------------------- signing


def string_to_sign(
    *, content_md5: str, content_type: str, date: str, headers: Mapping[str, str], path: str
) -> str:
    """What MNS signs: ``POST``, Content-MD5, Content-Type, Date, the ``x-mns-*`` headers, the path."""
    mns = sorted(
        (name.lower(), value) for name, value in headers.items() if name.lower().startswith("x-mns-")
    )
    canonical = "".join(f"{name}:{value}\n" for name, value in mns)
    return f"POST\n{content_md5}\n{content_type}\n{date}\n{canonical}{path}"


class Signer:
    """The sandbox's RSA key and self-signed X.509 certificate, kept under ``<data_dir>/mns``.

    Made once and kept across restarts, so a receiver's certificate cache stays valid.
    """

    def __init__(self, data_dir: Path) -> None:
        directory = Path(data_dir) / "mns"
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "signing-key.pem", directory / "signing-cert.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{key_path} does not hold an RSA key")
            self._key = key
            self.certificate_pem = cert_path.read_bytes()
            return
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox MNS push signing")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .sign(self._key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        cert_path.write_bytes(self.certificate_pem)

    def sign(self, text: str) -> str:
        """Base64 of the RSA PKCS#1 v1.5 SHA-1 signature of ``text`` (UTF-8)."""
        signature = self._key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - MNS's algorithm
        return base64.b64encode(signature).decode("ascii")


# ---------------------------------------------------------------------------------- delivery


@dataclass
class PushFaults:
    """Switches that make MNS's at-least-once, unordered delivery visible to a receiver's tests.

    ``duplicate``: every message is delivered twice (two independent pushes, same MessageId, each
    with its own x-mns-request-id). ``max_delay_ms``: each push waits a random 0..max ms first, so
    pushes overtake each other. ``url_encode_keys``: the event's ``key`` is URL-encoded.
    """

    duplicate: bool = False
    max_delay_ms: int = 0
    url_encode_keys: bool = False


@dataclass
class _Delivery:
    message_id: str
    body: bytes
    content_type: str
    event: dict[str, Any]
    attempts: int = 0
    status: int | None = None
    outcome: str = "pending"  # pending | delivered | gave-up
    history: list[str] = field(default_factory=list)


class EventPublisher:
    """Queues one MNS message per object change and pushes it from background threads.

    ``publish`` never blocks on the network. Counters: ``published`` (messages), ``sent`` (HTTP
    attempts), ``succeeded`` (204s), ``retried`` (attempts scheduled again), ``gave_up`` (messages
    dropped after the last attempt), ``pending``.
    """

    def __init__(self, config: SandboxConfig, *, workers: int = 4) -> None:
        self.config = config
        self.faults = PushFaults()
        self._signer: Signer | None = None
        self._cert_url = ""
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._workers = workers
        self._stopping = False
        self._recent: deque[_Delivery] = deque(maxlen=RECENT_LIMIT)
        self._counts = {"published": 0, "sent": 0, "succeeded": 0, "retried": 0, "gave_up": 0}
        self._busy = 0

    # --- lifecycle

    @property
    def signer(self) -> Signer:
        with self._cond:
            if self._signer is None:
                self._signer = Signer(self.config.data_dir)
            return self._signer

    @property
    def certificate_pem(self) -> bytes:
        return self.signer.certificate_pem

    def start(self, *, cert_url: str) -> None:
        """Serve pushes signed with the certificate found at ``cert_url``."""
        self._cert_url = cert_url  # the key is made (or loaded) on first use: most sandboxes never push
        with self._cond:
            self._stopping = False
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"sandbox-events-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop pushing; messages still queued are dropped (as a lost MNS would lose them)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=self.config.event_timeout_seconds + 1)
        self._threads.clear()

    def configure(
        self,
        *,
        duplicate: bool | None = None,
        max_delay_ms: int | None = None,
        url_encode_keys: bool | None = None,
    ) -> None:
        """Change the fault switches; None leaves one as it is."""
        if max_delay_ms is not None and max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be >= 0, got {max_delay_ms}")
        with self._cond:
            if duplicate is not None:
                self.faults.duplicate = duplicate
            if max_delay_ms is not None:
                self.faults.max_delay_ms = max_delay_ms
            if url_encode_keys is not None:
                self.faults.url_encode_keys = url_encode_keys

    # --- publishing

    def publish(self, changes: Iterable[ObjectChange]) -> None:
        """Queue one message per change (nothing when no endpoint is configured)."""
        if not self.config.event_endpoint:
            return
        now = self.config.faults.now()
        with self._cond:
            faults = PushFaults(**vars(self.faults))
        for change in changes:
            record = event_record(
                self.config,
                change,
                now,
                rule_id=self.config.event_rule_id,
                url_encode_key=faults.url_encode_keys,
            )
            message = base64.b64encode(json.dumps({"events": [record]}).encode("utf-8")).decode("ascii")
            message_id = _message_id()
            body, content_type = self._body(message, message_id, now)
            copies = 2 if faults.duplicate else 1
            with self._cond:
                self._counts["published"] += 1
                for _ in range(copies):
                    delivery = _Delivery(message_id, body, content_type, record)
                    delay = random.uniform(0, faults.max_delay_ms / 1000) if faults.max_delay_ms else 0.0
                    heapq.heappush(self._heap, (time.monotonic() + delay, next(self._sequence), delivery))
                    self._recent.append(delivery)
                self._cond.notify_all()

    def _body(self, message: str, message_id: str, now: datetime) -> tuple[bytes, str]:
        if self.config.event_format == "simplified":
            return message.encode("utf-8"), SIMPLIFIED_CONTENT_TYPE
        root = ET.Element("Notification", xmlns=MNS_XML_NAMESPACE)
        for name, value in (
            ("TopicOwner", self.config.owner_account_id),
            ("TopicName", self.config.event_topic),
            ("Subscriber", self.config.owner_account_id),
            ("SubscriptionName", self.config.event_subscription),
            ("MessageId", message_id),
            ("MessageMD5", hashlib.md5(message.encode("utf-8"), usedforsecurity=False).hexdigest().upper()),
            ("Message", message),
            ("PublishTime", str(int(now.timestamp() * 1000))),
        ):
            ET.SubElement(root, name).text = value
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(
            root, encoding="utf-8", xml_declaration=False
        )
        return body, XML_CONTENT_TYPE

    # --- reading back

    def snapshot(self) -> dict[str, int]:
        """The push counters, for ``/__sandbox__/stats``."""
        with self._cond:
            return {**self._counts, "pending": len(self._heap) + self._busy}

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The last ``limit`` pushes queued (newest last): message id, event, attempts, outcome."""
        with self._cond:
            chosen = list(self._recent)[-limit:] if limit > 0 else []
            return [
                {
                    "messageId": item.message_id,
                    "event": item.event,
                    "attempts": item.attempts,
                    "lastStatus": item.status,
                    "outcome": item.outcome,
                    "history": list(item.history),
                }
                for item in chosen
            ]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued or being sent (tests); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    # --- the workers

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._heap)
                self._busy += 1
            status = self._push(delivery)
            with self._cond:
                self._busy -= 1
                delivery.attempts += 1
                delivery.status = status
                delivery.history.append(str(status) if status is not None else "no answer")
                self._counts["sent"] += 1
                if status == 204:
                    delivery.outcome = "delivered"
                    self._counts["succeeded"] += 1
                elif delivery.attempts >= self.config.event_max_attempts:
                    delivery.outcome = "gave-up"
                    self._counts["gave_up"] += 1
                    logger.warning(
                        "sandbox event push %s gave up after %d attempts",
                        delivery.message_id,
                        delivery.attempts,
                    )
                else:
                    self._counts["retried"] += 1
                    wait = self._retry_wait(delivery.attempts) * self.config.event_retry_scale
                    heapq.heappush(self._heap, (time.monotonic() + wait, next(self._sequence), delivery))
                self._cond.notify_all()

    def _retry_wait(self, attempts: int) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones (NotifyStrategy)."""
        if self.config.event_retry_strategy == "backoff":
            return random.uniform(10, 20)
        return float(min(2 ** (attempts - 1), 512))

    def _push(self, delivery: _Delivery) -> int | None:
        """One signed POST; the status, or None when nothing (or nothing in time) came back."""
        target = urlsplit(self.config.event_endpoint)
        path = target.path or DEFAULT_PATH
        if target.query:
            path = f"{path}?{target.query}"
        date = http_date(self.config.faults.now())
        content_md5 = base64.b64encode(
            hashlib.md5(delivery.body, usedforsecurity=False).hexdigest().encode("ascii")
        ).decode("ascii")
        headers = {
            "Date": date,
            "Content-Type": delivery.content_type,
            "Content-MD5": content_md5,
            "Content-Length": str(len(delivery.body)),
            "x-mns-request-id": secrets.token_hex(12).upper(),
            "x-mns-version": MNS_VERSION,
            "x-mns-signing-cert-url": base64.b64encode(self._cert_url.encode("utf-8")).decode("ascii"),
        }
        if self.config.event_format == "simplified":
            headers["x-mns-message-id"] = delivery.message_id
        headers["Authorization"] = self.signer.sign(
            string_to_sign(
                content_md5=content_md5,
                content_type=delivery.content_type,
                date=date,
                headers=headers,
                path=path,
            )
        )
        connection_class = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(
            target.hostname or "", target.port, timeout=self.config.event_timeout_seconds
        )
        try:
            connection.request("POST", path, body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return response.status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()


def _message_id() -> str:
    """Unique, in the shape MNS uses (``CB1A8E7EFFA19158-1-15CA022CE05-200000008``)."""
    return f"{secrets.token_hex(8).upper()}-1-{int(time.time() * 1000):011X}-{secrets.randbelow(10**9):09d}"
