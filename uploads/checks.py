"""System checks for the Alibaba Cloud settings: fail at start-up, not at the first upload.

No network calls here; a live probe of STS belongs in a management command.
"""

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from aliyun.credentials import configured_identity_sources
from core.aliyun_names import (
    ACCESS_KEY,
    ACCOUNT_ID,
    BUCKET_NAME,
    ROLE_ARN,
    RRSA,
    is_loopback_endpoint,
    is_loopback_host,
)
from core.health import READINESS_TAG

from .purposes import purpose_setting_problems

REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")
STS_ENDPOINT = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$")
DURATION_MIN, DURATION_MAX = 900, 43200


# Alibaba's mobile SDKs fetch new credentials once less than this is left before Expiration: Android's
# OSSFederationCredentialProvider (getExpiration() - 5 * 60) and iOS's OSSModel getToken (interval < 5 * 60).
CLIENT_REFRESH_MARGIN_SECONDS = 300


@register(Tags.security, READINESS_TAG, deploy=False)
def check_aliyun_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    role_arn = settings.ALIYUN_STS_ROLE_ARN
    if role_arn and not ROLE_ARN.match(role_arn):
        errors.append(
            Error(
                f"ALIYUN_STS_ROLE_ARN {role_arn!r} is not a RAM role ARN.",
                hint="Use acs:ram::<account-id>:role/<role-name>, as shown on the role's page in the RAM console.",
                id="uploads.E001",
            )
        )
    bucket = settings.ALIYUN_OSS_BUCKET
    if bucket and not BUCKET_NAME.match(bucket):
        errors.append(
            Error(
                f"ALIYUN_OSS_BUCKET {bucket!r} is not a valid OSS bucket name.",
                hint="3-63 characters: lower-case letters, digits and hyphens, starting and ending with a letter or digit.",
                id="uploads.E002",
            )
        )
    duration = settings.ALIYUN_STS_DURATION_SECONDS
    if not DURATION_MIN <= duration <= DURATION_MAX:
        errors.append(
            Error(
                f"ALIYUN_STS_DURATION_SECONDS is {duration}; STS accepts {DURATION_MIN} to {DURATION_MAX}.",
                hint="Also keep it at or below the role's MaxSessionDuration (3600 unless you raised it).",
                id="uploads.E003",
            )
        )
    if not settings.DEBUG:
        missing = [
            name
            for name in ("ALIYUN_STS_ROLE_ARN", "ALIYUN_OSS_BUCKET")  # the server's identity: uploads.E040
            if not getattr(settings, name)
        ]
        if missing:
            errors.append(
                Error(
                    f"Missing Alibaba Cloud settings: {', '.join(missing)}.",
                    hint="Set them in the environment (see .env.example); they have no defaults when DJANGO_DEBUG is off.",
                    id="uploads.E004",
                )
            )
    if not STS_ENDPOINT.match(settings.ALIYUN_STS_ENDPOINT):
        errors.append(
            Error(
                f"ALIYUN_STS_ENDPOINT {settings.ALIYUN_STS_ENDPOINT!r} is not host[:port].",
                hint="Give a bare host such as sts.aliyuncs.com or 127.0.0.1:8701, without http:// (the SDK signs it as the Host header).",
                id="uploads.E005",
            )
        )
    endpoint = urlsplit(settings.ALIYUN_OSS_ENDPOINT)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        errors.append(
            Error(
                f"ALIYUN_OSS_ENDPOINT {settings.ALIYUN_OSS_ENDPOINT!r} is not an http(s) URL.",
                hint="For example https://oss-cn-hangzhou.aliyuncs.com, or http://127.0.0.1:8702 for the local sandbox.",
                id="uploads.E006",
            )
        )
    if not REGION.match(settings.ALIYUN_OSS_REGION):
        errors.append(
            Error(
                f"ALIYUN_OSS_REGION {settings.ALIYUN_OSS_REGION!r} is not a region id.",
                hint="Use the standard id such as cn-hangzhou (without an oss- prefix).",
                id="uploads.E007",
            )
        )
    if settings.ALIYUN_STS_MAX_ATTEMPTS < 1:
        errors.append(
            Error(
                "ALIYUN_STS_MAX_ATTEMPTS must be at least 1.",
                hint="1 means no retry; 3 is a sensible default.",
                id="uploads.E008",
            )
        )
    if settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS < 0:
        errors.append(
            Error(
                "ALIYUN_STS_STALE_IF_ERROR_SECONDS must not be negative.",
                hint="0 turns the fallback off; 600 hands out a user's credentials during an STS outage while 10 minutes are left.",
                id="uploads.E009",
            )
        )
    for name, check_id in (("UPLOAD_QUOTA_BYTES", "uploads.E010"), ("UPLOAD_QUOTA_OBJECTS", "uploads.E011")):
        if getattr(settings, name) < 0:
            errors.append(
                Error(
                    f"{name} must not be negative.",
                    hint="0 means no limit; the default is 104857600 bytes (100 MiB) and 1000 objects per user.",
                    id=check_id,
                )
            )
    if settings.ALIYUN_STS_REUSE_MARGIN_SECONDS < CLIENT_REFRESH_MARGIN_SECONDS:
        errors.append(
            Error(
                f"ALIYUN_STS_REUSE_MARGIN_SECONDS is {settings.ALIYUN_STS_REUSE_MARGIN_SECONDS}; below "
                f"{CLIENT_REFRESH_MARGIN_SECONDS} the server hands out credentials that Alibaba's Android and iOS OSS "
                "SDKs fetch again before every request (they refresh 5 minutes before Expiration).",
                hint="Keep it at 300 or more, plus what client clocks may be off by; the default 900 leaves every answer at least 15 minutes.",
                id="uploads.E013",
            )
        )
    stale_floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    if (
        0 < settings.ALIYUN_STS_REUSE_MARGIN_SECONDS <= stale_floor
        and settings.ALIYUN_STS_REUSE_MARGIN_SECONDS < duration
    ):
        errors.append(
            Warning(
                "ALIYUN_STS_STALE_IF_ERROR_SECONDS is not below ALIYUN_STS_REUSE_MARGIN_SECONDS, so a failing STS is never bridged with a user's previous credentials.",
                hint="Credentials are refreshed once less than the margin is left and may stand in while more than the floor is left: keep the floor below the margin (0 turns the fallback off on purpose).",
                id="uploads.W003",
            )
        )
    owner_override = settings.ALIYUN_OSS_OWNER_ACCOUNT_ID.strip()
    if owner_override and not ACCOUNT_ID.match(owner_override):
        errors.append(
            Error(
                f"ALIYUN_OSS_OWNER_ACCOUNT_ID {owner_override!r} is not an Alibaba Cloud account id.",
                hint="Give the bucket owner's numeric account id (the digits in acs:ram::<account-id>:role/...), or leave it empty to use the account of ALIYUN_STS_ROLE_ARN.",
                id="uploads.E012",
            )
        )
    if settings.ALIYUN_STS_REUSE_MARGIN_SECONDS >= duration and DURATION_MIN <= duration:
        errors.append(
            Warning(
                "ALIYUN_STS_REUSE_MARGIN_SECONDS is not below ALIYUN_STS_DURATION_SECONDS, so credentials are never reused.",
                hint="Every request will call AssumeRole (limited to 100 calls/s per account).",
                id="uploads.W001",
            )
        )
    return errors


