"""The server's own identity: the one place that decides where its Alibaba Cloud credentials come from.

Every server-side client of the seam signs with what this module hands out: the STS SDK (AssumeRole for
users, GetCallerIdentity) takes ``sdk_credential()`` as its ``Config.credential``, oss2 (the server's object
calls and signed URLs) takes ``oss_credentials_provider()`` through ``oss2.ProviderAuthV4``. Nothing else
reads a key.

Sources, first configured wins (``core.aliyun_names.server_identity_sources``):

- ``ALIYUN_ACCESS_KEY_ID``/``SECRET``: a long-term AccessKey (it wins over any provider; uploads.W040).
- RRSA on ACK: ``ALIBABA_CLOUD_ROLE_ARN`` + ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN`` +
  ``ALIBABA_CLOUD_OIDC_TOKEN_FILE``: AssumeRoleWithOIDC with the projected token, which the library reads
  from the file again at every refresh (the kubelet rotates it). Alibaba: "Use RRSA to authorize different
  pods to access different cloud services".
- An ECS instance RAM role: ``ALIBABA_CLOUD_ECS_METADATA`` (the role's name), from the metadata service
  (Alibaba: "Instance RAM roles").
- A credentials URI: ``ALIBABA_CLOUD_CREDENTIALS_URI``, a local sidecar answering
  ``{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}``
  (Alibaba: "Manage access credentials" of the Python credentials library).

The providers are alibabacloud-credentials' own, built from Django settings (``config/settings/base.py``
reads the standard variables) and passed every value explicitly, so the library's import-time reading of
the environment never decides and tests change the source with ``override_settings``. The library refreshes
temporary credentials itself once less than 15 minutes are left (``RefreshCachedSupplier``: the caller that
finds them stale refreshes while others keep waiting on its lock; the ECS provider also refreshes in the
background), so a request never uses expired credentials; a refresh that fails raises
``ServerIdentityError`` (code ``sts_unavailable``) and logs one line naming the source, never a secret.

Facts about alibabacloud-credentials 1.0.12 this relies on (read in its source): the OIDC provider calls STS
over HTTPS only and takes a custom endpoint only as ``sts_endpoint`` (``host[:port]``); it trusts the
system's CA store and ``SSL_CERT_FILE`` (the local sandbox's CA: docs/operating/keyless.md).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import darabonba.core  # noqa: F401  (defines the "darabonba-core" logger: imported before it is quieted)
import oss2
import Tea.core  # noqa: F401  (defines the "alibabacloud-tea" logger)
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.http import HttpOptions
from alibabacloud_credentials.provider import (
    EcsRamRoleCredentialsProvider,
    OIDCRoleArnCredentialsProvider,
    StaticAKCredentialsProvider,
    URLCredentialsProvider,
)
from alibabacloud_credentials_api import ICredentials, ICredentialsProvider
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from aliyun.errors import AliyunError
from core.aliyun_names import (
    ACCESS_KEY,
    CREDENTIALS_URI,
    ECS_RAM_ROLE,
    RRSA,
    is_loopback_endpoint,
    server_identity_sources,
)
from core.middleware import strip_query_strings
from core.redaction import CloudSecretsLogFilter

logger = logging.getLogger(__name__)

# The loggers of Alibaba's SDKs. Each adds its own stderr handler and sets its own level when imported,
# which bypasses our handlers and filters; undone here, once the imports above have run.
SDK_LOGGERS = ("credentials", "alibabacloud-tea", "darabonba-core")


def quiet_sdk_loggers() -> None:
    """Warnings and worse only, through our handlers (by propagation), secrets cut out by
    ``CloudSecretsLogFilter`` on the logger itself. Idempotent."""
    for name in SDK_LOGGERS:
        sdk_logger = logging.getLogger(name)
        for handler in list(sdk_logger.handlers):
            sdk_logger.removeHandler(handler)
        sdk_logger.setLevel(logging.WARNING)
        sdk_logger.propagate = True
        if not any(isinstance(f, CloudSecretsLogFilter) for f in sdk_logger.filters):
            sdk_logger.addFilter(CloudSecretsLogFilter())


quiet_sdk_loggers()

# Connect and read timeouts of the identity providers' own calls (AssumeRoleWithOIDC, the URI, the ECS
# metadata service), milliseconds: a refresh holds one request for at most about this long.
PROVIDER_CONNECT_TIMEOUT_MS = 2000
PROVIDER_READ_TIMEOUT_MS = 5000


class ServerIdentityError(AliyunError):
    """The server's own credentials could not be had (a refresh failed, or no source is configured).

    ``code`` is ``sts_unavailable``; ``source`` is the ``ServerIdentity.description`` of the source that
    failed. The message never holds a secret.
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__("sts_unavailable", message, retry_after=5)
        self.source = source


