"""What the browser tests do on the upload page, the way a person (or a script automating the page) does it."""

import base64

import oss2
from django.conf import settings
from playwright.sync_api import Page, expect

from accounts.models import User

# Records every value the progress bar shows, so a test can see it move, not just end at 100.
WATCH_PROGRESS = """() => {
  const bar = document.querySelector('[data-testid="upload-progress"]');
  window.progressSeen = [];
  new MutationObserver(() => window.progressSeen.push(Number(bar.value)))
    .observe(bar, {attributes: true, attributeFilter: ['value']});
}"""


def log_in(page: Page, live_server, user: User, password: str) -> None:
    """Through the form, the way a person does: an anonymous visit to / lands on the login page."""
    page.goto(live_server.url + "/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click('[data-testid="login-button"]')
    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator("#avatar-uploader")).to_have_attribute("data-ready", "true")


def choose(page: Page, name: str, data: bytes, mime: str = "image/png", *, section: str = "") -> None:
    """Pick a file in the avatar section, or with ``section="large-"`` in the large-files one."""
    page.set_input_files(
        f'[data-testid="{section}file-input"]', files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """A slow uplink, emulated by Chromium itself: requests leave at once (signed, with their token)
    and their bodies trickle out, the way a big upload on a poor connection behaves."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def server_bucket(sandbox) -> oss2.Bucket:
    """The sandbox bucket seen with the server's own RAM key (oss2 directly: the seam has no ListParts)."""
    auth = oss2.Auth(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET)
    return oss2.Bucket(auth, sandbox.oss_endpoint, sandbox.config.bucket)


def status(page: Page, section: str = ""):
    return page.locator(f'[data-testid="{section}upload-status"]')


def avatar_rendered(page: Page) -> dict:
    return page.eval_on_selector(
        '[data-testid="avatar-image"]',
        "img => ({src: img.currentSrc, width: img.naturalWidth, hidden: img.hidden})",
    )


def drop(page: Page, zone_test_id: str, name: str, data: bytes, mime: str = "image/png") -> None:
    """Drag a file onto a drop zone: the events a browser fires when a person drops a file from the desktop."""
    page.evaluate(
        """({testId, name, b64, mime}) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: mime}));
            const zone = document.querySelector(`[data-testid="${testId}"]`);
            for (const type of ['dragenter', 'dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
            }
        }""",
        {"testId": zone_test_id, "name": name, "b64": base64.b64encode(data).decode(), "mime": mime},
    )


def credentials_answer(credentials, *, sandbox, user: User) -> dict:
    """What POST /api/uploads/sts-token/ answers, for credentials the test minted itself."""
    return {
        "accessKeyId": credentials.access_key_id,
        "accessKeySecret": credentials.access_key_secret,
        "securityToken": credentials.security_token,
        "expiration": credentials.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bucket": sandbox.config.bucket,
        "region": sandbox.config.region,
        "endpoint": sandbox.oss_endpoint,
        "prefix": f"user/{user.pk}/",
    }


def checkpoints(page: Page) -> list[dict]:
    """The multipart checkpoints the page keeps in localStorage."""
    return page.evaluate(
        """() => Object.keys(localStorage).filter((k) => k.startsWith('ossUploadCheckpoint:'))
                 .map((k) => JSON.parse(localStorage.getItem(k)))"""
    )