@register(Tags.caches, deploy=True)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list:
    """Reuse, the per-user lock and the throttles only hold across workers on a shared cache."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not settings.DEBUG and backend.endswith("LocMemCache"):
        return [
            Warning(
                "The default cache is per process: token reuse, the STS lock and rate limits are not shared between workers.",
                hint="Set REDIS_URL (e.g. redis://cache.internal:6379/0) in production.",
                id="uploads.W002",
            )
        ]
    return []


@register(Tags.security)
def check_role_session_duration(app_configs: Any = None, **kwargs: Any) -> list:
    """A new RAM role allows 3600 s; a longer configured duration fails at the first real AssumeRole."""
    duration = settings.ALIYUN_STS_DURATION_SECONDS
    if 3600 < duration <= DURATION_MAX and configured_identity_sources()[:1] == [
        ACCESS_KEY
    ]:  # keyless: uploads.E042
        return [
            Warning(
                f"ALIYUN_STS_DURATION_SECONDS is {duration}, above the 3600 s a new RAM role allows.",
                hint=(
                    f"Raise the role's MaxSessionDuration to at least {duration} (python manage.py aliyun_setup "
                    "--apply does it, or RAM console → role → maximum session duration); otherwise STS answers "
                    "InvalidParameter.DurationSeconds. python manage.py aliyun_doctor checks it live."
                ),
                id="uploads.W014",
            )
        ]
    return []


@register(Tags.security, READINESS_TAG, deploy=False)
def check_credential_url_lifetime(app_configs: Any = None, **kwargs: Any) -> list:
    """A credential URL stands in for a sign-in: it may not outlive the refresh token."""
    minutes = settings.CREDENTIAL_URL_LIFETIME_MINUTES
    refresh_minutes = int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds() // 60)
    if not 1 <= minutes <= refresh_minutes:
        return [
            Error(
                f"CREDENTIAL_URL_LIFETIME_MINUTES is {minutes}; it must be 1 to {refresh_minutes} "
                "(the refresh token's lifetime, JWT_REFRESH_DAYS).",
                hint="1440 (a day) is the default; an app asks for a new URL when its old one expires.",
                id="uploads.E020",
            )
        ]
    return []


# The key pair the Makefile gives the local sandbox (`make run`): public, so never a real RAM user's.
SANDBOX_KEY_PAIR = ("sandbox-ram-user", "sandbox-ram-user-secret")


@register(Tags.security, READINESS_TAG, deploy=False)
def check_production_endpoints_and_keys(app_configs: Any = None, **kwargs: Any) -> list:
    """With DEBUG off: no plain-http OSS endpoint off this machine, no sandbox key pair."""
    if settings.DEBUG:
        return []
    errors: list = []
    endpoint = urlsplit(settings.ALIYUN_OSS_ENDPOINT)
    if endpoint.scheme == "http" and endpoint.hostname and not is_loopback_host(endpoint.hostname):
        errors.append(
            Error(
                f"ALIYUN_OSS_ENDPOINT {settings.ALIYUN_OSS_ENDPOINT!r} is plain http on a host that is not this machine.",
                hint="Browsers and apps would send STS credentials and files unencrypted: use https://, e.g. https://oss-cn-hangzhou.aliyuncs.com (http is for the local sandbox on 127.0.0.1 only).",
                id="uploads.E030",
            )
        )
    if (
        settings.ALIYUN_ACCESS_KEY_ID in SANDBOX_KEY_PAIR
        or settings.ALIYUN_ACCESS_KEY_SECRET in SANDBOX_KEY_PAIR
    ):
        errors.append(
            Error(
                "ALIYUN_ACCESS_KEY_ID / ALIYUN_ACCESS_KEY_SECRET are the local sandbox's published key pair.",
                hint="Set the AccessKey pair of the RAM user allowed to call AssumeRole (docs/operating/aliyun.md), or DJANGO_DEBUG=1 for the sandbox.",
                id="uploads.E031",
            )
        )
    return errors


# --- The server's own identity (aliyun/credentials.py; docs/operating/keyless.md) ------------

# Alibaba's limit for a role assumed with a role's temporary credentials (role chaining): STS answers
# InvalidParameter.DurationSeconds above it, whatever the target role's MaxSessionDuration
# (Alibaba: "AssumeRole", DurationSeconds; the sandbox enforces it too).
CHAINED_SESSION_MAX_SECONDS = 3600
# alibabacloud-credentials treats temporary credentials as stale 15 minutes before they expire and
# renews them then; a session much shorter than twice that is renewed on nearly every call.
LIBRARY_STALE_SECONDS = 15 * 60
SERVER_SESSION_MIN, SERVER_SESSION_MAX = 900, 43200

_RRSA_SETTINGS = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)


_SOURCE_NAMES = {
    "access_key": "the AccessKey (ALIYUN_ACCESS_KEY_ID)",
    "rrsa": "RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
    "ecs_ram_role": "the ECS RAM role (ALIBABA_CLOUD_ECS_METADATA)",
    "credentials_uri": "the credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI)",
}


@register(Tags.security, READINESS_TAG, deploy=False)
def check_server_identity(app_configs: Any = None, **kwargs: Any) -> list:
    """Where the server's own credentials come from: exactly one source in use, complete, and a user
    token duration that role chaining allows when that source is a role."""
    errors: list = []
    sources = configured_identity_sources()
    key_id, key_secret = settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET
    if bool(key_id) != bool(key_secret):
        errors.append(
            Error(
                "Only one of ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET is set.",
                hint="Set both (the RAM user's AccessKey pair), or neither and let a credentials provider "
                "give the server its identity (docs/operating/keyless.md).",
                id="uploads.E041",
            )
        )
    rrsa_set = [name for name in _RRSA_SETTINGS if getattr(settings, name)]
    if rrsa_set and len(rrsa_set) < len(_RRSA_SETTINGS):
        missing = [name for name in _RRSA_SETTINGS if name not in rrsa_set]
        errors.append(
            Error(
                f"RRSA is configured only in part: {', '.join(missing)} missing.",
                hint="RRSA needs all three: the server's role ARN, the OIDC provider's ARN and the token file "
                "(ACK's RRSA webhook injects them into the pod).",
                id="uploads.E043",
            )
        )
    if not sources:
        if not settings.DEBUG:
            errors.append(
                Error(
                    "The server has no Alibaba Cloud identity: neither an AccessKey nor a credentials provider is configured.",
                    hint="Without an AccessKey (recommended on Alibaba Cloud): RRSA on ACK (ALIBABA_CLOUD_ROLE_ARN, "
                    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN, ALIBABA_CLOUD_OIDC_TOKEN_FILE), an ECS RAM role "
                    "(ALIBABA_CLOUD_ECS_METADATA) or a credentials URI (ALIBABA_CLOUD_CREDENTIALS_URI); or the RAM "
                    "user's ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET.",
                    id="uploads.E040",
                )
            )
        return errors
    used, unused = sources[0], sources[1:]
    if used == ACCESS_KEY and unused:
        errors.append(
            Warning(
                f"Both an AccessKey and {_SOURCE_NAMES[unused[0]]} are configured: the AccessKey is used.",
                hint="ALIYUN_ACCESS_KEY_ID wins over every credentials provider. To run without a long-term key, "
                "remove ALIYUN_ACCESS_KEY_ID and ALIYUN_ACCESS_KEY_SECRET (and disable the key in RAM).",
                id="uploads.W040",
            )
        )
    elif unused:
        errors.append(
            Warning(
                f"More than one credentials provider is configured: {_SOURCE_NAMES[used]} is used, not "
                + " or ".join(_SOURCE_NAMES[u] for u in unused)
                + ".",
                hint="The order is that of the credentials chain: RRSA, then the ECS RAM role, then the URI. "
                "Unset the ones not meant.",
                id="uploads.W042",
            )
        )
    if used == ACCESS_KEY:
        return errors
    duration = settings.ALIYUN_STS_DURATION_SECONDS
    if duration > CHAINED_SESSION_MAX_SECONDS:
        errors.append(
            Error(
                f"ALIYUN_STS_DURATION_SECONDS is {duration}, but the server's identity is a role "
                f"({_SOURCE_NAMES[used]}): a role assumed with a role's credentials gets at most "
                f"{CHAINED_SESSION_MAX_SECONDS} s.",
                hint="Set ALIYUN_STS_DURATION_SECONDS to 3600 or less; STS would answer "
                "InvalidParameter.DurationSeconds to every AssumeRole.",
                id="uploads.E042",
            )
        )
    if used == RRSA:
        errors.extend(_rrsa_errors())
    return errors


def _rrsa_errors() -> list:
    errors: list = []
    https_endpoint = settings.ALIYUN_STS_HTTPS_ENDPOINT
    if https_endpoint and not STS_ENDPOINT.match(https_endpoint):
        errors.append(
            Error(
                f"ALIYUN_STS_HTTPS_ENDPOINT {https_endpoint!r} is not host[:port].",
                hint="A bare host such as sts-vpc.cn-hangzhou.aliyuncs.com, or 127.0.0.1:8703 for the sandbox's HTTPS port.",
                id="uploads.E046",
            )
        )
    if not https_endpoint and is_loopback_endpoint(settings.ALIYUN_STS_ENDPOINT):
        errors.append(
            Error(
                f"RRSA needs STS over HTTPS, and ALIYUN_STS_ENDPOINT {settings.ALIYUN_STS_ENDPOINT!r} is the "
                "local sandbox's plain-http port.",
                hint="Start the sandbox with --sts-tls-port 8703 and set ALIYUN_STS_HTTPS_ENDPOINT=127.0.0.1:8703 "
                "and SSL_CERT_FILE=<SANDBOX_DATA_DIR>/tls/ca.pem (or run make run-keyless).",
                id="uploads.E044",
            )
        )
    seconds = settings.ALIYUN_SERVER_SESSION_SECONDS
    if not SERVER_SESSION_MIN <= seconds <= SERVER_SESSION_MAX:
        errors.append(
            Error(
                f"ALIYUN_SERVER_SESSION_SECONDS is {seconds}; STS accepts {SERVER_SESSION_MIN} to {SERVER_SESSION_MAX}.",
                hint="3600 (the default) suits a role with the default MaxSessionDuration.",
                id="uploads.E045",
            )
        )
    elif seconds < 2 * LIBRARY_STALE_SECONDS:
        errors.append(
            Warning(
                f"ALIYUN_SERVER_SESSION_SECONDS is {seconds}: the credentials library renews the server's "
                f"credentials once less than {LIBRARY_STALE_SECONDS} s are left, so they are renewed after "
                f"{seconds - LIBRARY_STALE_SECONDS} s, on nearly every call at worst.",
                hint="Use 1800 or more (3600, the default); a shorter session is only for tests of the renewal.",
                id="uploads.W041",
            )
        )
    return errors


@register(Tags.compatibility, READINESS_TAG, deploy=False)
def check_upload_purposes(app_configs: Any = None, **kwargs: Any) -> list:
    """UPLOAD_PURPOSES: each entry's folder, content types, size limit and success status (uploads.E050)."""
    purposes = settings.UPLOAD_PURPOSES
    hint = (
        'UPLOAD_PURPOSES is JSON like {"attachment": {"folder": "attachments/", "content_types": '
        '{"application/pdf": [".pdf"]}, "max_bytes": 20971520, "success_action_status": 200}}; '
        "avatar takes only folder and success_action_status (docs/api.md, Upload purposes)."
    )
    if not isinstance(purposes, dict):
        return [Error("UPLOAD_PURPOSES must map purpose names to objects.", hint=hint, id="uploads.E050")]
    return [
        Error(f"UPLOAD_PURPOSES[{name!r}]: {problem}.", hint=hint, id="uploads.E050")
        for name, entry in purposes.items()
        for problem in purpose_setting_problems(name, entry)
    ]