@dataclass(frozen=True)
class ServerIdentity:
    """Which source the server's credentials come from: ``kind`` one of ``access_key``, ``rrsa``,
    ``ecs_ram_role``, ``credentials_uri``; ``description`` names it for logs and the doctor (no secret,
    no query string); ``temporary``: its credentials expire and are refreshed."""

    kind: str
    description: str
    temporary: bool
    also_configured: tuple[str, ...] = ()  # other sources set but not used (uploads.W040, W042)


@dataclass(frozen=True)
class ServerCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)  # "" for an AccessKey
    expiration: datetime | None  # UTC; None for an AccessKey, which does not expire
    source: str  # the ServerIdentity's description


def configured_identity_sources() -> list[str]:
    """The identity sources the settings configure, the one that wins first (``server_identity_sources``)."""
    return server_identity_sources(
        access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
        role_arn=settings.ALIBABA_CLOUD_ROLE_ARN,
        oidc_provider_arn=settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
        oidc_token_file=settings.ALIBABA_CLOUD_OIDC_TOKEN_FILE,
        ecs_metadata=settings.ALIBABA_CLOUD_ECS_METADATA,
        credentials_uri=settings.ALIBABA_CLOUD_CREDENTIALS_URI,
    )


def server_identity() -> ServerIdentity:
    """The identity source the settings select. Raises ``ServerIdentityError`` when there is none."""
    sources = configured_identity_sources()
    if not sources:
        raise ServerIdentityError(
            "No server identity is configured: set ALIYUN_ACCESS_KEY_ID/SECRET or a credentials provider.",
            source="none",
        )
    kind, others = sources[0], tuple(sources[1:])
    descriptions = {
        ACCESS_KEY: lambda: f"AccessKey {settings.ALIYUN_ACCESS_KEY_ID} (ALIYUN_ACCESS_KEY_ID)",
        RRSA: lambda: (
            f"RRSA: AssumeRoleWithOIDC of {settings.ALIBABA_CLOUD_ROLE_ARN} with the token file "
            f"{settings.ALIBABA_CLOUD_OIDC_TOKEN_FILE} at {oidc_sts_endpoint()}"
        ),
        ECS_RAM_ROLE: lambda: (
            f"ECS RAM role {settings.ALIBABA_CLOUD_ECS_METADATA} (instance metadata service)"
        ),
        CREDENTIALS_URI: lambda: (
            f"credentials URI {strip_query_strings(settings.ALIBABA_CLOUD_CREDENTIALS_URI)}"
        ),
    }
    return ServerIdentity(
        kind=kind, description=descriptions[kind](), temporary=kind != ACCESS_KEY, also_configured=others
    )


def oidc_sts_endpoint() -> str:
    """Where AssumeRoleWithOIDC goes (``host[:port]``, over HTTPS): ``ALIYUN_STS_HTTPS_ENDPOINT``, else
    ``ALIYUN_STS_ENDPOINT`` unless that is a plain-http loopback address (uploads.E044 refuses that)."""
    if settings.ALIYUN_STS_HTTPS_ENDPOINT:
        return settings.ALIYUN_STS_HTTPS_ENDPOINT
    endpoint = settings.ALIYUN_STS_ENDPOINT
    return "" if is_loopback_endpoint(endpoint) else endpoint


def _library_provider(identity: ServerIdentity) -> ICredentialsProvider:
    http = HttpOptions(connect_timeout=PROVIDER_CONNECT_TIMEOUT_MS, read_timeout=PROVIDER_READ_TIMEOUT_MS)
    if identity.kind == ACCESS_KEY:
        return StaticAKCredentialsProvider(
            access_key_id=settings.ALIYUN_ACCESS_KEY_ID, access_key_secret=settings.ALIYUN_ACCESS_KEY_SECRET
        )
    if identity.kind == RRSA:
        return OIDCRoleArnCredentialsProvider(
            role_arn=settings.ALIBABA_CLOUD_ROLE_ARN,
            oidc_provider_arn=settings.ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
            oidc_token_file_path=settings.ALIBABA_CLOUD_OIDC_TOKEN_FILE,
            role_session_name=settings.ALIBABA_CLOUD_ROLE_SESSION_NAME,
            duration_seconds=settings.ALIYUN_SERVER_SESSION_SECONDS,
            sts_endpoint=oidc_sts_endpoint() or None,
            http_options=http,
        )
    if identity.kind == ECS_RAM_ROLE:
        return EcsRamRoleCredentialsProvider(role_name=settings.ALIBABA_CLOUD_ECS_METADATA, http_options=http)
    return URLCredentialsProvider(uri=settings.ALIBABA_CLOUD_CREDENTIALS_URI, http_options=http)


