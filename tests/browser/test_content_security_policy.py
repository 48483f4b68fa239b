"""Every HTML page carries a Content-Security-Policy and works under it in Chromium: the login
page, the demo page, Swagger UI and the admin (the conftest's page fixture fails a test on any
violation Chromium reports)."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-1234")


def test_swagger_ui_renders_the_schema_under_the_policy(page, live_server):
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 5


def test_admin_pages_work_under_the_policy(page, live_server, staff, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "root-password-1234")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    for path in [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{user.pk}/change/",
        f"/admin/accounts/user/{user.pk}/password/",
        "/admin/uploads/tokenissuance/",
        "/admin/uploads/tokenissuance/overview/",
        "/admin/token_blacklist/outstandingtoken/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
    # The user list's JavaScript (select all, actions) runs: nothing was blocked.
    page.goto(f"{live_server.url}/admin/accounts/user/")
    page.click("#action-toggle")
    expect(page.locator(".action-counter")).to_contain_text("selected")


def test_login_and_demo_pages_carry_the_policy_with_the_oss_endpoint(
    page, live_server, user, password, sandbox
):
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    log_in(page, live_server, user, password)  # the demo page's scripts ran (data-ready)
    policy = page.goto(f"{live_server.url}/").headers["content-security-policy"]
    assert f"connect-src 'self' {sandbox.oss_endpoint}" in policy
