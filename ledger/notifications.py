"""Reading an SMQ (MNS) push of OSS events: the XML envelope, the Base64 message, the events in it.

Pure functions over bytes that a signature already vouched for; every refusal is a ``PushRefused``
with the HTTP status the receiver answers and a stable code. Shapes and their sources:

- The XML body ("HttpEndpoint" page, NotifyContentFormat XML): ``<Notification
  xmlns="http://mns.aliyuncs.com/doc/v1/">`` with ``TopicOwner``, ``TopicName``, ``Subscriber``,
  ``SubscriptionName``, ``MessageId``, ``MessageMD5`` (upper-case hex MD5 of ``Message``),
  ``Message``, ``PublishTime``. SIMPLIFIED (the bare message, no topic to check) is refused with 415:
  the subscription ``aliyun_setup`` prints uses XML, so the topic can be checked.
- The message ("OSS event notifications" in the SMQ guide): Base64 of
  ``{"events": [{"eventName", "eventTime", "oss": {"bucket": {"name"}, "object": {"key", "size",
  "eTag"}}, "requestParameters": {"sourceIPAddress"}, "responseElements": {"requestId"},
  "userIdentity": {"principalId"}}]}``.

Not documented where we could read it, so read safely both ways: whether ``key`` is URL-encoded
(``event_key``) and what ``principalId`` holds for an STS session (``ledger.services.events``).
"""

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from .services.events import ObjectChange

MNS_NAMESPACE = "{http://mns.aliyuncs.com/doc/v1/}"
MAX_KEY_BYTES = 1023
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class PushRefused(Exception):
    """The push is not one to apply: answered with ``status`` and ``code`` (MNS retries non-204)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Envelope:
    topic_owner: str
    topic_name: str
    message_id: str
    message: str  # Base64 of the event JSON


def envelope_parse(body: bytes) -> Envelope:
    """The XML envelope of a push. Refuses a SIMPLIFIED (non-XML) body with 415 ``unsupported_format``,
    a document type declaration (entity expansion) and malformed XML with 400 ``malformed``."""
    stripped = body.lstrip()
    if not stripped.startswith(b"<"):
        raise PushRefused(415, "unsupported_format", "Only the XML notification format is accepted.")
    try:
        root = DefusedET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise PushRefused(400, "malformed", "A document type declaration is not accepted.") from None
    except ParseError:
        raise PushRefused(400, "malformed", "The body is not well-formed XML.") from None
    if root.tag not in (f"{MNS_NAMESPACE}Notification", "Notification"):
        raise PushRefused(400, "malformed", "The body is not an MNS notification.")

    def text(name: str) -> str:
        element = root.find(f"{MNS_NAMESPACE}{name}")
        if element is None:
            element = root.find(name)
        return (element.text or "").strip() if element is not None else ""

    envelope = Envelope(text("TopicOwner"), text("TopicName"), text("MessageId"), text("Message"))
    if not envelope.message_id or len(envelope.message_id) > 128 or not envelope.message:
        raise PushRefused(400, "malformed", "The notification has no message id or no message.")
    md5 = text("MessageMD5")
    if (
        md5
        and md5.upper()
        != hashlib.md5(envelope.message.encode("utf-8"), usedforsecurity=False).hexdigest().upper()
    ):
        raise PushRefused(400, "malformed", "The message does not match its MessageMD5.")
    return envelope


def event_key(raw: str) -> str:
    """The object key an event names. Alibaba does not say whether it is URL-encoded: a key with a
    ``%XX`` escape and no character that URL-encoding would have escaped is read as encoded; any
    other key as it is. A wrong guess (a literal ``%41`` in a key) shows as drift at the next
    reconcile, which corrects it."""
    if _PERCENT_ESCAPE.search(raw) and all(ch.isascii() and ch.isprintable() and ch != " " for ch in raw):
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return raw
        return decoded
    return raw


def _event_time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("eventTime")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("eventTime without a zone")
    return parsed


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def events_parse(message: str, *, bucket: str, max_events: int) -> list[ObjectChange]:
    """The object changes in a message for ``bucket``. 413 ``too_many_events`` above ``max_events``;
    403 ``wrong_bucket`` for another bucket's event; 400 ``malformed`` for anything unreadable.
    Events that are neither ObjectCreated nor ObjectRemoved are skipped."""
    try:
        document = json.loads(base64.b64decode(message.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeError, ValueError):
        raise PushRefused(400, "malformed", "The message is not Base64 of JSON.") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise PushRefused(400, "malformed", "The message has no events list.")
    if len(events) > max_events:
        raise PushRefused(413, "too_many_events", f"At most {max_events} events per push.")
    changes = []
    for event in events:
        try:
            change = _change(event, bucket=bucket)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise PushRefused(
                400, "malformed", "An event lacks a field or has one of the wrong type."
            ) from None
        if change is not None:
            changes.append(change)
    return changes


def _change(event: dict[str, Any], *, bucket: str) -> ObjectChange | None:
    if event.get("eventSource", "acs:oss") != "acs:oss":
        return None
    group, _, _name = str(event["eventName"]).partition(":")
    if group not in ("ObjectCreated", "ObjectRemoved"):
        return None
    oss = event["oss"]
    if oss["bucket"]["name"] != bucket:
        raise PushRefused(403, "wrong_bucket", "The event is for another bucket.")
    obj = oss["object"]
    raw_key = obj["key"]
    if not isinstance(raw_key, str) or not raw_key:
        raise ValueError("key")
    key = event_key(raw_key)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES or "\x00" in key:
        raise ValueError("key")
    removed = group == "ObjectRemoved"
    size = obj.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size")
    return ObjectChange(
        key=key,
        removed=removed,
        size=0 if removed else size,
        event_time=_event_time(event["eventTime"]),
        event_name=_text(event["eventName"], 64),
        etag=_text(obj.get("eTag", ""), 128),
        request_id=_text((event.get("responseElements") or {}).get("requestId", ""), 64),
        principal_id=_text((event.get("userIdentity") or {}).get("principalId", ""), 255),
        source_ip=_text((event.get("requestParameters") or {}).get("sourceIPAddress", ""), 64),
    )
