"""The operator commands' seam around ``oss2``: bucket configuration with an administrator key, and
the doctor's probe upload with freshly minted user credentials.

Nothing here serves web requests (``aliyun/oss.py`` does, with the server's own key). SDK failures
come out as ``OssAdminError`` with Alibaba's code; "no such configuration" comes out as ``None``.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

import oss2
from django.conf import settings
from oss2 import models as oss_models
from oss2.exceptions import OssError as Oss2Error
from oss2.exceptions import RequestError

from aliyun.errors import AliyunError
from aliyun.ram import AdminCredentials

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


class OssAdminError(AliyunError):
    """``code``: Alibaba's (``AccessDenied``, ``NoSuchBucket``…) or ``unreachable``; ``status`` its HTTP status."""


# What ali-oss, oss2 and alibabacloud-oss-v2 read from answers in a browser (ETag: multipart).
CORS_EXPOSE_HEADERS = ("ETag", "x-oss-request-id", "x-oss-hash-crc64ecma")
CORS_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
CORS_MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class CorsRule:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...] = CORS_METHODS
    allowed_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = CORS_EXPOSE_HEADERS
    max_age_seconds: int | None = CORS_MAX_AGE_SECONDS

    def normalized(self) -> tuple[Any, ...]:
        """For comparison: order and case of methods and header names do not matter to OSS."""
        return (
            tuple(sorted(self.allowed_origins)),
            tuple(sorted(m.upper() for m in self.allowed_methods)),
            tuple(sorted(h.lower() for h in self.allowed_headers)),
            tuple(sorted(h.lower() for h in self.expose_headers)),
            self.max_age_seconds,
        )


@dataclass(frozen=True)
class LifecycleRule:
    """One rule: `expiration_days` deletes objects, `abort_multipart_days` aborts unfinished uploads."""

    rule_id: str
    prefix: str
    expiration_days: int | None = None
    abort_multipart_days: int | None = None
    status: str = "Enabled"
    # A rule of someone else's, as the SDK read it, so that re-applying the set keeps it whole.
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)


@dataclass(frozen=True)
class ProbeAnswer:
    """What OSS said to a probe request: its status and headers (names in lower case)."""

    status: int
    headers: dict[str, str]


def _bucket(auth: Any) -> oss2.Bucket:
    return oss2.Bucket(
        auth,
        settings.ALIYUN_OSS_ENDPOINT,
        settings.ALIYUN_OSS_BUCKET,
        connect_timeout=TIMEOUT_SECONDS,
        region=settings.ALIYUN_OSS_REGION,
    )


def _admin_bucket(credentials: AdminCredentials) -> oss2.Bucket:
    return _bucket(oss2.AuthV4(credentials.access_key_id, credentials.access_key_secret))


def _error(exc: Oss2Error, operation: str) -> OssAdminError:
    if isinstance(exc, RequestError):
        logger.warning("OSS unreachable during %s: %s", operation, type(exc.exception).__name__)
        return OssAdminError("unreachable", f"OSS could not be reached ({settings.ALIYUN_OSS_ENDPOINT})")
    return OssAdminError(
        exc.code or str(exc.status), f"OSS refused {operation}: {exc.code}", status=exc.status
    )


# --- bucket configuration (administrator key) ----------------------------------------------------


def bucket_cors(credentials: AdminCredentials) -> list[CorsRule] | None:
    """The bucket's CORS rules, or None when it has none (GetBucketCors)."""
    try:
        result = _admin_bucket(credentials).get_bucket_cors()
    except oss2.exceptions.NoSuchCors:
        return None
    except Oss2Error as exc:
        if exc.code == "NoSuchCORSConfiguration":
            return None
        raise _error(exc, "GetBucketCors") from None
    return [
        CorsRule(
            allowed_origins=tuple(rule.allowed_origins),
            allowed_methods=tuple(rule.allowed_methods),
            allowed_headers=tuple(rule.allowed_headers),
            expose_headers=tuple(rule.expose_headers),
            max_age_seconds=rule.max_age_seconds,
        )
        for rule in result.rules
    ]


