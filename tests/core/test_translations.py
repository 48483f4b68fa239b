"""zh-hans beside English: our catalogs cover every message, and the language follows the person."""

import json

import pytest
from django.utils import translation

from core.translations import catalog_problems, catalog_update, messages_extract

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
