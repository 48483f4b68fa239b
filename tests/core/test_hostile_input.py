"""No input ends in a 5xx: hostile bodies, headers and query strings, sent to every URL of the
project x every method x every way of signing in. API answers keep the JSON error shape.

The URLs come from the URL resolver (new endpoints are covered without editing this file). A
deterministic sweep sends one hostile request per (URL, method, sign-in); Hypothesis then mixes
bodies, headers and query strings (HOSTILE_EXAMPLES raises its example count, e.g. for a long run).
"""

import json
import os
import re
import uuid
from collections import Counter
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

# Each request commits on its own, as in production (no test transaction for a failed statement
# to poison: e.g. PostgreSQL refusing a NUL byte in an audit row aborts only that statement).
pytestmark = pytest.mark.django_db(transaction=True)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
AUTH_MODES = ["anonymous", "jwt", "session", "staff session"]
SAMPLE = {"int": "1", "str": "x", "slug": "x", "path": "x/y", "uuid": str(uuid.uuid4())}
SENT: Counter = Counter()


def _regex_sample(regex: str) -> str | None:
    candidates = [
        "",
        "x",
        "x/",
        "1/",
        *(f"{label}/" for label in sorted({m._meta.app_label for m in admin.site._registry})),
    ]
    return next((c for c in candidates if re.fullmatch(regex.lstrip("^").rstrip("$"), c)), None)


def _paths(patterns: list, prefix: str = "") -> list[str]:
    """One concrete path per URL pattern: converters get a sample value, regexes a matching string."""
    paths: list[str] = []
    for entry in patterns:
        route = getattr(entry.pattern, "_route", None)
        if route is not None:
            part = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE.get(m.group(1) or "str", "x"), route)
        else:
            part = _regex_sample(entry.pattern.regex.pattern)
            if part is None:
                continue
        if isinstance(entry, URLResolver):
            paths += _paths(entry.url_patterns, prefix + part)
        elif isinstance(entry, URLPattern):
            paths.append("/" + prefix + part)
    return sorted(set(paths))


def signed(**claims) -> str:
    """A token signed with the real key but with the claims given (wrong types, missing ones)."""
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


def hostile_tokens() -> list[str]:
    exp = 4_000_000_000
    base = {"token_type": "access", "exp": exp, "iat": 1_700_000_000, "jti": "a" * 32, "user_id": "1"}
    return [
        signed(**{**base, "user_id": [1]}),
        signed(**{**base, "user_id": {"id": 1}}),
        signed(**{**base, "user_id": "1; DROP TABLE"}),
        signed(**{**base, "user_id": "9" * 40}),
        signed(**{**base, "user_id": "\u0000"}),
        signed(**{**base, "exp": "4000000000"}),
        signed(**{**base, "exp": 1e300}),
        signed(**{**base, "iat": "yesterday"}),
        signed(**{**base, "iat": [1]}),
        signed(**{**base, "jti": 5}),
        signed(**{**base, "jti": "\u0000"}),
        signed(**{k: v for k, v in base.items() if k != "jti"}),
        signed(**{**base, "token_type": "refresh"}),
        signed(**{**base, "user_id": "999999"}),  # a user that does not exist (or was deleted)
    ]


JSON = "application/json"
BODIES: list[tuple[str, bytes]] = [
    (JSON, b"[" * 2000 + b"]" * 2000),
    (JSON, b'{"a":' * 2000 + b"1" + b"}" * 2000),
    (JSON, b"[" * 40 + b"]" * 40),
    (JSON, b'{"username": "' + b"x" * (3 * 1024 * 1024) + b'"}'),
    (JSON, b"\xff\xfe\x00garbage"),
    (JSON + "; charset=no-such-charset", b'{"a": 1}'),
    (JSON + "; charset=utf-32", b'{"a": 1}'),
    (JSON, b"1" * 5000),
    (JSON, b'{"size": 1e999999, "n": NaN, "i": -Infinity}'),
    (JSON, b'{"username": {"$gt": ""}, "password": ["x"], "refresh": 123, "key": null}'),
    (JSON, b'{"username": "a\\u0000b", "password": "\\u0000", "key": "\\u0000", "refresh": "\\u0000"}'),
    (JSON, b'{"key": "../../etc/passwd", "contentType": "' + b"x" * 10000 + b'", "size": -1}'),
    (JSON, b'{"size": 99999999999999999999999999, "contentType": "image/png", "filename": "\\ud800"}'),
    (JSON, b"null"),
    (JSON, b'"just a string"'),
    (JSON, b"[]"),
    (JSON, b""),
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(5000))),
    ("application/x-www-form-urlencoded", b"username=%00&password=%ff%fe&next=//evil.example"),
    ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nbroken'),
    ("multipart/form-data", b"no boundary at all"),
    ("text/plain", b"hello"),
    ("application/xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'a'>]><x>&a;</x>"),
]
QUERIES = [
    "",
    "?format=xml",
    "?format=api",
    "?q=%00",
    "?q=" + "x" * 5000,
    "?p=-1",
    "?p=99999999999999999999",
    "?o=abc",
    "?o=99",
    "?created_at__gte=garbage",
    "?outcome__exact=%00",
    "?next=//evil.example",
    "?script=",
    "?lang=zz",
    "?e=1",
    "?_changelist_filters=%00",
    "?days=-5",
    "?days=abc",
    "?%ff=%fe",
]


