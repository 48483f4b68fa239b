"""Credential URLs in the admin: reviewers see who holds live ones and their status, never the secret;
staff with the change permission end them, and an ended URL answers ``credential_url_revoked``."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_tokens_revoke
from core.requests import RequestContext
from tests.core.test_translations import visible_text
from uploads.models import CredentialUrl
from uploads.services.credential_urls import NewCredentialUrl, credential_url_create

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/uploads/credentialurl/"
ROW = re.compile(r"<tr>.*?</tr>", re.S)
BADGE = re.compile(r'class="audit-badge audit-(\w+)"')


def _create(user, request_id: str, client_ip: str = "203.0.113.7") -> NewCredentialUrl:
    """A credential URL made by the real service, tagged with ``request_id`` to find its row."""
    context = RequestContext(
        auth_method="jwt",
        client_ip=client_ip,
        user_agent=f"okhttp/4.12.0 ({request_id})",
        request_id=request_id,
    )
    return credential_url_create(user=user, context=context)


def _row(request_id: str) -> CredentialUrl:
    return CredentialUrl.objects.get(request_id=request_id)


def _statuses(html: str) -> dict[str, str]:
    """request id -> the status badge of its row in the change list."""
    found = {}
    for row in ROW.findall(html):
        request_id = re.search(r'<td class="field-request_id_short">.*?title="([^"]*)"', row, re.S)
        badge = BADGE.search(row)
        if request_id and badge:
            found[request_id.group(1)] = badge.group(1)
    return found


def _stock_answer(secret: str) -> dict:
    """What Alibaba's stock mobile provider gets: a plain GET of the URL, no cookie, no header."""
    response = APIClient().get(f"/api/uploads/sts-server/{secret}/")
    assert response.status_code == 200  # always 200, the real status is in the body
    return response.json()


