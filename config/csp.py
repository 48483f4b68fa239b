"""The Content-Security-Policy: django-csp's middleware, plus the OSS endpoint's origins.

Browsers upload straight to OSS (ali-oss) and show avatars from signed OSS URLs, so ``connect-src``
and ``img-src`` name the endpoint's origin and its virtual-hosted bucket origin
(``https://<bucket>.oss-<region>.aliyuncs.com``, which ali-oss uses for a domain endpoint). They are
added through ``get_policy_parts``, the hook django-csp 4.0 documents for extending its middleware
(its migration guide, "Migrating Custom Middleware"), and read from the settings on every response, so a
moved endpoint shows at once (the tests move it while the process runs).
"""

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


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


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware; the enforced policy also lets pages reach the OSS endpoint."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        """django-csp's parts (settings, a view's decorators, the nonce) with the OSS origins
        appended to ``connect-src`` and ``img-src`` of the enforced policy."""
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origins = oss_origins(settings.ALIYUN_OSS_ENDPOINT, settings.ALIYUN_OSS_BUCKET)
        if origins and not report_only:
            update = dict(parts.update or {})
            for directive in ("connect-src", "img-src"):
                update[directive] = [*update.get(directive, ()), *origins]
            parts.update = update
        return parts
