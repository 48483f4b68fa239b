"""The Content-Security-Policy header: django-csp's, kept per process for plain responses."""

import pytest
from csp.constants import NONCE
from csp.middleware import CSPMiddleware
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from config.csp import ContentSecurityPolicyMiddleware

HEADER = "Content-Security-Policy"


def _ours(request, response):
    return ContentSecurityPolicyMiddleware(lambda r: response).process_response(request, response)


def _django_csp(request, response):
    """What django-csp alone sets, with our OSS origins (its get_policy_parts is ours)."""

    class Uncached(ContentSecurityPolicyMiddleware):
        process_response = CSPMiddleware.process_response

    return Uncached(lambda r: response).process_response(request, response)


@pytest.mark.parametrize("make", [lambda: JsonResponse({"ok": True}), lambda: HttpResponse("<p>hi</p>")])
def test_plain_responses_carry_what_django_csp_builds_every_time(make, settings):
    factory = RequestFactory()
    expected = _django_csp(factory.get("/"), make())[HEADER]
    assert "127.0.0.1" in expected or "aliyuncs.com" in expected  # the OSS endpoint's origins are in it
    for _ in range(3):  # the first builds and keeps it, the others reuse it
        assert _ours(factory.get("/"), make())[HEADER] == expected


def test_a_moved_endpoint_changes_the_header_at_once(settings):
    factory = RequestFactory()
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    settings.ALIYUN_OSS_BUCKET = "first-bucket"
    assert (
        "https://first-bucket.oss-cn-hangzhou.aliyuncs.com" in _ours(factory.get("/"), HttpResponse())[HEADER]
    )
    settings.ALIYUN_OSS_BUCKET = "second-bucket"
    header = _ours(factory.get("/"), HttpResponse())[HEADER]
    assert "https://second-bucket.oss-cn-hangzhou.aliyuncs.com" in header
    assert "first-bucket" not in header


def test_a_per_view_policy_and_a_drawn_nonce_are_built_for_their_response(settings):
    factory = RequestFactory()
    plain = _ours(factory.get("/"), HttpResponse())[HEADER]

    shaped = HttpResponse()
    shaped._csp_update = {"img-src": ["https://images.example"]}
    assert "https://images.example" in _ours(factory.get("/"), shaped)[HEADER]

    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": directives | {"script-src": ["'self'", NONCE]}}
    plain = _ours(factory.get("/"), HttpResponse())[HEADER]
    request = factory.get("/")
    middleware = ContentSecurityPolicyMiddleware(lambda r: HttpResponse())
    middleware.process_request(request)
    nonce = str(request.csp_nonce)
    with_nonce = middleware.process_response(request, HttpResponse())[HEADER]
    assert f"'nonce-{nonce}'" in with_nonce

    assert "https://images.example" not in _ours(factory.get("/"), HttpResponse())[HEADER]
    assert _ours(factory.get("/"), HttpResponse())[HEADER] == plain


def test_an_exempt_response_gets_no_header(settings):
    response = HttpResponse()
    response._csp_exempt = True
    _ours(RequestFactory().get("/"), HttpResponse())  # the kept headers exist
    assert HEADER not in _ours(RequestFactory().get("/"), response)


def test_the_api_answers_with_the_header(client, settings):
    response = client.get("/api/schema/")
    assert "object-src 'none'" in response[HEADER]
