"""The demo page with no AccessKey on the server: its identity comes from RRSA (AssumeRoleWithOIDC over the
sandbox's HTTPS STS with the projected token), and the browser uploads an avatar with the credentials the
server minted by role chaining; the server confirms it and signs its URL with its temporary credentials."""

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.helpers import avatar_rendered, choose, log_in, status
from tests.keyless import use_rrsa
from tests.pngs import png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_demo_page_uploads_an_avatar_without_an_access_key(
    page, live_server, user, password, settings, keyless_sandbox, monkeypatch
):
    use_rrsa(settings, keyless_sandbox)
    monkeypatch.setattr(keyless_sandbox.config, "cors_allowed_origins", [live_server.url])
    before = requests.get(f"http://{keyless_sandbox.sts_endpoint}/__sandbox__/stats", timeout=5).json()

    log_in(page, live_server, user, password)
    choose(page, "me.png", png_bytes(48, 48))
    page.click('[data-testid="upload-button"]')

    expect(status(page)).to_have_text("Avatar updated.", timeout=30_000)
    image = avatar_rendered(page)
    assert image["width"] == 48 and not image["hidden"], page.console_messages_seen
    assert (
        image["src"].startswith(f"{keyless_sandbox.oss_endpoint}/")
        and "x-oss-credential=STS." in image["src"]
    )
    after = requests.get(f"http://{keyless_sandbox.sts_endpoint}/__sandbox__/stats", timeout=5).json()
    assert after["calls_by_caller"]["long-term"] == before["calls_by_caller"]["long-term"]
    assert after["calls_by_caller"]["sts"] > before["calls_by_caller"]["sts"]  # role chaining
