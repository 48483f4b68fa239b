"""``POST /api/uploads/oss-events/``: verify an SMQ (MNS) push of OSS events and apply it.

In order, each step answered before the next costs anything: the body's size (413), the headers
(403), the ``Date`` within 15 minutes (403), the certificate URL's prefix (403), the certificate
(fetched once, cached; 503 when it cannot be had, so MNS retries), the RSA-SHA1 signature (403),
the body's Content-MD5 (403: the signature covers the header, the header covers the body), the
format (415 for SIMPLIFIED), the topic owner and name (403), the message id (a redelivery: 204,
nothing changes), the number of events (413) and their bucket (403). Then every event is applied
in one transaction with the message id; a database failure answers 503 and nothing is half-applied.
Nothing from the body or the headers is logged but the message id and counts.
"""

import base64
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from aliyun import mns
from aliyun.policy import bucket_owner_account_id

from ..models import ObjectEvent, ReceivedMessage
from ..notifications import PushRefused, envelope_parse, events_parse
from .events import change_apply

logger = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(minutes=15)


@dataclass(frozen=True)
class PushResult:
    """What a push did: ``duplicate`` (message seen before), events ``applied``, ``stale`` (older than
    the ledger), ``ignored`` (not a user's folder, or the same OSS request again)."""

    message_id: str
    duplicate: bool = False
    applied: int = 0
    stale: int = 0
    ignored: int = 0


def topic_owner() -> str:
    return settings.OSS_EVENTS_TOPIC_OWNER or bucket_owner_account_id(
        role_arn=settings.ALIYUN_STS_ROLE_ARN, override=settings.ALIYUN_OSS_OWNER_ACCOUNT_ID
    )


def _verify(*, path: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    lower = {name.lower(): value for name, value in headers.items()}
    authorization = lower.get("authorization", "")
    cert_header = lower.get("x-mns-signing-cert-url", "")
    date = lower.get("date", "")
    if not authorization or not cert_header or not date:
        raise PushRefused(403, "bad_signature", "The push is not signed.")
    try:
        sent = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        raise PushRefused(403, "bad_date", "The Date header is not an HTTP date.") from None
    if sent.tzinfo is None or abs(now - sent) > MAX_CLOCK_SKEW:
        raise PushRefused(403, "bad_date", "The Date header is more than 15 minutes off.")
    try:
        url = mns.certificate_url(cert_header, allowed_prefixes=settings.OSS_EVENTS_CERT_URL_PREFIXES)
        key = mns.signing_key(url, timeout_seconds=settings.OSS_EVENTS_CERT_TIMEOUT_SECONDS)
        content_md5 = lower.get("content-md5", "")
        text = mns.string_to_sign(
            content_md5=content_md5,
            content_type=lower.get("content-type", ""),
            date=date,
            headers={name: value for name, value in lower.items() if name.startswith("x-mns-")},
            path=path,
        )
        mns.signature_verify(key, authorization=authorization, text=text)
    except mns.MnsError as exc:
        if exc.code == "cert_unavailable":
            raise PushRefused(503, exc.code, "The signing certificate could not be fetched.") from None
        raise PushRefused(403, exc.code, str(exc)) from None
    digest = hashlib.md5(body, usedforsecurity=False)
    expected = {
        base64.b64encode(digest.hexdigest().encode("ascii")).decode("ascii"),  # MNS's example
        base64.b64encode(digest.digest()).decode("ascii"),  # RFC 1864, in case
    }
    if content_md5 not in expected:
        raise PushRefused(403, "bad_signature", "The body does not match its signed Content-MD5.")


def oss_push_receive(*, path: str, headers: Mapping[str, str], body: bytes) -> PushResult:
    """Verify and apply one push (see the module docstring). Raises ``PushRefused``."""
    now = datetime.now(UTC)
    _verify(path=path, headers=headers, body=body, now=now)
    envelope = envelope_parse(body)
    if envelope.topic_owner != topic_owner() or envelope.topic_name != settings.OSS_EVENTS_TOPIC_NAME:
        raise PushRefused(403, "wrong_topic", "The push is from a topic this server does not subscribe to.")
    changes = events_parse(
        envelope.message, bucket=settings.ALIYUN_OSS_BUCKET, max_events=settings.OSS_EVENTS_MAX_EVENTS
    )
    applied = stale = ignored = 0
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    ReceivedMessage.objects.create(message_id=envelope.message_id)
            except IntegrityError:
                return PushResult(envelope.message_id, duplicate=True)
            for change in changes:
                result = change_apply(change, source=ObjectEvent.Source.EVENT, message_id=envelope.message_id)
                if result is None or result.duplicate:
                    ignored += 1
                elif result.applied:
                    applied += 1
                else:
                    stale += 1
    except DatabaseError:
        logger.exception("Could not apply OSS push %s; answering 503 so MNS retries", envelope.message_id)
        raise PushRefused(503, "database_unavailable", "The database is unavailable; retry later.") from None
    logger.info("OSS push %s: %d applied, %d stale, %d ignored", envelope.message_id, applied, stale, ignored)
    return PushResult(envelope.message_id, applied=applied, stale=stale, ignored=ignored)
