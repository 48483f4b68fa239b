"""The bucket's applied CORS rule decides whether Chromium may upload, as on OSS."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from tests.browser.test_avatar_upload import choose, log_in, status
from tests.pngs import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def own_sandbox(settings, tmp_path):
    """A sandbox whose bucket CORS this test changes, so the shared one keeps its stand-in rule."""
    with Sandbox(SandboxConfig.from_settings(data_dir=tmp_path / "cors-sandbox")) as running:
        settings.ALIYUN_STS_ENDPOINT = running.sts_endpoint
        settings.ALIYUN_OSS_ENDPOINT = running.oss_endpoint
        running.config.cors_allowed_origins = ["*"]  # replaced by the rule aliyun_setup applies
        yield running


def test_an_origin_the_cors_rule_does_not_allow_cannot_upload_until_it_is_allowed(
    page, live_server, user, password, own_sandbox
):
    call_command(
        "aliyun_setup", "--apply", "--yes", "--origin", "https://elsewhere.example", stdout=io.StringIO()
    )
    log_in(page, live_server, user, password)
    refused: list[str] = []
    page.on("requestfailed", lambda request: refused.append(request.url))

    choose(page, "a.png", png_bytes(40, 40))
    page.click('[data-testid="upload-button"]')
    expect(status(page)).to_have_attribute("data-kind", "error", timeout=20_000)
    expect(status(page)).to_contain_text("Network problem")
    assert any(url.startswith(own_sandbox.oss_endpoint) for url in refused)  # blocked by CORS, not by us
    assert any("CORS" in message for message in page.console_messages_seen)  # type: ignore[attr-defined]
    user.refresh_from_db()
    assert not user.avatar_key

    out = io.StringIO()
    call_command("aliyun_setup", "--apply", "--yes", "--origin", live_server.url, stdout=out)
    assert "PutBucketCors" in out.getvalue()
    page.reload()
    expect(page.locator("#avatar-uploader")).to_have_attribute("data-ready", "true")
    choose(page, "b.png", png_bytes(40, 40))
    page.click('[data-testid="upload-button"]')
    expect(status(page)).to_have_text("Avatar updated.", timeout=20_000)
    user.refresh_from_db()
    assert user.avatar_key
