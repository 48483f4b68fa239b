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
    sandbox = is_loopback_endpoint(settings.ALIYUN_OSS_ENDPOINT)
    refused = [
        (prefix, problem)
        for prefix in settings.OSS_EVENTS_CERT_URL_PREFIXES
        if (problem := _prefix_problem(prefix, sandbox=sandbox))
    ]
    limits = ("OSS_EVENTS_MAX_BODY_BYTES", "OSS_EVENTS_MAX_EVENTS", "OSS_EVENTS_CERT_TIMEOUT_SECONDS")
    return [
        *(
            Error(
                f"OSS_EVENTS_CERT_URL_PREFIXES entry {prefix!r} {problem}.",
                hint="Use Alibaba's documented prefix, https://mnstest.oss-cn-hangzhou.aliyuncs.com/ "
                "(the default); anyone who can serve a certificate under an accepted prefix can forge pushes.",
                id="ledger.E001",
            )
            for prefix, problem in refused
        ),
        *(
            Error(f"{name} must be positive.", id="ledger.E002")
            for name in limits
            if getattr(settings, name) <= 0
        ),
    ]


def _prefix_problem(prefix: str, *, sandbox: bool) -> str:
    parts = urlsplit(prefix)
    if parts.scheme not in ("http", "https") or not parts.hostname or not prefix.endswith("/"):
        return "is not an http(s) URL ending in '/'"
    if not sandbox and (parts.scheme != "https" or is_loopback_host(parts.hostname)):
        return "is plain http or a loopback address, and ALIYUN_OSS_ENDPOINT is not the local sandbox"
    return ""