class _ReportingProvider(ICredentialsProvider):
    """The library's provider, with our error type and log lines: a failure names the source (and the
    exception's type, never its text, which may quote a URL with a token); new temporary credentials log
    their AccessKeyId and expiry once."""

    def __init__(self, identity: ServerIdentity) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._last_key_id = ""
        self.refreshes = 0  # how many times new temporary credentials came in
        try:
            self._inner = _library_provider(identity)
        except (ValueError, OSError) as exc:  # e.g. ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
            logger.error("Server identity (%s) cannot be used: %s", identity.description, type(exc).__name__)
            self._inner = None

    def get_credentials(self) -> ICredentials:
        if self._inner is None:
            raise ServerIdentityError(
                _("The server's Alibaba Cloud identity is not usable."), source=self.identity.description
            )
        try:
            credentials = self._inner.get_credentials()
            if not (credentials.get_access_key_id() and credentials.get_access_key_secret()):
                raise ValueError("credentials without a key")
        except Exception as exc:
            logger.error(
                "Server identity (%s) could not get credentials: %s",
                self.identity.description,
                type(exc).__name__,
            )
            raise ServerIdentityError(
                _("The server could not renew its Alibaba Cloud credentials."),
                source=self.identity.description,
            ) from None
        key_id = credentials.get_access_key_id()
        if self.identity.temporary and key_id != self._last_key_id:
            with self._lock:
                if key_id != self._last_key_id:
                    self._last_key_id = key_id
                    self.refreshes += 1
                    logger.info(
                        "Server identity (%s): credentials %s, valid until %s",
                        self.identity.description,
                        key_id,
                        _expiration(credentials),
                    )
        return credentials

    async def get_credentials_async(self) -> ICredentials:
        return self.get_credentials()

    def get_provider_name(self) -> str:
        return self._inner.get_provider_name() if self._inner is not None else self.identity.kind


def _expiration(credentials: ICredentials) -> datetime | None:
    """The library's expiration (epoch seconds, or None for a key that does not expire) as UTC."""
    expiration = credentials.get_expiration() if hasattr(credentials, "get_expiration") else None
    if not expiration or expiration < 0:
        return None
    return datetime.fromtimestamp(int(expiration), tz=UTC)


@lru_cache(maxsize=1)
def _identified_provider() -> _ReportingProvider:
    return _ReportingProvider(server_identity())


def _provider() -> _ReportingProvider:
    """The provider the settings select; ``ServerIdentityError`` (logged) when none is configured."""
    try:
        return _identified_provider()
    except ServerIdentityError as exc:
        logger.error("Server identity: %s", exc)
        raise


_IDENTITY_SETTINGS = (
    "ALIYUN_ACCESS_KEY_",
    "ALIBABA_CLOUD_",
    "ALIYUN_STS_ENDPOINT",
    "ALIYUN_STS_HTTPS_ENDPOINT",
    "ALIYUN_SERVER_SESSION_SECONDS",
)


@receiver(setting_changed)
def _reset_provider(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(_IDENTITY_SETTINGS):
        _identified_provider.cache_clear()


def server_credentials() -> ServerCredentials:
    """The server's credentials now, refreshed by the library when less than 15 minutes are left.
    Raises ``ServerIdentityError``."""
    provider = _provider()
    credentials = provider.get_credentials()
    return ServerCredentials(
        access_key_id=credentials.get_access_key_id(),
        access_key_secret=credentials.get_access_key_secret(),
        security_token=credentials.get_security_token() or "",
        expiration=_expiration(credentials),
        source=provider.identity.description,
    )


def server_credentials_refreshes() -> int:
    """How many sets of temporary credentials this process has taken in so far (0 for an AccessKey)."""
    return _provider().refreshes


class _CurrentProvider(ICredentialsProvider):
    """Always the provider the settings select now: SDK clients cached elsewhere keep working after
    ``override_settings`` changes the identity."""

    def get_credentials(self) -> ICredentials:
        return _provider().get_credentials()

    async def get_credentials_async(self) -> ICredentials:
        return _provider().get_credentials()

    def get_provider_name(self) -> str:
        return "server_identity"  # asked when a client is built: must not look the identity up then


def sdk_credential() -> CredentialClient:
    """For ``alibabacloud_tea_openapi.models.Config(credential=…)``: the STS SDK asks it at every call."""
    return CredentialClient(provider=_CurrentProvider())


class _OssCredentialsProvider(oss2.credentials.CredentialsProvider):
    """oss2's provider interface over the same credentials (oss2 asks at every request and URL)."""

    def get_credentials(self) -> oss2.credentials.Credentials:
        current = server_credentials()
        return oss2.credentials.Credentials(
            current.access_key_id, current.access_key_secret, current.security_token
        )


def oss_credentials_provider() -> oss2.credentials.CredentialsProvider:
    """For ``oss2.ProviderAuthV4``."""
    return _OssCredentialsProvider()
