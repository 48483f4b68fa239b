"""Avatar changes are audited: keys handed out, confirmations accepted or refused, with the reason,
the key and the ETag; reviewers read them in a read-only admin and export them as CSV."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.db import DatabaseError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.throttling import rate_limits_clear
from avatars.models import AvatarChange
from core.text import NUL_STAND_IN
from tests.avatars.test_avatar_api import KEY_URL, URL, put, upload_key
from tests.pngs import png_bytes

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/avatars/avatarchange/"
UA = "Mozilla/5.0 (X11; Linux x86_64) AvatarAuditTest/1.0"


@pytest.fixture
def reviewer(django_user_model):
    user = django_user_model.objects.create_user(username="reviewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_avatarchange"))
    return user


def test_upload_key_granted_is_recorded(jwt_client, user):
    response = jwt_client.post(
        KEY_URL, {"contentType": "image/png", "size": 10}, format="json", HTTP_USER_AGENT=UA
    )

    row = AvatarChange.objects.get()
    assert (row.kind, row.user, row.username) == ("upload_key_granted", user, "alice")
    assert row.object_key == response.json()["key"]
    assert (row.client_ip, row.user_agent, row.auth_method) == ("127.0.0.1", UA, "jwt")
    assert row.request_id == response["X-Request-ID"]


def test_upload_key_refused_is_recorded_with_its_reason(jwt_client):
    jwt_client.post(KEY_URL, {"contentType": "text/html", "size": 10}, format="json")
    jwt_client.post(KEY_URL, {}, format="json")

    rows = AvatarChange.objects.order_by("created_at")
    assert [(row.kind, row.reason) for row in rows] == [
        ("upload_key_refused", "not_an_image"),
        ("upload_key_refused", "invalid"),
    ]


def test_upload_key_is_not_handed_out_without_its_audit_row(jwt_client, monkeypatch):
    def broken(**fields):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr("avatars.services.avatar_change_record", broken)
    response = jwt_client.post(KEY_URL, {"contentType": "image/png", "size": 10}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "audit_unavailable"
    assert "key" not in response.json()


def test_confirmation_accepted_is_recorded_with_etag_and_new_key(jwt_client, user):
    key = upload_key(jwt_client)
    put(jwt_client, key, png_bytes(), "image/png")

    response = jwt_client.post(URL, {"key": key}, format="json", HTTP_USER_AGENT=UA)

    assert response.status_code == 200, response.content
    row = AvatarChange.objects.get(kind="confirmation_accepted")
    user.refresh_from_db()
    assert (row.object_key, row.avatar_key, row.reason) == (key, user.avatar_key, "")
    assert len(row.etag.strip('"')) == 32  # the MD5 ETag OSS reported for the checked object
    assert row.user_agent == UA


def test_confirmation_refused_is_recorded_with_reason_and_etag(jwt_client, user):
    key = upload_key(jwt_client)
    put(jwt_client, key, b"<html>not an image</html>", "image/png")

    response = jwt_client.post(URL, {"key": key}, format="json")

    assert response.status_code == 400
    row = AvatarChange.objects.get(kind="confirmation_refused")
    assert (row.reason, row.object_key, row.avatar_key) == ("not_an_image", key, "")
    assert row.etag  # OSS was asked: the refused object is identified


@pytest.mark.parametrize(
    ("body", "reason", "key"),
    [
        ({"key": "user/999/avatars/x.png"}, "outside_prefix", "user/999/avatars/x.png"),
        ({"key": "user/{id}/avatars/missing.png"}, "object_not_found", "user/{id}/avatars/missing.png"),
        ({"key": 7}, "invalid", ""),
        ({}, "invalid", ""),
    ],
)
def test_confirmation_refusals_carry_their_reason(jwt_client, user, body, reason, key):
    body = {
        name: value.format(id=user.pk) if isinstance(value, str) else value for name, value in body.items()
    }
    jwt_client.post(URL, body, format="json")

    row = AvatarChange.objects.get()
    assert (row.kind, row.reason, row.object_key, row.etag) == (
        "confirmation_refused",
        reason,
        key.format(id=user.pk),
        "",
    )


def test_malformed_json_is_recorded_as_a_parse_error(jwt_client):
    jwt_client.post(URL, data="{", content_type="application/json")
    assert AvatarChange.objects.get().reason == "parse_error"


def test_a_refusal_is_answered_even_when_the_audit_is_down(jwt_client, monkeypatch):
    def broken(**fields):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr("avatars.services.avatar_change_record", broken)
    response = jwt_client.post(URL, {"key": "user/999/x.png"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "outside_prefix"


# --- the admin ------------------------------------------------------------------------------------


@pytest.fixture
def history(jwt_client, user):
    """One key granted, one confirmation refused, one accepted."""
    key = upload_key(jwt_client)
    put(jwt_client, key, b"plain text", "image/png")
    jwt_client.post(URL, {"key": key}, format="json")
    put(jwt_client, key, png_bytes(), "image/png")
    jwt_client.post(URL, {"key": key}, format="json", HTTP_USER_AGENT='=HYPERLINK("http://evil")')
    return key


def test_reviewer_reads_filters_and_searches_avatar_changes(client, reviewer, history):
    client.force_login(reviewer)

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 3
    assert "Add avatar change" not in page.content.decode()
    assert client.get(CHANGELIST, {"kind__exact": "confirmation_refused"}).context["cl"].result_count == 1
    assert client.get(CHANGELIST, {"reason": "not_an_image"}).context["cl"].result_count == 1
    assert client.get(CHANGELIST, {"q": "alice"}).context["cl"].result_count == 3
    assert client.get(CHANGELIST, {"q": history}).context["cl"].result_count == 3  # the object key
    assert client.get(CHANGELIST, {"q": "127.0.0.1"}).context["cl"].result_count == 3
    assert client.get(CHANGELIST, {"q": "mallory"}).context["cl"].result_count == 0


def test_avatar_changes_are_read_only_for_everyone(client, admin_client, reviewer, history):
    row = AvatarChange.objects.first()
    client.force_login(reviewer)
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(f"{CHANGELIST}{row.pk}/change/", {"reason": "x"}).status_code == 403
    assert admin_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AvatarChange.objects.count() == 3


def test_staff_without_the_view_permission_are_refused(client, django_user_model, history):
    staff = django_user_model.objects.create_user(username="staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(CHANGELIST).status_code == 403


def test_csv_export_streams_with_reason_key_and_etag(client, reviewer, history):
    client.force_login(reviewer)
    ids = [str(pk) for pk in AvatarChange.objects.values_list("pk", flat=True)]
    response = client.post(CHANGELIST, {"action": "export_csv", "_selected_action": ids})

    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="avatar-changes-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["kind"] for row in rows] == [
        "confirmation_accepted",
        "confirmation_refused",
        "upload_key_granted",
    ]
    assert rows[1]["reason"] == "not_an_image" and rows[1]["etag"]
    assert rows[0]["object_key"] == history and rows[0]["avatar_key"].startswith("avatars/")
    assert rows[0]["user_agent"].startswith("'=")  # no spreadsheet formula from a client's header


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=st.text(min_size=1, max_size=60).map(lambda text: text + "\x00" + text))
def test_a_key_with_a_nul_is_refused_and_still_leaves_its_row(jwt_client, user, key):
    """PostgreSQL cannot store NUL in text: the refusal's row must be written anyway (issue 9 follow-up)."""
    rate_limits_clear()  # one user sends every example
    before = AvatarChange.objects.count()
    for path in (f"user/{user.pk}/avatars/{key}", key):
        response = jwt_client.post(URL, {"key": path}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["code"] in {"invalid", "null_characters_not_allowed", "invalid_key"}
    rows = AvatarChange.objects.order_by("-pk")[:2]
    assert AvatarChange.objects.count() == before + 2
    assert all(row.kind == "confirmation_refused" and "\x00" not in row.object_key for row in rows)
    assert all(NUL_STAND_IN in row.object_key for row in rows)
