"""What a reviewer reads on the admin pages: labels, not stored values; one date format with seconds and
zone on lists and change pages alike; a language switcher; third-party labels in Simplified Chinese."""

from datetime import UTC, datetime

import pytest

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 5, 23, 13, 31, tzinfo=UTC)


@pytest.fixture
def row():
    return TokenIssuance.objects.create(
        username="bob", outcome="refused", auth_method="credential_url", prefix="user/9/", created_at=WHEN
    )


def test_the_auth_column_shows_the_filters_labels(admin_client, row):
    page = admin_client.get("/admin/uploads/tokenissuance/").content.decode()
    assert '<td class="field-auth">Credential URL</td>' in page
    assert ">credential_url<" not in page


def test_change_pages_show_the_lists_date_format(admin_client, row):
    listed = admin_client.get("/admin/uploads/tokenissuance/").content.decode()
    changed = admin_client.get(f"/admin/uploads/tokenissuance/{row.pk}/change/").content.decode()
    assert "2026-12-05 23:13:31 UTC" in listed
    assert "2026-12-05 23:13:31 UTC" in changed


def test_every_admin_page_has_the_language_switcher(admin_client, row):
    for url in ("/admin/", "/admin/uploads/tokenissuance/", f"/admin/uploads/tokenissuance/{row.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert 'data-testid="language-zh-hans"' in page, url
    chinese = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'data-testid="language-en"' in chinese


def test_third_party_admin_labels_are_translated(admin_client):
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    for label in ("已拉黑的令牌", "已签发的令牌", "登录尝试", "登录失败记录"):
        assert label in page
    for english in ("Blacklisted Tokens", "Outstanding Tokens", "Access attempts", "Access failures"):
        assert english not in page
