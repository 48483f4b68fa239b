"""The upload page as people use it: drag and drop, preview, early refusals, progress on a slow link, retry,
resume after a reload, renewed credentials, Chinese, a phone's width. Real Chromium, ali-oss and the sandbox."""

import itertools
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from sandbox.tokens import issue_credentials
from tests.browser.conftest import csp_violations, watch_console
from tests.browser.helpers import (
    avatar_rendered,
    checkpoints,
    choose,
    credentials_answer,
    drop,
    log_in,
    server_bucket,
    status,
    throttle_uploads,
)
from tests.pngs import png_bytes
from uploads.services.reuse import session_policy_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
STS_TOKEN = "**/api/uploads/sts-token/"

# Every change of the progress bar and of the figures under it, with the time it happened.
RECORD_PROGRESS = """(prefix) => {
  const bar = document.querySelector(`[data-testid="${prefix}upload-progress"]`);
  const figures = document.querySelector(`[data-testid="${prefix}upload-figures"]`);
  window.progressLog = [];
  window.figuresLog = [];
  new MutationObserver(() => window.progressLog.push([performance.now(), Number(bar.value)]))
    .observe(bar, {attributes: true, attributeFilter: ['value']});
  new MutationObserver(() => window.figuresLog.push(figures.textContent))
    .observe(figures, {childList: true, characterData: true, subtree: true});
}"""


def large(page: Page, test_id: str):
    return page.locator(f'[data-testid="large-{test_id}"]')


def wait_for_checkpoint(page: Page, *, parts: int) -> None:
    """Until a multipart upload's checkpoint in localStorage records ``parts`` finished parts."""
    page.wait_for_function(
        f"""() => Object.keys(localStorage).some((k) => k.startsWith('ossUploadCheckpoint:')
                  && JSON.parse(localStorage.getItem(k)).doneParts.length >= {parts})""",
        timeout=30_000,
    )


def oss_requests(page: Page, sandbox) -> list[tuple[str, str]]:
    """(method, URL) of every request the page sends to the storage service, in order."""
    seen: list[tuple[str, str]] = []
    page.on(
        "request",
        lambda r: seen.append((r.method, r.url)) if r.url.startswith(sandbox.oss_endpoint) else None,
    )
    return seen


def api_requests(page: Page, path: str) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if urlsplit(r.url).path == path else None)
    return seen


def test_a_dropped_picture_is_previewed_then_becomes_the_avatar(page, live_server, user, password):
    log_in(page, live_server, user, password)
    data = png_bytes(80, 60)

    drop(page, "drop-zone", "holiday.png", data)

    expect(page.locator('[data-testid="preview"]')).to_be_visible()
    preview = page.locator('[data-testid="preview-image"]')
    expect(preview).to_be_visible()
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"preview-image\"]').naturalWidth === 80"
    )
    expect(page.locator('[data-testid="preview"]')).to_contain_text("holiday.png")
    expect(status(page)).to_have_text(re.compile(r"Ready to upload holiday\.png"))
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
    assert avatar_rendered(page)["width"] == 80
    user.refresh_from_db()
    assert user.avatar_key.endswith(".png")


def test_the_picker_is_reachable_and_opened_with_the_keyboard(page, live_server, user, password):
    log_in(page, live_server, user, password)
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "file-input":
            break
    assert page.evaluate("document.activeElement.dataset.testid") == "file-input"
    assert page.evaluate("document.querySelector('[data-testid=\"drop-zone\"]').matches(':focus-within')")
    # The file input has a label (the drop zone's text) and its hint, as a screen reader announces it.
    assert page.locator('[data-testid="file-input"]').evaluate("i => i.labels[0].textContent").strip()

    # Space on the focused input activates it, which is what opens the picker.
    page.evaluate(
        """() => document.querySelector('[data-testid="file-input"]').addEventListener(
               'click', (event) => { window.pickerOpened = true; event.preventDefault(); })"""
    )
    page.keyboard.press("Space")
    page.wait_for_function("() => window.pickerOpened === true")
    choose(page, "me.png", png_bytes(8, 8))
    page.focus('[data-testid="file-input"]')

    expect(status(page)).to_have_text(re.compile(r"Ready to upload me\.png"))
    expect(status(page)).to_have_attribute("aria-live", "polite")
    page.keyboard.press("Tab")  # next stop: the Upload button
    assert page.evaluate("document.activeElement.dataset.testid") == "upload-button"
    page.keyboard.press("Enter")
    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)


