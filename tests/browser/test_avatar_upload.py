"""The demo page end to end: real Chromium, the real ali-oss bundle, our API, the sandbox STS and OSS."""

import os
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import oss2
import pytest
import requests
from playwright.sync_api import expect

from aliyun import oss
from sandbox.tokens import CredentialError, issue_credentials, resolve_principal
from tests.browser.helpers import (
    WATCH_PROGRESS,
    avatar_rendered,
    checkpoints,
    choose,
    log_in,
    server_bucket,
    status,
    throttle_uploads,
)
from tests.pngs import png_bytes
from uploads.services.reuse import session_policy_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT_FOR_README = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


def test_upload_small_png_shows_progress_and_new_avatar(
    page, live_server, user, password, sandbox, artifacts
):
    log_in(page, live_server, user, password)
    expect(page.locator('[data-testid="avatar-placeholder"]')).to_be_visible()
    page.evaluate(WATCH_PROGRESS)
    data = png_bytes(64, 64)

    choose(page, "me.png", data)
    expect(page.locator('[data-testid="upload-button"]')).to_be_enabled()
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
    assert page.evaluate("window.progressSeen").count(100) >= 1
    expect(page.locator('[data-testid="upload-progress"]')).to_have_js_property("value", 100)
    image = avatar_rendered(page)
    assert image["width"] == 64 and not image["hidden"], page.console_messages_seen
    assert image["src"].startswith(f"{sandbox.oss_endpoint}/")

    user.refresh_from_db()
    assert user.avatar_key.startswith(f"avatars/{user.pk}/") and user.avatar_key.endswith(".png")
    assert requests.get(image["src"], timeout=5).content == data

    page.screenshot(path=str(artifacts / "avatar-uploaded.png"), full_page=True)
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        shutil.copyfile(artifacts / "avatar-uploaded.png", SCREENSHOT_FOR_README)

    page.reload()  # the avatar survives a reload: it comes from /api/me/, not from the page's memory
    expect(page.locator('[data-testid="avatar-image"]')).to_be_visible()
    assert avatar_rendered(page)["width"] == 64


def test_a_large_avatar_shows_progress_on_a_slow_link(page, live_server, user, password, artifacts):
    log_in(page, live_server, user, password)
    page.evaluate(WATCH_PROGRESS)
    data = png_bytes(1000, 900, noise=True)  # about 2.7 MB
    assert 2 * 1024 * 1024 < len(data) < 3 * 1024 * 1024
    throttle_uploads(page, 1_000_000)  # about 3 s

    choose(page, "big.png", data)
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=60_000)
    seen = page.evaluate("window.progressSeen")
    assert len({value for value in seen if 0 < value < 100}) >= 5, seen  # it moved along the way
    assert seen[-1] == 100
    assert avatar_rendered(page)["width"] == 1000
    user.refresh_from_db()
    assert oss.head_object(user.avatar_key).size == len(data)
    page.screenshot(path=str(artifacts / "avatar-large.png"), full_page=True)


def test_cancel_stops_a_multipart_upload_and_changes_nothing(page, live_server, user, password, sandbox):
    """In the large-files section (STS credentials, multipart): Cancel also aborts the upload in OSS."""
    log_in(page, live_server, user, password)
    uploads: dict[str, str] = {}  # uploadId -> key, from the multipart requests the page sends

    def remember(request) -> None:
        url = urlsplit(request.url)
        for upload_id in parse_qs(url.query).get("uploadId", []):
            uploads[upload_id] = unquote(url.path).removeprefix(f"/{sandbox.config.bucket}/")

    page.on("request", remember)
    throttle_uploads(page, 500_000)  # about 5 s for the whole file: time to press Cancel mid-upload
    choose(page, "big.png", png_bytes(1000, 900, noise=True), section="large-")
    page.click('[data-testid="large-upload-button"]')
    expect(page.locator('[data-testid="large-cancel-button"]')).to_be_enabled()
    page.click('[data-testid="large-cancel-button"]')

    expect(status(page, "large-")).to_have_text("Upload cancelled. Nothing was changed.", timeout=30_000)
    expect(page.locator('[data-testid="large-upload-button"]')).to_be_enabled()
    assert checkpoints(page) == []  # nothing left to resume
    # The page also aborted the multipart upload, so no orphaned parts stay behind in the bucket.
    assert len(uploads) == 1, uploads
    upload_id, key = uploads.popitem()
    assert key.startswith(f"user/{user.pk}/files/")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        server_bucket(sandbox).list_parts(key, upload_id)


