"""gunicorn trusts X-Forwarded-Proto exactly when the app does (DJANGO_SECURE_PROXY_SSL_HEADER)."""

import http.client
from urllib.parse import urlsplit

import pytest

from tests.live_server import live_server

pytestmark = pytest.mark.slow


def get(url: str, path: str, **headers: str) -> tuple[int, str]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheader("Location", "")


@pytest.mark.parametrize(("proxy_header", "expected"), [("0", 301), ("1", 401)])
def test_x_forwarded_proto_counts_only_behind_a_declared_proxy(tmp_path, proxy_header, expected):
    with live_server(
        tmp_path, "sqlite", DJANGO_SECURE_SSL_REDIRECT="1", DJANGO_SECURE_PROXY_SSL_HEADER=proxy_header
    ) as server:
        status, location = get(server.url, "/api/me/", **{"X-Forwarded-Proto": "https"})
        print(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={proxy_header}, X-Forwarded-Proto: https from 127.0.0.1 -> {status} {location}"
        )
        assert status == expected
        if expected == 301:
            assert location.startswith("https://")
        assert get(server.url, "/api/me/")[0] == 301  # plain http, no header: redirected either way