def test_a_non_image_named_png_is_refused_before_any_byte_is_sent(page, live_server, user, password, sandbox):
    log_in(page, live_server, user, password)
    sent = oss_requests(page, sandbox)
    asked = api_requests(page, "/api/uploads/sts-token/") + api_requests(page, "/api/me/avatar/upload-key/")

    # The name and the browser's guess say PNG; the first bytes say otherwise.
    choose(page, "photo.png", b"%PDF-1.7\n" + b"x" * 2000, mime="image/png")

    expect(status(page)).to_have_text(
        "That file is not an image we accept. Choose a PNG, JPEG, GIF or WebP picture."
    )
    expect(page.locator('[data-testid="upload-button"]')).to_be_disabled()
    expect(page.locator('[data-testid="preview-image"]')).to_be_hidden()
    # A real picture whose name says otherwise is fine: its bytes decide.
    choose(page, "scan.txt", png_bytes(8, 8), mime="text/plain")
    expect(page.locator('[data-testid="upload-button"]')).to_be_enabled()
    assert sent == [] and asked == []


def test_progress_moves_smoothly_with_bytes_speed_and_time_left_on_a_slow_link(
    page, live_server, user, password, sandbox
):
    log_in(page, live_server, user, password)
    data = os.urandom(1_500_000)
    page.evaluate(RECORD_PROGRESS, "large-")
    throttle_uploads(page, 250_000)  # about 6 s: 12 parts of 128 KB, three at a time
    started = time.monotonic()

    large(page, "file-input").set_input_files(
        files=[{"name": "video.bin", "mimeType": "application/octet-stream", "buffer": data}]
    )
    large(page, "upload-button").click()

    expect(large(page, "upload-status")).to_have_text("video.bin uploaded.", timeout=60_000)
    assert time.monotonic() - started > 4
    log = page.evaluate("window.progressLog")
    values = [value for _t, value in log]
    assert values[-1] == 100
    assert values == sorted(values), "the bar never goes back"
    moving = [(t, v) for t, v in log if 0 < v < 100]
    assert len({v for _t, v in moving}) >= 20, values  # not a jump per part
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(moving)]
    assert max(gaps) < 1200, gaps  # ms: no long still stretch while bytes are flowing
    first_move = next(t for t, v in log if v > 0)
    assert first_move - log[0][0] < 1500  # it moves long before the first part is done (128 KB ≈ 1.5 s)
    figures = page.evaluate("window.figuresLog")
    pattern = re.compile(r"^[\d.]+ (KB|MB) of 1\.4 MB · \d+ KB/s · \d+ s left$")
    assert any(pattern.match(text) for text in figures), figures[:10]
    key = page.locator('[data-testid="large-uploaded-key"]').text_content().removeprefix("Stored as ")
    assert key.startswith(f"user/{user.pk}/files/") and key.endswith("-video.bin")
    assert server_bucket(sandbox).get_object(key).read() == data


def test_an_interrupted_upload_resumes_after_a_reload(page, live_server, user, password, sandbox, tmp_path):
    """Reload mid-upload, choose the same file again: the parts already stored are not sent again."""
    log_in(page, live_server, user, password)
    data = os.urandom(2_000_000)
    path = tmp_path / "backup.tar"
    path.write_bytes(data)
    sent = oss_requests(page, sandbox)
    tokens = api_requests(page, "/api/uploads/sts-token/")
    throttle_uploads(page, 300_000)

    large(page, "file-input").set_input_files(str(path))
    large(page, "upload-button").click()
    wait_for_checkpoint(page, parts=4)
    page.reload()  # the tab is closed mid-upload, or the laptop lid shut
    expect(page.locator("#file-uploader")).to_have_attribute("data-ready", "true")
    [saved] = checkpoints(page)
    done_before = {part["number"] for part in saved["doneParts"]}
    sent_before, tokens_before = len(sent), len(tokens)
    throttle_uploads(page, -1)

    large(page, "file-input").set_input_files(str(path))
    expect(large(page, "upload-status")).to_contain_text("backup.tar was partly uploaded")
    expect(large(page, "upload-button")).to_have_text("Resume upload")
    large(page, "upload-button").click()

    expect(large(page, "upload-status")).to_have_text("backup.tar uploaded.", timeout=60_000)
    assert len(tokens) > tokens_before  # fresh credentials from the API after the reload
    resumed = sent[sent_before:]
    assert not any(
        "uploads" in parse_qs(urlsplit(url).query, keep_blank_values=True) and method == "POST"
        for method, url in resumed
        if "uploadId" not in url
    ), "no new multipart upload"
    parts_after = {
        int(parse_qs(urlsplit(url).query)["partNumber"][0])
        for method, url in resumed
        if method == "PUT" and "partNumber" in url
    }
    assert parts_after and not parts_after & done_before, (sorted(done_before), sorted(parts_after))
    assert all(saved["uploadId"] in url for method, url in resumed if method in ("PUT", "POST"))
    assert server_bucket(sandbox).get_object(saved["name"]).read() == data
    assert checkpoints(page) == []  # done: nothing left to resume