# Alibaba's AssumeRole quota per account, all RAM users and roles together ("Request Limit Upgrade of
# STS AssumeRole API"; RAM's "FAQ about RAM roles and STS tokens").
STS_ACCOUNT_CALLS_PER_SECOND = 100


@register(Tags.security, READINESS_TAG, deploy=False)
def check_sts_availability_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """The STS budget, the queue, the bulkhead and refresh ahead (uploads/services/reuse.py)."""
    errors: list = []
    for name, minimum, check_id in (
        ("ALIYUN_STS_MAX_CALLS_PER_SECOND", 0, "uploads.E060"),
        ("ALIYUN_STS_QUEUE_SECONDS", 0, "uploads.E061"),
        ("ALIYUN_STS_WAITERS_PER_PROCESS", 0, "uploads.E062"),
        ("ALIYUN_STS_REFRESH_THREADS", 1, "uploads.E063"),
        ("APP_INSTANCES", 1, "uploads.E064"),
    ):
        if getattr(settings, name) < minimum:
            errors.append(
                Error(
                    f"{name} must be at least {minimum}.",
                    hint="README, 'When a dependency fails' says what each does and its default.",
                    id=check_id,
                )
            )
    if settings.ALIYUN_STS_MAX_CALLS_PER_SECOND > STS_ACCOUNT_CALLS_PER_SECOND:
        errors.append(
            Warning(
                f"ALIYUN_STS_MAX_CALLS_PER_SECOND is {settings.ALIYUN_STS_MAX_CALLS_PER_SECOND}, above Alibaba's "
                f"{STS_ACCOUNT_CALLS_PER_SECOND} AssumeRole calls per second per account: STS will throttle first.",
                hint="Keep it well under 100 (default 50): other software may call AssumeRole with the same account.",
                id="uploads.W060",
            )
        )
    floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    if 0 < floor < CLIENT_REFRESH_MARGIN_SECONDS:
        errors.append(
            Warning(
                f"ALIYUN_STS_STALE_IF_ERROR_SECONDS is {floor}: credentials with less than "
                f"{CLIENT_REFRESH_MARGIN_SECONDS} s left are handed out, which Alibaba's mobile OSS SDKs fetch "
                "again before every request.",
                hint="Keep it at 300 or more (the default), or 0 to turn refresh ahead off.",
                id="uploads.W061",
            )
        )
    return errors
