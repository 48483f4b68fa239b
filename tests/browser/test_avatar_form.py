"""Avatars through a server-signed PostObject form (POST /api/uploads/post-policy/): OSS itself enforces
the size, type and key. Real Chromium, the page's own XHR, the sandbox OSS checking the signed policy."""

import json
from urllib.parse import urlsplit

import oss2
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import choose, log_in, server_bucket, status, throttle_uploads
from tests.pngs import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def stored(sandbox, user) -> set[str]:
    """The keys in the user's folder (the sandbox outlives the test's user ids, so compare before/after)."""
    return {o.key for o in oss2.ObjectIterator(server_bucket(sandbox), prefix=f"user/{user.pk}/")}


def api_requests(page, path: str) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if urlsplit(r.url).path == path else None)
    return seen


def test_the_avatar_goes_through_the_server_signed_form(page, live_server, user, password, sandbox):
    """PostObject: the file is the last part of a multipart/form-data POST carrying the server's signed
    fields; the page never asks for STS credentials on this path."""
    log_in(page, live_server, user, password)
    tokens = api_requests(page, "/api/uploads/sts-token/")
    forms = api_requests(page, "/api/uploads/post-policy/")
    to_oss: list = []
    page.on("request", lambda r: to_oss.append(r) if r.url.startswith(sandbox.oss_endpoint) else None)
    data = png_bytes(40, 40)

    choose(page, "me.png", data)
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
    assert len(forms) == 1 and tokens == []
    [post] = [r for r in to_oss if r.method != "GET"]
    assert post.method == "POST" and urlsplit(post.url).query == ""
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    user.refresh_from_db()
    assert server_bucket(sandbox).get_object(user.avatar_key).read() == data


def test_a_too_large_avatar_is_refused_by_storage_itself(page, live_server, user, password, sandbox):
    """With the browser's own check bypassed and the size understated to the API, OSS still refuses the
    6 MB file (EntityTooLarge: the signed policy's content-length-range ends at the declared size) and
    nothing is kept."""
    log_in(page, live_server, user, password)
    page.evaluate("window.avatarUpload.widgets.avatar.maxBytes = Infinity")  # no check in the browser

    def understate(route):
        body = route.request.post_data_json
        return route.continue_(post_data=json.dumps({**body, "size": 1000}))

    page.route("**/api/uploads/post-policy/", understate)
    answers: list = []
    page.on("response", lambda r: answers.append(r) if r.url.startswith(sandbox.oss_endpoint) else None)
    data = png_bytes(1500, 1400, noise=True)
    assert len(data) > 6 * 1024 * 1024
    before = stored(sandbox, user)

    choose(page, "huge.png", data)
    page.click('[data-testid="upload-button"]')

    # The page's own limit is off here, so it names the form's: the 1000 bytes it declared.
    expect(status(page)).to_have_text(
        "That file is too large: avatars may be at most 1000 bytes.", timeout=60_000
    )
    [answer] = [r for r in answers if r.request.method == "POST"]
    assert answer.status == 400 and "<Code>EntityTooLarge</Code>" in answer.text()
    assert stored(sandbox, user) == before  # nothing kept
    user.refresh_from_db()
    assert user.avatar_key == ""


def test_cancel_stops_a_form_upload_and_changes_nothing(page, live_server, user, password, sandbox):
    log_in(page, live_server, user, password)
    throttle_uploads(page, 300_000)
    before = stored(sandbox, user)
    choose(page, "big.png", png_bytes(1000, 900, noise=True))
    page.click('[data-testid="upload-button"]')
    expect(page.locator('[data-testid="cancel-button"]')).to_be_enabled()
    page.wait_for_function("() => document.querySelector('[data-testid=\"upload-progress\"]').value > 5")
    page.click('[data-testid="cancel-button"]')

    expect(status(page)).to_have_text("Upload cancelled. Nothing was changed.", timeout=30_000)
    expect(page.locator('[data-testid="upload-progress"]')).to_have_js_property("value", 0)
    assert stored(sandbox, user) == before  # nothing kept
    user.refresh_from_db()
    assert user.avatar_key == ""
