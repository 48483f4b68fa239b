"""zh-hans beside English: our catalogs cover every message, and the language follows the person."""

import json
import re

import pytest
from django.conf import settings
from django.utils import timezone, translation

from avatars.models import AvatarChange
from core.translations import catalog_problems, catalog_update, messages_extract
from tests.audit.test_overview import seed_mix
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_message_of_the_product_has_a_chinese_translation(domain):
    assert messages_extract(domain=domain), "the extractor found nothing: it is broken"
    assert catalog_problems(language="zh_Hans", domain=domain) == []


def test_the_check_notices_a_new_untranslated_message_and_update_adds_it(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '{% load i18n %}\n<h1>{% translate "Brand new" %}</h1>\n'
        "{% blocktranslate count n=n %}{{ n }} file{% plural %}{{ n }} files{% endblocktranslate %}\n"
    )
    (tmp_path / "static" / "js").mkdir(parents=True)
    (tmp_path / "static" / "js" / "a.js").write_text("say('%(n)s left', {n: 1}); gettext('Done.');\n")

    assert catalog_problems(language="zh_Hans", domain="django", base=tmp_path) == [
        f"{tmp_path / 'locale/zh_Hans/LC_MESSAGES/django.po'} is missing"
    ]
    catalog_update(language="zh_Hans", domain="django", base=tmp_path)
    catalog_update(language="zh_Hans", domain="djangojs", base=tmp_path)

    problems = catalog_problems(language="zh_Hans", domain="django", base=tmp_path)
    assert problems == [
        "templates/page.html:2: 'Brand new' has no zh_Hans translation",
        "templates/page.html:3: ('%(n)s file', '%(n)s files') has no zh_Hans translation",
    ]
    js = catalog_problems(language="zh_Hans", domain="djangojs", base=tmp_path)
    assert [p.split(": ", 1)[1] for p in js] == [
        "'%(n)s left' has no zh_Hans translation",
        "'Done.' has no zh_Hans translation",
    ]


def test_the_compiled_catalog_is_used():
    """`make install` compiled locale/zh_Hans/LC_MESSAGES/django.po (Babel, no GNU gettext)."""
    with translation.override("zh-hans"):
        assert translation.gettext("Log in") == "登录"
    with translation.override("en"):
        assert translation.gettext("Log in") == "Log in"


@pytest.mark.parametrize(
    ("accept_language", "heading"),
    [
        ("zh-Hans", "登录"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "登录"),
        ("zh", "登录"),
        ("en-US,en;q=0.9", "Log in"),
        ("fr-FR", "Log in"),  # a language we do not have: English
        ("", "Log in"),
    ],
)
def test_accept_language_picks_the_page_language(client, accept_language, heading):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=accept_language).content.decode()
    assert f"<h1>{heading}</h1>" in html
    assert ('<html lang="zh-hans">' in html) == (heading == "登录")


def test_the_switcher_keeps_the_choice_over_accept_language(client, user):
    client.force_login(user)
    assert "你的头像" in client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"}, HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "<h1>Your avatar</h1>" in html
    assert 'data-testid="language-zh-hans"' in html  # the way back to Chinese


def test_the_javascript_messages_come_from_our_catalog(client):
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert response.status_code == 200
    assert json.dumps("头像已更新。") in response.content.decode()
    assert (
        json.dumps("头像已更新。") not in client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )


