"""System checks for the OSS event receiver: no start with a certificate prefix an attacker could serve."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

from core.aliyun_names import is_loopback_endpoint, is_loopback_host


@register(Tags.security)
def check_oss_events_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """ledger.E001: every OSS_EVENTS_CERT_URL_PREFIXES entry is an https URL of a public host ending in
    "/", unless ALIYUN_OSS_ENDPOINT is the local sandbox (whose certificate is served over http on
    the loopback). ledger.E002: the limits are positive."""
    errors: list = []
    sandbox = is_loopback_endpoint(settings.ALIYUN_OSS_ENDPOINT)
    for prefix in settings.OSS_EVENTS_CERT_URL_PREFIXES:
        parts = urlsplit(prefix)
        problem = ""
        if parts.scheme not in ("http", "https") or not parts.hostname or not prefix.endswith("/"):
            problem = "is not an http(s) URL ending in '/'"
        elif not sandbox and (parts.scheme != "https" or is_loopback_host(parts.hostname)):
            problem = "is plain http or a loopback address, and ALIYUN_OSS_ENDPOINT is not the local sandbox"
        if problem:
            errors.append(
                Error(
                    f"OSS_EVENTS_CERT_URL_PREFIXES entry {prefix!r} {problem}.",
                    hint="Use Alibaba's documented prefix, https://mnstest.oss-cn-hangzhou.aliyuncs.com/ "
                    "(the default); anyone who can serve a certificate under an accepted prefix can forge pushes.",
                    id="ledger.E001",
                )
            )
    for name in ("OSS_EVENTS_MAX_BODY_BYTES", "OSS_EVENTS_MAX_EVENTS", "OSS_EVENTS_CERT_TIMEOUT_SECONDS"):
        if getattr(settings, name) <= 0:
            errors.append(Error(f"{name} must be positive.", id="ledger.E002"))
    return errors
