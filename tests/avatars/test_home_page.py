"""The demo page without a browser: login required, limits from the server, ali-oss served from npm."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SDK_URL = "/static/vendor/ali-oss/aliyun-oss-sdk.min.js"
TEST_IDS = (
    "file-input",
    "upload-button",
    "cancel-button",
    "upload-progress",
    "upload-status",
    "avatar-image",
)


def test_anonymous_visit_goes_to_the_login_form(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_page_has_the_controls_and_the_servers_limits(client, user, settings):
    settings.AVATAR_MAX_BYTES = 1234567
    client.force_login(user)

    html = client.get("/").content.decode()

    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in html
    assert 'data-max-bytes="1234567"' in html
    assert 'data-accepted-types="image/png,image/jpeg,image/gif,image/webp"' in html
    assert "csrfmiddlewaretoken" in html
    assert f'src="{SDK_URL}"' in html and 'src="/static/js/avatar-upload.js"' in html
    assert html.index("/static/js/oss-credentials.js") < html.index("/static/js/avatar-upload.js")


def test_ali_oss_bundle_is_served_from_the_pinned_npm_package(client):
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/ali-oss"]["version"]
    assert json.loads((ROOT / "package.json").read_text())["dependencies"]["ali-oss"] == pinned

    response = client.get(SDK_URL)

    assert response.status_code == 200
    head = b"".join(response.streaming_content)[:200] if response.streaming else response.content[:200]
    assert f"Aliyun OSS SDK for JavaScript v{pinned}".encode() in head