def test_drf_and_django_admin_speak_chinese_too(client, api_client):
    """Their own catalogs (DRF and Django ship zh_Hans); the code stays the same."""
    response = api_client.get("/api/me/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert response.status_code == 401
    assert response.json() == {"detail": "身份认证信息未提供。", "code": "not_authenticated"}
    admin_login = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "用户名" in admin_login


# --- The admin in zh-hans: our own pages, columns, filters, actions and messages -----------------


@pytest.fixture
def chinese_admin(client, django_user_model):
    """A superuser whose browser asks for Chinese through the language cookie (the switcher's)."""
    root = django_user_model.objects.create_superuser("root", password="root-password-1234")
    client.force_login(root)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


@pytest.fixture
def audit_rows(user):
    """alice: an issuance, a throttled refusal standing for 3 requests, and an avatar upload key."""
    now = timezone.now()
    common = {"user": user, "username": "alice", "auth_method": "jwt", "prefix": f"user/{user.pk}/"}
    TokenIssuance.objects.create(**common, outcome="issued", client_ip="203.0.113.7", created_at=now)
    TokenIssuance.objects.create(
        **common, outcome="refused", error_code="throttled", attempts=3, client_ip="198.51.100.9"
    )
    AvatarChange.objects.create(
        user=user, username="alice", kind="upload_key_granted", object_key=f"user/{user.pk}/avatars/a.png"
    )


def visible_text(html: str) -> str:
    """The page without its markup, so a word in a CSS class or URL does not count as shown."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_admin_index_names_our_apps_and_models_in_chinese(chinese_admin):
    text = visible_text(chinese_admin.get("/admin/").content.decode())
    for shown in ("账号", "头像", "上传", "凭证签发记录", "头像变更记录", "上传用量"):
        assert shown in text
    for english in ("Accounts", "Avatars", "Uploads", "Token issuances", "Avatar changes"):
        assert english not in text


def test_the_audit_list_speaks_chinese(chinese_admin, audit_rows):
    html = chinese_admin.get("/admin/uploads/tokenissuance/").content.decode()
    text = visible_text(html)

    columns = ["时间", "结果", "错误码", "客户端 IP", "认证方式", "申请类型"]
    for shown in [*columns, "概览", "将所选行导出为 CSV"]:
        assert shown in text, shown
    assert "已拒绝 x3" in text and "已签发" in text  # the outcome badges
    assert "此用户的审计时间线" in html  # the username's tooltip
    for english in ["Overview", "Export selected rows", "client IP", "what was asked for", "auth method"]:
        assert english not in text, english
    assert "凭证签发记录s" not in text  # no English plural glued to the Chinese name


def test_the_overview_speaks_chinese(chinese_admin):
    seed_mix(timezone.now())
    html = chinese_admin.get("/admin/uploads/tokenissuance/overview/", {"days": 7}).content.decode()
    text = visible_text(html)

    shown = ["凭证签发记录：最近 7 天", "每日签发数（按结果）", "用户排行：拒绝", "值得关注的异常"]  # noqa: RUF001
    shown += ["每日明细", "全部记录", "30 天", "10 次 STS 调用失败", "carol 来自 5 个客户端 IP"]
    for words in shown:
        assert words in text, words
    assert re.search(r"bob 被拒绝 \d+ 次", text)  # each anomaly in a sentence of its own
    assert "已签发（新的 STS 凭证）" in html  # noqa: RUF001  (the chart's series, in its JSON data block)
    english = ["Anomalies worth a look", "Top users", "Per day", "All rows", "days and hours in", "times"]
    for words in english:
        assert words not in text, words


def test_a_users_timeline_speaks_chinese(chinese_admin, audit_rows):
    text = visible_text(chinese_admin.get("/admin/avatars/avatarchange/timeline/alice/").content.decode())

    assert "alice 的审计时间线" in text
    for shown in ["账号", "本页的客户端 IP", "最新的在前", "凭证已签发", "凭证已拒绝", "已发放上传键"]:
        assert shown in text, shown
    for english in ["Audit timeline of", "Client IPs on this page", "Newest first", "credentials", "agent"]:
        assert english not in text, english


def test_the_user_change_form_speaks_chinese(chinese_admin, user):
    text = visible_text(chinese_admin.get(f"/admin/accounts/user/{user.pk}/change/").content.decode())

    for shown in ["审计时间线", "令牌有效起始时间", "演示用户", "此时间之前签发的"]:
        assert shown in text, shown
    for english in ["Audit timeline", "Tokens valid after", "Is demo", "Sign-in cut-off"]:
        assert english not in text, english


def test_the_sign_out_everywhere_action_reports_in_chinese(chinese_admin, user, other_user):
    response = chinese_admin.post(
        "/admin/accounts/user/",
        {"action": "sign_out_everywhere", "_selected_action": [user.pk, other_user.pk]},
        follow=True,
    )
    text = visible_text(response.content.decode())

    assert "已在所有设备上将 2 个用户退出登录" in text
    assert "Signed out" not in text
    user.refresh_from_db()
    assert user.tokens_valid_after is not None  # the action itself did its work
