"""Every admin page we own, at a phone's width (390 px) and a laptop's (1440 px): the document must not be
wider than the window (no horizontal scrolling). Prints the measured table; screenshots in test-artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from avatars.models import AvatarChange
from ledger.models import UploadUsage
from uploads.models import CredentialUrl, TokenIssuance

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1440)


@pytest.fixture
def audit_rows(django_user_model):
    """A user with a bit of everything on the pages: issuances of each kind, a credential URL, avatar
    changes, usage; long values (user agents, keys, error messages) as real traffic has them."""
    user = django_user_model.objects.create_user(username="a-rather-long-username-of-someone", password="x")
    agent = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " * 2
    )
    now = timezone.now()
    for n, (outcome, auth) in enumerate(
        [("issued", "jwt"), ("reused", "session"), ("refused", "credential_url"), ("failed", "jwt")] * 4
    ):
        TokenIssuance.objects.create(
            user=user,
            username=user.username,
            outcome=outcome,
            auth_method=auth,
            prefix=f"user/{user.pk}/",
            client_ip="2001:db8:85a3:8d3:1319:8a2e:370:7348",
            user_agent=agent,
            error_code="sts_rejected" if outcome == "failed" else "",
            created_at=now - timedelta(hours=n * 7),
        )
    for _turn in range(3):  # three deleted accounts that shared one name: their rows keep their ids
        gone = django_user_model.objects.create_user(username="someone-who-left", password="x")
        TokenIssuance.objects.create(
            user=gone, username=gone.username, outcome="issued", auth_method="jwt", prefix=f"user/{gone.pk}/"
        )
        gone.delete()
    return user


def measure(browser: Browser, live_server, path: str, width: int, artifacts) -> tuple[int, int]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}{path}")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    name = path.strip("/").replace("/", "_") or "admin"
    page.screenshot(path=str(artifacts / f"admin-width-{width}-{name}.png"), full_page=True)
    context.close()
    return scroll_width, width


def test_every_admin_page_we_own_fits_at_390_and_1440(
    browser, live_server, django_user_model, audit_rows, artifacts
):
    django_user_model.objects.create_superuser(username="admin", password="admin-pass")
    issuance = TokenIssuance.objects.first()
    pages = [
        "/admin/uploads/tokenissuance/",
        "/admin/uploads/tokenissuance/overview/",
        f"/admin/avatars/avatarchange/timeline/{audit_rows.username}/",
        "/admin/avatars/avatarchange/timeline/someone-who-left/",
        "/admin/uploads/credentialurl/",
        "/admin/avatars/avatarchange/",
        "/admin/ledger/uploadusage/",
        "/admin/ledger/storedobject/",
        f"/admin/uploads/tokenissuance/{issuance.pk}/change/",
    ]
    for model in (CredentialUrl, AvatarChange, UploadUsage):
        row = model.objects.first()
        if row is not None:
            pages.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/{row.pk}/change/")
    table = [
        (path, width, measure(browser, live_server, path, width, artifacts)[0])
        for path in pages
        for width in WIDTHS
    ]
    print("\npage | width | scrollWidth")
    for path, width, scroll in table:
        print(f"{path} | {width} | {scroll}{'' if scroll <= width else '  <-- too wide'}")
    assert [row for row in table if row[2] > row[1]] == []
