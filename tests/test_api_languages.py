"""Every API endpoint answers its errors in the caller's language: `Accept-Language: zh-Hans` → a Chinese
`detail` (the stock-format endpoints: `ErrorMessage`) with the same `code` as in English."""

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

CHINESE = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Case:
    """One request that fails, and where its answer keeps the message and the code."""

    route: str  # the URL name (every API route needs a case: see the last test)
    method: str
    path: str
    body: object = None
    signed_in: bool = False
    status: int = 400
    code: str = ""
    stock_format: bool = False  # {StatusCode, ErrorCode, ErrorMessage}


CASES = [
    Case(
        "token_obtain",
        "post",
        "/api/auth/token/",
        {"username": "alice", "password": "wrong"},
        status=401,
        code="no_active_account",
    ),
    Case(
        "token_refresh",
        "post",
        "/api/auth/token/refresh/",
        {"refresh": "not-a-token"},
        status=401,
        code="token_not_valid",
    ),
    Case("logout_api", "post", "/api/auth/logout/", {}, status=400, code="invalid"),
    Case("me", "get", "/api/me/", status=401, code="not_authenticated"),
    Case(
        "me_avatar",
        "post",
        "/api/me/avatar/",
        {"key": "user/999999/x.png"},
        signed_in=True,
        status=403,
        code="outside_prefix",
    ),
    Case(
        "me_avatar_upload_key",
        "post",
        "/api/me/avatar/upload-key/",
        {"contentType": "text/plain", "size": 5},
        signed_in=True,
        code="not_an_image",
    ),
    Case(
        "sts_token", "get", "/api/uploads/sts-token/", signed_in=True, status=405, code="method_not_allowed"
    ),
    Case(
        "post_policy",
        "post",
        "/api/uploads/post-policy/",
        {"contentType": "text/plain", "size": 5},
        signed_in=True,
        code="unsupported_content_type",
    ),
    Case(
        "sts_server",
        "get",
        "/api/uploads/sts-server/",
        status=401,
        code="not_authenticated",
        stock_format=True,
    ),
    Case("sts_server_url", "post", "/api/uploads/sts-server-url/", status=401, code="not_authenticated"),
    Case(
        "sts_server_credential_url",
        "get",
        "/api/uploads/sts-server/osscu_no-such-url/",
        status=200,
        code="credential_url_invalid",
        stock_format=True,
    ),
    Case("schema", "post", "/api/schema/?format=json", signed_in=True, status=405, code="method_not_allowed"),
    Case(
        "stored_objects",
        "delete",
        "/api/uploads/objects/?key=user/999/x.txt",
        signed_in=True,
        status=404,
        code="not_found",
    ),
    Case("", "get", "/api/no-such-endpoint/", status=404, code="not_found"),
]


def _ask(case: Case, language: str, client_for: Callable[[], APIClient]) -> tuple[int, str, str]:
    client = client_for() if case.signed_in else APIClient()
    response = getattr(client, case.method)(
        case.path, case.body, format="json", HTTP_ACCEPT_LANGUAGE=language
    )
    data = response.json()
    if case.stock_format:
        return response.status_code, data["ErrorCode"], data["ErrorMessage"]
    return response.status_code, data["code"], data["detail"]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.method} {case.path}")
def test_an_error_of_each_endpoint_in_chinese_with_the_same_code(case, user, password):
    def signed_in() -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    english = _ask(case, "en", signed_in)
    chinese = _ask(case, "zh-Hans", signed_in)

    assert english[:2] == chinese[:2] == (case.status, case.code)
    assert not CHINESE.search(english[2]), english
    assert CHINESE.search(chinese[2]), chinese
    assert "%(" not in chinese[2] and "{" not in chinese[2]  # placeholders filled in


def _api_route_names(resolver=None, prefix: str = "") -> set[str]:
    names = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            names |= _api_route_names(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            names.add(pattern.name)
    return names


# Pages under /api/ that answer HTML for people, not the API's JSON errors; and the OSS event receiver,
# whose only caller is Alibaba's SMQ (MNS): its refusals are for operators' logs, in English.
HTML_PAGES = {"swagger-ui", "oss_events"}


def test_every_api_endpoint_has_a_case_above():
    assert _api_route_names() - HTML_PAGES <= {case.route for case in CASES}
