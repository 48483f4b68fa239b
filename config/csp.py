"""The Content-Security-Policy: django-csp's middleware, plus the OSS endpoint's origins.

Browsers upload straight to OSS (ali-oss) and show avatars from signed OSS URLs, so ``connect-src``
and ``img-src`` name the endpoint's origin and its virtual-hosted bucket origin
(``https://<bucket>.oss-<region>.aliyuncs.com``, which ali-oss uses for a domain endpoint). They are
read from the settings, and the headers built from them are kept until a setting they depend on
changes (the tests move the endpoint while the process runs).
"""

from typing import Any
from urllib.parse import urlsplit

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

# What a view may set on its response to shape its own policy (django-csp's decorators).
_PER_RESPONSE = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)
_SETTINGS = {
    "CONTENT_SECURITY_POLICY",
    "CONTENT_SECURITY_POLICY_REPORT_ONLY",
    "ALIYUN_OSS_ENDPOINT",
    "ALIYUN_OSS_BUCKET",
    "DEBUG",
}
_headers: dict[str, str] = {}  # the headers of a response nothing per-response shapes, once built


def oss_origins(endpoint: str, bucket: str) -> list[str]:
    """``http://127.0.0.1:8702`` → itself and ``http://demo-avatars.127.0.0.1:8702``; [] if malformed."""
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port
    except ValueError:
        return []
    if parts.scheme not in ("http", "https") or not host:
        return []
    suffix = f":{port}" if port else ""
    host = f"[{host}]" if ":" in host else host
    origins = [f"{parts.scheme}://{host}{suffix}"]
    if bucket:
        origins.append(f"{parts.scheme}://{bucket}.{host}{suffix}")
    return origins


@receiver(setting_changed)
def _forget_headers(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        _headers.clear()


def _plain(request: HttpRequest, response: HttpResponseBase) -> bool:
    """True when django-csp would set the same headers as on any other such response: no nonce
    drawn, no per-view policy, no header set already, no exempt status, no excluded path prefix."""
    if (
        getattr(request, "_csp_nonce", None) is not None
        or HEADER in response
        or HEADER_REPORT_ONLY in response
    ):
        return False
    if any(hasattr(response, name) for name in _PER_RESPONSE) or response.status_code in (404, 500):
        return False
    for name in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
        if (getattr(settings, name, None) or {}).get("EXCLUDE_URL_PREFIXES"):
            return False
    return True


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """django-csp's, with the headers of a plain response (``_plain``: every API answer) built
        once and reused until a setting they come from changes: building them was about 5 % of a
        reused hand-out's CPU (`make profile`)."""
        if not _plain(request, response):
            return super().process_response(request, response)
        if not _headers:
            super().process_response(request, response)
            _headers.update(
                {name: response[name] for name in (HEADER, HEADER_REPORT_ONLY) if name in response}
            )
            return response
        for name, value in _headers.items():
            response[name] = value
        # As django-csp does: a nonce asked for after the header was written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origins = oss_origins(settings.ALIYUN_OSS_ENDPOINT, settings.ALIYUN_OSS_BUCKET)
        if origins and not report_only:
            update = dict(parts.update or {})
            for directive in ("connect-src", "img-src"):
                update[directive] = [*update.get(directive, ()), *origins]
            parts.update = update
        return parts