def header_sets(access: str) -> list[dict[str, str]]:
    tokens = hostile_tokens()
    return [
        {},
        {"HTTP_AUTHORIZATION": "Bearer"},
        {"HTTP_AUTHORIZATION": "Bearer a b"},
        {"HTTP_AUTHORIZATION": "Bearer " + "x" * 8000},
        {"HTTP_AUTHORIZATION": "Bearer ÿÿÿ.ÿÿÿ.ÿÿÿ"},
        {"HTTP_AUTHORIZATION": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"HTTP_AUTHORIZATION": "Bearer " + access[:-4] + "AAAA"},
        *({"HTTP_AUTHORIZATION": "Bearer " + token} for token in tokens),
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_ACCEPT": "application/xml;q=abc, */*;q=-1"},
        {"HTTP_ACCEPT_LANGUAGE": "zz-ZZ, *;q=x"},
        {"HTTP_COOKIE": "sessionid=" + "x" * 100 + "; csrftoken=short; django_language=xx"},
        {"HTTP_X_REQUEST_ID": "../../etc"},
        {"HTTP_X_FORWARDED_FOR": "not-an-ip, 999.1.1.1"},
        {"HTTP_X_FORWARDED_PROTO": "gopher"},
        {"HTTP_RANGE": "bytes=999999-1"},
        {"HTTP_IF_MODIFIED_SINCE": "yesterday"},
        {"CONTENT_LENGTH": "not-a-number"},
    ]


@pytest.fixture
def clients(user, password, django_user_model) -> dict[str, tuple[Client, dict[str, str]]]:
    """A client per sign-in mode, with the headers that sign it in."""
    anonymous = Client(raise_request_exception=False)
    api = Client(raise_request_exception=False)
    tokens = api.post(
        "/api/auth/token/", {"username": user.username, "password": password}, content_type=JSON
    ).json()
    session = Client(raise_request_exception=False)
    session.force_login(user)
    staff = Client(raise_request_exception=False)
    staff.force_login(django_user_model.objects.create_superuser("root", password="root-password-1234"))
    return {
        "anonymous": (anonymous, {}),
        "jwt": (api, {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}),
        "session": (session, {}),
        "staff session": (staff, {}),
        "_access": (api, {"token": tokens["access"]}),
    }


def send(client: Client, method: str, path: str, content_type: str, body: bytes, headers: dict[str, str]):
    # The test client would encode the body itself for a charset in content_type: the real header
    # goes in CONTENT_TYPE, so the bytes go out as they are.
    response = client.generic(
        method,
        path,
        data=body,
        content_type="application/octet-stream",
        **{"CONTENT_TYPE": content_type, **headers},
    )
    SENT["requests"] += 1
    SENT[f"{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (
        method,
        path,
        content_type,
        body[:80],
        headers,
        response.content[:500],
    )
    if path.startswith("/api/") and response.status_code >= 400 and method != "HEAD":
        if "json" in response.get("Content-Type", ""):
            error = json.loads(response.content)
            # The project's shape, or Alibaba's stock credential format on the sts-server endpoints.
            assert {"detail", "code"} <= set(error) or (
                path.startswith("/api/uploads/sts-server/") and {"StatusCode", "ErrorCode"} <= set(error)
            ), (method, path, error)
        else:  # only Swagger UI (HTML) and the schema (YAML by default) answer in their own format
            assert path.startswith(("/api/docs/", "/api/schema/")), (
                method,
                path,
                response.status_code,
                response.content[:200],
            )
    return response


def all_paths() -> list[str]:
    return [
        *_paths(get_resolver().url_patterns),
        "/healthz",
        "/readyz",
        "/static/js/avatar-upload.js",
        "/nope/",
    ]


@pytest.mark.slow
def test_every_url_method_and_sign_in_answers_below_500(clients, sandbox):
    """The sweep: every URL x method x sign-in mode, each with a hostile body and header in turn."""
    paths = all_paths()
    assert any(p.startswith("/admin/") for p in paths) and "/api/auth/token/refresh/" in paths
    headers = header_sets(clients["_access"][1]["token"])
    sent = 0
    for index, (path, method, mode) in enumerate(
        (p, m, a) for p in paths for m in METHODS for a in AUTH_MODES
    ):
        client, auth = clients[mode]
        content_type, body = BODIES[index % len(BODIES)]
        extra = headers[index % len(headers)]
        send(client, method, path + QUERIES[index % len(QUERIES)], content_type, body, {**auth, **extra})
        sent += 1
    print(
        f"\nhostile sweep: {len(paths)} URLs x {len(METHODS)} methods x {len(AUTH_MODES)} sign-ins = {sent} requests; {dict(SENT)}"
    )


@pytest.mark.slow
def test_every_hostile_body_to_every_json_endpoint(clients, sandbox):
    """Each body of the corpus to each API endpoint that takes a body, signed in and not."""
    api_paths = [p for p in all_paths() if p.startswith("/api/") and "docs" not in p and "schema" not in p]
    for path in api_paths:
        for content_type, body in BODIES:
            for mode in ("anonymous", "jwt"):
                client, auth = clients[mode]
                send(client, "POST", path, content_type, body, auth)
    print(
        f"\nhostile bodies: {len(api_paths)} API URLs x {len(BODIES)} bodies x 2 sign-ins; totals so far {dict(SENT)}"
    )


def test_deeply_nested_json_is_a_400_parse_error_even_anonymously(client):
    response = client.post("/api/auth/token/", data=b"[" * 2000 + b"]" * 2000, content_type=JSON)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "nested" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/auth/token/refresh/", "/api/auth/logout/"])
def test_a_body_over_the_upload_limit_is_a_413_before_it_is_parsed(client, path):
    response = client.post(path, data=b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}', content_type=JSON)
    assert (response.status_code, response.json()["code"]) == (413, "request_too_large")


@pytest.mark.parametrize("charset", ["bz2_codec", "base64_codec", "zlib_codec"])
def test_a_charset_that_is_not_a_text_encoding_is_a_400_from_the_wsgi_application(charset):
    """Django decodes the query string with the request's charset while it builds the request,
    before any middleware: the WSGI application (as gunicorn runs it) answers first."""
    import io
    from wsgiref.util import setup_testing_defaults

    from config.wsgi import application

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/auth/token/",
        "QUERY_STRING": "a=1",
        "CONTENT_TYPE": f"application/json; charset={charset}",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
        "HTTP_HOST": "testserver",
    }
    setup_testing_defaults(environ)
    statuses = []
    body = b"".join(application(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["400 Bad Request"]
    assert json.loads(body)["code"] == "unsupported_charset"


def test_options_on_the_docs_page_is_not_a_500(client):
    response = client.options("/api/docs/")
    assert response.status_code == 200
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("token_index", range(len(hostile_tokens())))
def test_tokens_with_claims_of_the_wrong_type_are_401(client, user, token_index):
    token = hostile_tokens()[token_index]
    me = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 401, me.content
    assert me.json()["code"] in {"token_not_valid", "user_not_found", "authentication_failed"}
    refresh = client.post("/api/auth/token/refresh/", {"refresh": token}, content_type=JSON)
    assert refresh.status_code == 401, refresh.content
    logout = client.post("/api/auth/logout/", {"refresh": token}, content_type=JSON)
    assert logout.status_code in (200, 401), logout.content


def test_the_refresh_token_of_a_deleted_user_is_401(client, user, password):
    tokens = client.post(
        "/api/auth/token/", {"username": "alice", "password": password}, content_type=JSON
    ).json()
    user.delete()
    refresh = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, content_type=JSON)
    assert (refresh.status_code, refresh.json()["code"]) == (401, "user_not_found")
    me = client.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert (me.status_code, me.json()["code"]) == (401, "user_not_found")


@given(data=st.data())
@hypothesis_settings(
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "150")),
    deadline=timedelta(seconds=30),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_mix_of_hostile_parts_answers_below_500(clients, sandbox, data):
    paths = all_paths()
    headers = header_sets(clients["_access"][1]["token"])
    path = data.draw(st.sampled_from(paths), label="path")
    method = data.draw(st.sampled_from(METHODS), label="method")
    client, auth = clients[data.draw(st.sampled_from(AUTH_MODES), label="auth")]
    content_type, body = data.draw(
        st.sampled_from(BODIES) | st.tuples(st.just(JSON), st.binary(max_size=200))
    )
    extra = data.draw(st.sampled_from(headers), label="headers")
    query = data.draw(st.sampled_from(QUERIES) | st.text(max_size=30).map(lambda t: "?q=" + t), label="query")
    send(
        client,
        method,
        path + query.replace("#", "%23").replace(" ", "%20"),
        content_type,
        body,
        {**auth, **extra},
    )