def test_the_next_person_on_a_shared_browser_does_not_resume_into_the_previous_ones_folder(
    page, live_server, user, other_user, password, sandbox, tmp_path
):
    """Alice's unfinished upload is kept in localStorage after she logs out; Bob, on the same
    browser with the same file, uploads it to his own folder instead of resuming into hers (his
    credentials may not write there: every try was refused, with nothing to do about it)."""
    log_in(page, live_server, user, password)
    path = tmp_path / "shared.tar"
    path.write_bytes(os.urandom(2_000_000))
    throttle_uploads(page, 300_000)
    large(page, "file-input").set_input_files(str(path))
    large(page, "upload-button").click()
    wait_for_checkpoint(page, parts=2)
    page.reload()
    page.click('[data-testid="logout-button"]')
    throttle_uploads(page, -1)
    log_in(page, live_server, other_user, password)

    large(page, "file-input").set_input_files(str(path))
    expect(large(page, "upload-button")).to_have_text("Upload")
    large(page, "upload-button").click()

    expect(large(page, "upload-status")).to_have_text("shared.tar uploaded.", timeout=60_000)
    key = large(page, "uploaded-key").text_content().removeprefix("Stored as ")
    assert key.startswith(f"user/{other_user.pk}/files/"), key


def test_a_failed_upload_can_be_retried(page, live_server, user, password, sandbox):
    log_in(page, live_server, user, password)
    page.route(f"{sandbox.oss_endpoint}/**", lambda route: route.abort("connectionreset"))
    choose(page, "me.png", png_bytes(30, 30))
    page.click('[data-testid="upload-button"]')
    expect(status(page)).to_contain_text("Network problem", timeout=30_000)
    expect(page.locator('[data-testid="upload-progress"]')).to_have_js_property("value", 0)

    page.unroute(f"{sandbox.oss_endpoint}/**")
    expect(page.locator('[data-testid="retry-button"]')).to_be_visible()
    page.click('[data-testid="retry-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
    expect(page.locator('[data-testid="retry-button"]')).to_be_hidden()
    assert avatar_rendered(page)["width"] == 30


@pytest.mark.parametrize(
    "bad_credentials",
    ["expired", "unknown_key"],
)
def test_refused_credentials_are_renewed_once(page, live_server, user, password, sandbox, bad_credentials):
    """OSS answers SecurityTokenExpired, or InvalidAccessKeyId (as real OSS does for missing or expired STS
    credentials): the page asks the API again once and the upload goes through (STS path: large files)."""
    log_in(page, live_server, user, password)
    calls: list[int] = []

    def first_one_bad(route):
        calls.append(1)
        if len(calls) > 1:
            return route.continue_()
        minted = issue_credentials(
            sandbox.config,
            role_session_name=f"user-{user.pk}",
            session_policy=session_policy_build(user_id=user.pk),
            duration_seconds=1,
        )
        answer = credentials_answer(minted, sandbox=sandbox, user=user)
        if bad_credentials == "unknown_key":
            answer["accessKeyId"] = "sandbox-no-such-key-id"
        else:
            time.sleep(1.2)  # expired on arrival
        return route.fulfill(json=answer)

    page.route(STS_TOKEN, first_one_bad)
    choose(page, "notes.txt", b"x" * 300_000, mime="text/plain", section="large-")
    page.click('[data-testid="large-upload-button"]')

    expect(status(page, "large-")).to_have_text("notes.txt uploaded.", timeout=30_000)
    assert len(calls) == 2


def test_credentials_refused_twice_say_the_upload_permission_expired(
    page, live_server, user, password, sandbox
):
    log_in(page, live_server, user, password)
    calls: list[int] = []

    def always_unknown(route):
        calls.append(1)
        response = route.fetch()
        answer = response.json()
        answer["accessKeyId"] = "sandbox-no-such-key-id"
        return route.fulfill(response=response, json=answer)

    page.route(STS_TOKEN, always_unknown)
    choose(page, "notes.txt", b"x" * 300_000, mime="text/plain", section="large-")
    page.click('[data-testid="large-upload-button"]')

    expect(status(page, "large-")).to_have_text(
        "Your upload permission expired and could not be renewed. Reload the page and try again.",
        timeout=30_000,
    )
    assert len(calls) == 2  # renewed once, not in a loop
    expect(page.locator('[data-testid="large-retry-button"]')).to_be_visible()


def test_the_page_in_chinese(browser, live_server, user, password, sandbox, artifacts):
    """A browser that prefers Chinese gets the pages, the script's messages and the API's errors in Chinese;
    the switcher goes back to English and the choice sticks."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 900, "height": 900})
    context.set_default_timeout(20_000)
    page = watch_console(context.new_page())
    try:
        page.goto(live_server.url + "/")
        expect(page.locator("h1")).to_have_text("登录")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click('[data-testid="login-button"]')
        expect(page.locator("#avatar-uploader")).to_have_attribute("data-ready", "true")
        expect(page.locator("h1")).to_have_text("你的头像")
        expect(page.locator('[data-testid="upload-button"]')).to_have_text("上传")

        choose(page, "notes.png", b"hello, not a picture", mime="image/png")
        expect(status(page)).to_have_text("这个文件不是我们接受的图片。请选择 PNG、JPEG、GIF 或 WebP 图片。")
        choose(page, "me.png", png_bytes(48, 48))
        expect(status(page)).to_have_text(re.compile(r"^准备上传 me\.png（\d+ KB）。$"))  # noqa: RUF001
        page.click('[data-testid="upload-button"]')
        expect(status(page)).to_have_text("头像已更新。", timeout=30_000)
        screenshot(page, artifacts, "upload-zh.png")

        page.click('[data-testid="language-en"]')
        expect(page.locator("h1")).to_have_text("Your avatar")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()
        expect(page.locator("h1")).to_have_text("Your avatar")  # the choice is kept (a cookie)
        choose(page, "me.png", png_bytes(48, 48))
        page.click('[data-testid="upload-button"]')
        expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
        screenshot(page, artifacts, "upload-en.png")
        assert csp_violations(page) == []
    finally:
        context.close()


def screenshot(page: Page, artifacts: Path, name: str) -> None:
    """Into test-artifacts/, and into docs/ for the README when UPDATE_README_SCREENSHOT is set."""
    page.screenshot(path=str(artifacts / name), full_page=True)
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        shutil.copyfile(artifacts / name, DOCS / name)


@pytest.mark.parametrize("width", [360, 390])
def test_fits_a_phone(browser, live_server, user, password, width, artifacts):
    context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=True, has_touch=True)
    page = watch_console(context.new_page())
    try:
        log_in(page, live_server, user, password)
        brand = page.locator(".brand").bounding_box()
        logout = page.locator('[data-testid="logout-button"]').bounding_box()
        switch = page.locator('[data-testid="language-zh-hans"]').bounding_box()
        # One line: the title, the language switch and Log out share a row.
        for box in (logout, switch):
            assert abs((box["y"] + box["height"] / 2) - (brand["y"] + brand["height"] / 2)) < 4, (brand, box)
        assert page.locator(".topbar").bounding_box()["height"] < 64
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
        zone = page.locator('[data-testid="drop-zone"]').bounding_box()
        assert zone["x"] >= 0 and zone["x"] + zone["width"] <= width
        page.screenshot(path=str(artifacts / f"phone-{width}.png"), full_page=True)
        assert csp_violations(page) == []
    finally:
        context.close()


def test_a_file_name_with_a_colon_still_uploads(page, live_server, user, password, sandbox):
    """The session policy refuses keys with ':', so the page keeps the name but not the colon."""
    log_in(page, live_server, user, password)
    data = b"meeting notes\n" * 100
    large(page, "file-input").set_input_files(
        files=[{"name": "12:30 notes.txt", "mimeType": "text/plain", "buffer": data}]
    )
    large(page, "upload-button").click()

    expect(large(page, "upload-status")).to_have_text("12:30 notes.txt uploaded.", timeout=30_000)
    key = page.locator('[data-testid="large-uploaded-key"]').text_content().removeprefix("Stored as ")
    assert key.startswith(f"user/{user.pk}/files/") and key.endswith("-12_30 notes.txt")
    assert server_bucket(sandbox).get_object(key).read() == data
