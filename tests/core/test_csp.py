"""The Content-Security-Policy header: django-csp's, with the OSS endpoint's origins."""

from csp.constants import NONCE
from csp.decorators import csp_exempt, csp_update
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from config.csp import ContentSecurityPolicyMiddleware, oss_origins

HEADER = "Content-Security-Policy"
REPORT_ONLY = "Content-Security-Policy-Report-Only"


def _header(view=lambda request: HttpResponse(), name=HEADER) -> str | None:
    """What the middleware sends for ``view``'s answer to a GET, as the request/response cycle runs it."""
    request = RequestFactory().get("/")
    middleware = ContentSecurityPolicyMiddleware(view)
    return middleware(request).get(name)


def _directive(header: str, name: str) -> list[str]:
    [value] = [part.split()[1:] for part in header.split("; ") if part.split()[0] == name]
    return value


def test_uploads_and_images_may_reach_the_oss_endpoint_and_its_bucket(settings):
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    settings.ALIYUN_OSS_BUCKET = "avatars"
    header = _header(lambda request: JsonResponse({"ok": True}))
    origins = ["https://oss-cn-hangzhou.aliyuncs.com", "https://avatars.oss-cn-hangzhou.aliyuncs.com"]
    assert _directive(header, "connect-src") == ["'self'", *origins]
    assert _directive(header, "img-src") == ["'self'", "data:", "blob:", *origins]
    assert _directive(header, "script-src") == ["'self'"]  # nothing else gains the origins


def test_a_moved_endpoint_changes_the_header_at_once(settings):
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    settings.ALIYUN_OSS_BUCKET = "first-bucket"
    assert "https://first-bucket.oss-cn-hangzhou.aliyuncs.com" in _header()
    settings.ALIYUN_OSS_BUCKET = "second-bucket"
    header = _header()
    assert "https://second-bucket.oss-cn-hangzhou.aliyuncs.com" in header
    assert "first-bucket" not in header


def test_a_per_view_policy_and_a_drawn_nonce_are_built_for_their_response(settings):
    plain = _header()
    shaped = _header(csp_update({"img-src": ["https://images.example"]})(lambda request: HttpResponse()))
    assert "https://images.example" in _directive(shaped, "img-src")
    assert set(oss_origins(settings.ALIYUN_OSS_ENDPOINT, settings.ALIYUN_OSS_BUCKET)) <= set(
        _directive(shaped, "img-src")
    )  # the view's additions and ours, both
    assert _header() == plain  # the next plain answer is as before

    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives | {"script-src": ["'self'", NONCE]}}
    drawn: list[str] = []

    def view(request):
        drawn.append(str(request.csp_nonce))
        return HttpResponse()

    header = _header(view)
    assert _directive(header, "script-src") == ["'self'", f"'nonce-{drawn[0]}'"]
    assert "'nonce-" not in _header()  # no nonce asked for, none sent


def test_an_exempt_response_gets_no_header():
    assert _header() is not None
    assert _header(csp_exempt()(lambda request: HttpResponse())) is None


def test_a_report_only_policy_is_left_as_configured(settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"connect-src": ["'self'"]}}
    assert _directive(_header(name=REPORT_ONLY), "connect-src") == ["'self'"]


def test_the_api_answers_with_the_header(client):
    response = client.get("/api/schema/")
    assert "object-src 'none'" in response[HEADER]
