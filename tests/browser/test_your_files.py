"""Your files on the upload page: what the ledger knows (from the sandbox's OSS event pushes), with size,
date and delete, on a phone and a desktop, in English and Chinese. Real Chromium, ali-oss and the sandbox."""

import re

import pytest
from playwright.sync_api import expect

from ledger.models import UploadUsage
from tests.browser.conftest import csp_violations, watch_console
from tests.browser.helpers import choose, status
from tests.ledger.conftest import events_to  # noqa: F401  (the sandbox pushes its events to the live server)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("width", "locale"), [(390, "en-US"), (1440, "en-US"), (390, "zh-CN")])
def test_your_files_lists_uploads_and_deletes_them(
    browser, live_server, request, user, password, artifacts, width, locale
):
    events = request.getfixturevalue("events_to")
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    context.set_default_timeout(20_000)
    page = watch_console(context.new_page())
    chinese = locale.startswith("zh")
    try:
        page.goto(events.base_url + "/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click('[data-testid="login-button"]')
        expect(page.locator("#your-files")).to_have_attribute("data-loaded", "true")
        expect(page.locator('[data-testid="files-empty"]')).to_be_visible()
        expect(page.locator("#your-files h2")).to_have_text("你的文件" if chinese else "Your files")

        choose(page, "report.txt", b"r" * 3000, mime="text/plain", section="large-")
        page.click('[data-testid="large-upload-button"]')
        expect(status(page, "large-")).to_have_attribute("data-kind", "success", timeout=30_000)
        row = page.locator('[data-role="files"] tr').filter(has_text="report.txt")
        expect(row).to_have_count(1, timeout=10_000)
        expect(row.locator("td.numeric")).to_have_text("3 KB")
        expect(row.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width  # no sideways scrolling
        page.screenshot(path=str(artifacts / f"your-files-{width}-{locale}.png"), full_page=True)

        row.locator('[data-testid="file-delete"]').click()
        expect(page.locator('[data-testid="files-status"]')).to_have_text(
            re.compile(r"^已删除 \S*report\.txt。$") if chinese else re.compile(r"^\S*report\.txt deleted\.$")
        )
        expect(row).to_have_count(0)
        assert UploadUsage.objects.get(user=user).stored_objects == 0
        assert csp_violations(page) == []
    finally:
        context.close()
