"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server and the sandbox.

No `playwright install`: the driver ships in the wheel and the browser is the system's /usr/bin/chromium.
Without it the browser tests skip on a developer machine, and fail in CI (the CI variable is set).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

# Sync Playwright runs an event loop in the test thread, which trips Django's async-safety check on
# every ORM call the test makes; the tests never share a connection across threads, so this is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (browser tests must run in CI)")
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def watch_console(page: Page) -> Page:
    """Keep the page's console messages (``page.console_messages_seen``) for assertions and their messages."""
    page.console_messages_seen = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.console_messages_seen.append(f"{msg.type}: {msg.text}"))  # type: ignore[attr-defined]
    return page


def csp_violations(page: Page) -> list[str]:
    """What Chromium said it refused because of the Content-Security-Policy."""
    return [m for m in page.console_messages_seen if "Content Security Policy" in m]  # type: ignore[attr-defined]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh profile per test; console errors are kept for the assertion messages. Every test also
    shows that the pages work under their Content-Security-Policy: nothing was refused."""
    context = browser.new_context(viewport={"width": 900, "height": 760})
    context.set_default_timeout(20_000)
    page = watch_console(context.new_page())
    yield page
    context.close()
    violations = csp_violations(page)
    assert violations == [], violations


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _bucket_cors_allows_the_live_server(request, monkeypatch) -> None:
    """The sandbox bucket enforces CORS like OSS: let the live server's origin in, as `make run` does
    with SANDBOX_CORS_ALLOWED_ORIGINS (tests that need another rule set their own)."""
    if "live_server" in request.fixturenames:
        sandbox = request.getfixturevalue("sandbox")
        live_server = request.getfixturevalue("live_server")
        monkeypatch.setattr(sandbox.config, "cors_allowed_origins", [live_server.url])