def _staff(django_user_model, username: str, *codenames: str):
    user = django_user_model.objects.create_user(username=username, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def reviewer(django_user_model):
    """A security reviewer: may look, may not end anything."""
    return _staff(django_user_model, "reviewer", "view_credentialurl")


@pytest.fixture
def officer(django_user_model):
    """Staff who may end credential URLs: the model's view and change permissions."""
    return _staff(django_user_model, "officer", "view_credentialurl", "change_credentialurl")


@pytest.fixture
def every_status(user, other_user) -> dict[str, NewCredentialUrl]:
    """alice: one live, one expired, one revoked URL; bob: one ended by his sign-in cut-off."""
    urls = {name: _create(user, f"req-{name}") for name in ("live", "expired", "revoked")}
    urls["cut_off"] = _create(other_user, "req-cut_off", client_ip="198.51.100.9")
    CredentialUrl.objects.filter(request_id="req-expired").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    CredentialUrl.objects.filter(request_id="req-revoked").update(revoked_at=timezone.now())
    user_tokens_revoke(user=other_user)
    return urls


def test_the_list_shows_each_status(client, reviewer, every_status):
    client.force_login(reviewer)
    page = client.get(CHANGELIST)

    assert page.status_code == 200
    assert _statuses(page.content.decode()) == {
        "req-live": "live",
        "req-expired": "expired",
        "req-revoked": "revoked",
        "req-cut_off": "cut_off",
    }
    # The statuses say what the credential URL itself answers.
    assert _stock_answer(every_status["live"].secret)["StatusCode"] == "200"
    assert _stock_answer(every_status["expired"].secret)["ErrorCode"] == "credential_url_expired"
    assert _stock_answer(every_status["revoked"].secret)["ErrorCode"] == "credential_url_revoked"
    assert _stock_answer(every_status["cut_off"].secret)["ErrorCode"] == "credential_url_revoked"


@pytest.mark.parametrize(
    ("status", "listed"),
    [
        ("live", {"req-live"}),
        ("expired", {"req-expired"}),
        ("ended", {"req-revoked", "req-cut_off"}),
    ],
)
def test_the_status_filter(client, reviewer, every_status, status, listed):
    client.force_login(reviewer)
    page = client.get(CHANGELIST, {"status": status})
    assert page.status_code == 200
    assert set(_statuses(page.content.decode())) == listed


def test_the_filter_agrees_with_the_status_of_every_kind_of_row(client, reviewer, django_user_model):
    """Each user state (cut-off before or after the URL, inactive, demo with DEBUG off) x each URL state."""
    now = timezone.now()
    users = {
        "plain": {},
        "old_cutoff": {"tokens_valid_after": now - timedelta(days=1)},
        "new_cutoff": {"tokens_valid_after": now + timedelta(seconds=5)},
        "inactive": {"is_active": False},
        "demo": {"is_demo": True},
    }
    for name, fields in users.items():
        holder = django_user_model.objects.create_user(username=name, password="x")
        for kind in ("live", "expired", "revoked", "revoked_expired"):
            _create(holder, f"{name}.{kind}")
        django_user_model.objects.filter(pk=holder.pk).update(**fields)
    CredentialUrl.objects.filter(request_id__contains="expired").update(expires_at=now)
    CredentialUrl.objects.filter(request_id__contains="revoked").update(revoked_at=now)
    client.force_login(reviewer)

    statuses = _statuses(client.get(CHANGELIST).content.decode())
    assert len(statuses) == 20
    assert {request_id for request_id, status in statuses.items() if status == "live"} == {
        "plain.live",
        "old_cutoff.live",
    }
    expected = {"live": {"live"}, "expired": {"expired"}, "ended": {"revoked", "cut_off"}}
    for choice, shown in expected.items():
        listed = set(_statuses(client.get(CHANGELIST, {"status": choice}).content.decode()))
        assert listed == {request_id for request_id, status in statuses.items() if status in shown}, choice


@pytest.mark.parametrize(
    ("term", "listed"),
    [
        ("alice", {"req-live", "req-expired", "req-revoked"}),
        ("req-cut_off", {"req-cut_off"}),
        ("198.51.100.9", {"req-cut_off"}),
        ("ali", set()),  # exact values only
        ("req-", set()),
    ],
)
def test_search_by_exact_username_request_id_or_client_ip(client, reviewer, every_status, term, listed):
    client.force_login(reviewer)
    page = client.get(CHANGELIST, {"q": term})
    assert page.status_code == 200
    assert set(_statuses(page.content.decode())) == listed


def test_the_secret_and_its_hash_are_never_shown(client, reviewer, user):
    secret = _create(user, "req-secret").secret
    digest = hashlib.sha256(secret.encode()).hexdigest()
    row = _row("req-secret")
    assert row.secret_hash == digest
    client.force_login(reviewer)

    listing = client.get(CHANGELIST).content.decode()
    detail = client.get(f"{CHANGELIST}{row.pk}/change/").content.decode()
    export = client.post(CHANGELIST, {"action": "export_csv", "_selected_action": [row.pk]})
    csv_text = b"".join(export.streaming_content).decode()

    assert "req-secret" in listing
    assert "okhttp/4.12.0 (req-secret)" in detail and "/admin/accounts/user/" in detail
    assert "req-secret" in csv_text and "alice" in csv_text
    for body in (listing, detail, csv_text):
        assert secret not in body
        assert secret.removeprefix("osscu_") not in body
        assert digest not in body
        assert digest.upper() not in body
        assert "secret_hash" not in body
    assert "SHA-256" not in detail


def test_ending_a_live_url_makes_it_answer_revoked(client, officer, every_status):
    secret = every_status["live"].secret
    assert _stock_answer(secret)["StatusCode"] == "200"
    client.force_login(officer)
    selected = [_row(f"req-{name}").pk for name in ("live", "expired", "revoked")]

    response = client.post(CHANGELIST, {"action": "end_selected", "_selected_action": selected}, follow=True)

    assert response.status_code == 200
    assert "Ended 1 credential URL." in visible_text(response.content.decode())
    answer = _stock_answer(secret)
    assert list(answer) == ["StatusCode", "ErrorCode", "ErrorMessage"]
    assert (answer["StatusCode"], answer["ErrorCode"]) == ("401", "credential_url_revoked")
    assert _row("req-live").revoked_at is not None
    assert _row("req-expired").revoked_at is None  # already stopped: left as it was, still "expired"
    assert _statuses(client.get(CHANGELIST).content.decode())["req-live"] == "revoked"
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.action_flag) == (officer, str(_row("req-live").pk), CHANGE)