def set_bucket_cors(credentials: AdminCredentials, rules: list[CorsRule] | tuple[CorsRule, ...]) -> None:
    """Replace the bucket's CORS rules (PutBucketCors)."""
    config = oss_models.BucketCors(
        [
            oss_models.CorsRule(
                allowed_origins=list(rule.allowed_origins),
                allowed_methods=list(rule.allowed_methods),
                allowed_headers=list(rule.allowed_headers),
                expose_headers=list(rule.expose_headers),
                max_age_seconds=rule.max_age_seconds,
            )
            for rule in rules
        ]
    )
    try:
        _admin_bucket(credentials).put_bucket_cors(config)
    except Oss2Error as exc:
        raise _error(exc, "PutBucketCors") from None


def bucket_lifecycle(credentials: AdminCredentials) -> list[LifecycleRule] | None:
    """The bucket's lifecycle rules, or None when it has none (GetBucketLifecycle)."""
    try:
        result = _admin_bucket(credentials).get_bucket_lifecycle()
    except oss2.exceptions.NoSuchLifecycle:
        return None
    except Oss2Error as exc:
        if exc.code == "NoSuchLifecycle":
            return None
        raise _error(exc, "GetBucketLifecycle") from None
    rules = []
    for rule in result.rules:
        expiration = rule.expiration.days if rule.expiration is not None else None
        abort = rule.abort_multipart_upload.days if rule.abort_multipart_upload is not None else None
        rules.append(
            LifecycleRule(
                rule_id=rule.id or "",
                prefix=rule.prefix or "",
                expiration_days=expiration,
                abort_multipart_days=abort,
                status=rule.status,
                raw=rule,
            )
        )
    return rules


def set_bucket_lifecycle(credentials: AdminCredentials, rules: list[LifecycleRule]) -> None:
    """Replace the bucket's lifecycle rules (PutBucketLifecycle); rules read with ``raw`` go back as read."""
    converted = []
    for rule in rules:
        if rule.raw is not None:
            converted.append(rule.raw)
            continue
        converted.append(
            oss_models.LifecycleRule(
                rule.rule_id,
                rule.prefix,
                status=rule.status,
                expiration=oss_models.LifecycleExpiration(days=rule.expiration_days)
                if rule.expiration_days is not None
                else None,
                abort_multipart_upload=oss_models.AbortMultipartUpload(days=rule.abort_multipart_days)
                if rule.abort_multipart_days is not None
                else None,
            )
        )
    try:
        _admin_bucket(credentials).put_bucket_lifecycle(oss_models.BucketLifecycle(converted))
    except Oss2Error as exc:
        raise _error(exc, "PutBucketLifecycle") from None


def bucket_acl(credentials: AdminCredentials) -> str:
    """``private``, ``public-read`` or ``public-read-write`` (GetBucketAcl)."""
    try:
        return _admin_bucket(credentials).get_bucket_acl().acl
    except Oss2Error as exc:
        raise _error(exc, "GetBucketAcl") from None


def make_bucket_private(credentials: AdminCredentials) -> None:
    """PutBucketAcl private: no anonymous access."""
    try:
        _admin_bucket(credentials).put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    except Oss2Error as exc:
        raise _error(exc, "PutBucketAcl") from None


# --- the doctor's probe (temporary user credentials) ---------------------------------------------


def _sts_bucket(credentials: TemporaryCredentials) -> oss2.Bucket:
    provider = oss2.credentials.StaticCredentialsProvider(
        credentials.access_key_id, credentials.access_key_secret, credentials.security_token
    )
    return _bucket(oss2.ProviderAuthV4(provider))


def probe_put(credentials: TemporaryCredentials, key: str, data: bytes, *, origin: str | None) -> ProbeAnswer:
    """PutObject as a browser's SDK would (with its ``Origin``, when given). Raises ``OssAdminError``."""
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    try:
        result = _sts_bucket(credentials).put_object(key, data, headers=headers)
    except Oss2Error as exc:
        raise _error(exc, "PutObject") from None
    return ProbeAnswer(result.status, {name.lower(): value for name, value in result.headers.items()})