def test_a_long_upload_outlives_its_first_token(page, live_server, user, password, sandbox):
    """The first credentials live 2 s, the upload takes about 4: refreshSTSToken keeps it going (large files:
    STS credentials and multipart)."""
    log_in(page, live_server, user, password)
    token_calls: list[str] = []
    first: list = []

    def sts_token(route):
        """The page's first credentials come straight from the sandbox STS with a 2-second life."""
        token_calls.append(route.request.method)
        if len(token_calls) > 1:
            return route.continue_()
        short = issue_credentials(
            sandbox.config,
            role_session_name=f"user-{user.pk}",
            session_policy=session_policy_build(user_id=user.pk),
            duration_seconds=2,
        )
        first.append(short)
        return route.fulfill(
            json={
                "accessKeyId": short.access_key_id,
                "accessKeySecret": short.access_key_secret,
                "securityToken": short.security_token,
                "expiration": short.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "bucket": sandbox.config.bucket,
                "region": sandbox.config.region,
                "endpoint": sandbox.oss_endpoint,
                "prefix": f"user/{user.pk}/",
            }
        )

    page.route("**/api/uploads/sts-token/", sts_token)
    throttle_uploads(page, 700_000)  # about 4 s for 2.7 MB
    started = time.monotonic()
    data = png_bytes(1000, 900, noise=True)
    choose(page, "big.png", data, section="large-")
    page.click('[data-testid="large-upload-button"]')

    expect(status(page, "large-")).to_have_text("big.png uploaded.", timeout=30_000)
    assert time.monotonic() - started > 3  # the first token expired while the upload ran
    with pytest.raises(CredentialError):
        resolve_principal(
            sandbox.config, access_key_id=first[0].access_key_id, security_token=first[0].security_token
        )
    assert len(token_calls) >= 2  # ali-oss asked the API for fresh credentials mid-upload
    key = page.locator('[data-testid="large-uploaded-key"]').text_content().removeprefix("Stored as ")
    assert server_bucket(sandbox).get_object(key).read() == data


def test_writing_another_users_key_is_denied_and_changes_nothing(
    page, live_server, user, other_user, password, sandbox
):
    log_in(page, live_server, user, password)
    theirs = f"user/{other_user.pk}/x.png"

    uploaded = page.evaluate(
        """async (key) => {
            const file = new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10])], 'x.png', {type: 'image/png'});
            return await window.avatarUpload.upload(file, key);
        }""",
        theirs,
    )

    assert uploaded is False
    expect(status(page)).to_contain_text("Access denied")
    with pytest.raises(oss.OssError) as missing:
        oss.head_object(theirs)
    assert missing.value.code == "object_not_found"
    for person in (user, other_user):
        person.refresh_from_db()
        assert person.avatar_key == ""
    expect(page.locator('[data-testid="avatar-placeholder"]')).to_be_visible()


def test_file_too_large_is_refused_before_any_upload(page, live_server, user, password, settings, sandbox):
    settings.AVATAR_MAX_BYTES = 50 * 1024
    log_in(page, live_server, user, password)
    oss_requests: list[str] = []
    page.on(
        "request", lambda r: oss_requests.append(r.url) if r.url.startswith(sandbox.oss_endpoint) else None
    )

    choose(page, "big.png", png_bytes(200, 200, noise=True))

    expect(status(page)).to_contain_text("That file is 117 KB; avatars may be at most 50 KB")
    expect(page.locator('[data-testid="upload-button"]')).to_be_disabled()
    assert oss_requests == []


def test_not_an_image_is_refused(page, live_server, user, password):
    log_in(page, live_server, user, password)
    choose(page, "notes.txt", b"hello", mime="text/plain")
    expect(status(page)).to_contain_text("not an image")
    expect(page.locator('[data-testid="upload-button"]')).to_be_disabled()


def test_oss_down_says_network_problem(page, live_server, user, password, sandbox):
    log_in(page, live_server, user, password)
    page.route(f"{sandbox.oss_endpoint}/**", lambda route: route.abort("connectionrefused"))

    choose(page, "me.png", png_bytes())
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_contain_text("Network problem", timeout=30_000)
    user.refresh_from_db()
    assert user.avatar_key == ""