def test_ending_several_says_how_many(client, officer, user):
    for n in range(3):
        _create(user, f"req-{n}")
    client.force_login(officer)
    ids = list(CredentialUrl.objects.values_list("pk", flat=True))
    response = client.post(CHANGELIST, {"action": "end_selected", "_selected_action": ids}, follow=True)
    assert "Ended 3 credential URLs." in visible_text(response.content.decode())
    assert not CredentialUrl.objects.filter(revoked_at__isnull=True).exists()


def test_a_reviewer_with_only_the_view_permission_cannot_end_urls(client, reviewer, every_status):
    client.force_login(reviewer)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert 'value="export_csv"' in page.content.decode()
    assert 'value="end_selected"' not in page.content.decode()

    live = _row("req-live")
    forged = client.post(CHANGELIST, {"action": "end_selected", "_selected_action": [live.pk]}, follow=True)

    assert forged.status_code == 200
    assert "Ended" not in visible_text(forged.content.decode())
    assert _row("req-live").revoked_at is None
    assert _stock_answer(every_status["live"].secret)["StatusCode"] == "200"
    assert not LogEntry.objects.exists()


def test_no_field_can_be_changed_even_with_the_change_permission(client, officer, admin_client, user):
    _create(user, "req-live")
    row = _row("req-live")
    client.force_login(officer)

    assert 'value="end_selected"' in client.get(CHANGELIST).content.decode()
    detail = client.get(f"{CHANGELIST}{row.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    for staff in (client, admin_client):
        assert staff.post(f"{CHANGELIST}{row.pk}/change/", {"revoked_at": "", "user": "1"}).status_code == 403
        assert staff.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        assert staff.get(f"{CHANGELIST}add/").status_code == 403
    assert _row("req-live").revoked_at is None


def test_staff_without_the_view_permission_is_refused(client, django_user_model, user):
    client.force_login(_staff(django_user_model, "helpdesk"))
    assert client.get(CHANGELIST).status_code == 403


def test_the_list_does_not_query_per_row(client, reviewer, django_user_model):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHANGELIST).status_code == 200
        return len(queries)

    client.force_login(reviewer)
    _create(django_user_model.objects.create_user(username="holder-0", password="x"), "req-0")
    one_row = queries_for_the_list()
    for n in range(1, 8):
        _create(django_user_model.objects.create_user(username=f"holder-{n}", password="x"), f"req-{n}")
    assert len(_statuses(client.get(CHANGELIST).content.decode())) == 8

    assert queries_for_the_list() == one_row


def test_the_page_and_the_action_speak_chinese(client, officer, every_status):
    client.force_login(officer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get(CHANGELIST).content.decode()
    text = visible_text(html)

    badges = re.findall(r'class="audit-badge audit-\w+">([^<]*)<', html)
    assert sorted(badges) == sorted(["有效", "已过期", "已撤销", "已因登录截止时间失效"])
    for shown in ["终止所选的凭证 URL", "状态", "已终止", "过期时间", "完整的用户名、请求 ID 或客户端 IP。"]:
        assert shown in text, shown
    for english in ["End the selected", "sign-in cut-off", "Status", "Expires at", "Ended", "Exact username"]:
        assert english not in text, english

    response = client.post(
        CHANGELIST, {"action": "end_selected", "_selected_action": [_row("req-live").pk]}, follow=True
    )
    text = visible_text(response.content.decode())
    assert "已终止 1 个凭证 URL。" in text
    assert "Ended" not in text


def test_accept_language_gives_the_chinese_status_names(client, reviewer, every_status):
    client.force_login(reviewer)
    text = visible_text(client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode())
    assert "已因登录截止时间失效" in text and "ended by the sign-in cut-off" not in text
