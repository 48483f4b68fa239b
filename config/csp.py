"""The Content-Security-Policy: django-csp's middleware, plus the OSS endpoint's origins.

Browsers upload straight to OSS (ali-oss) and show avatars from signed OSS URLs, so ``connect-src``
and ``img-src`` name the endpoint's origin and its virtual-hosted bucket origin
(``https://<bucket>.oss-<region>.aliyuncs.com``, which ali-oss uses for a domain endpoint). They are
read from the settings for each response, not once at start-up: the sandbox and the tests move the
endpoint while the process runs.
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
