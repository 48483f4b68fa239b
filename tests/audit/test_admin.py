"""The audit log in the admin: staff can read, filter and export it; nobody can change it."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/uploads/tokenissuance/"


@pytest.fixture
def reviewer(django_user_model):
    """A security reviewer: staff with the view permission only."""
    user = django_user_model.objects.create_user(username="reviewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tokenissuance"))
    return user


@pytest.fixture
def issued(jwt_client):
    """A real issuance, a reuse and a refusal-free history through the API."""
    secret = jwt_client.post("/api/uploads/sts-token/").json()
    jwt_client.post("/api/uploads/sts-token/", HTTP_USER_AGENT='=HYPERLINK("http://evil")')
    return secret


def test_reviewer_sees_rows_without_secrets(client, reviewer, issued):
    client.force_login(reviewer)
    page = client.get(CHANGELIST)

    assert page.status_code == 200
    html = page.content.decode()
    assert "alice" in html
    assert issued["accessKeySecret"] not in html
    assert issued["securityToken"] not in html
    assert "Add token issuance" not in html

    row = TokenIssuance.objects.first()
    detail = client.get(f"{CHANGELIST}{row.pk}/change/")
    assert detail.status_code == 200
    assert issued["accessKeyId"] in detail.content.decode()  # on the row's page, not in the narrow list
    assert issued["accessKeySecret"] not in detail.content.decode()
    assert issued["securityToken"] not in detail.content.decode()


def test_admin_is_read_only(client, reviewer, issued):
    client.force_login(reviewer)
    row = TokenIssuance.objects.first()

    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(f"{CHANGELIST}{row.pk}/change/", {"username": "mallory"}).status_code == 403
    assert client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TokenIssuance.objects.get(pk=row.pk).username == "alice"


def test_superuser_cannot_change_rows_either(admin_client, issued):
    row = TokenIssuance.objects.first()
    assert admin_client.post(f"{CHANGELIST}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TokenIssuance.objects.count() == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [("outcome__exact=issued", 1), ("outcome__exact=reused", 1), ("auth_method__exact=session", 0)],
)
def test_list_filters(client, reviewer, issued, query, expected):
    client.force_login(reviewer)
    page = client.get(f"{CHANGELIST}?{query}")
    assert page.status_code == 200
    assert page.context["cl"].result_count == expected


def test_search_by_access_key_id_and_ip(client, reviewer, issued):
    client.force_login(reviewer)
    assert client.get(CHANGELIST, {"q": issued["accessKeyId"]}).context["cl"].result_count == 2
    assert client.get(CHANGELIST, {"q": "127.0.0.1"}).context["cl"].result_count == 2
    assert client.get(CHANGELIST, {"q": "10.9.9.9"}).context["cl"].result_count == 0


def test_search_lists_the_rows_of_every_column_holding_the_term(client, reviewer, issued, user):
    client.force_login(reviewer)
    assert client.get(CHANGELIST, {"q": user.username}).context["cl"].result_count == 2
    # A request id that happens to equal a username: both columns match, both rows are listed.
    TokenIssuance.objects.filter(pk=TokenIssuance.objects.first().pk).update(request_id="bob")
    TokenIssuance.objects.create(username="bob", outcome="refused", auth_method="jwt", prefix="user/9/")
    assert client.get(CHANGELIST, {"q": "bob"}).context["cl"].result_count == 2
    assert client.get(CHANGELIST, {"q": "nobody"}).context["cl"].result_count == 0
    assert client.get(CHANGELIST, {"q": "ali\x00ce"}).status_code == 200  # Django's form refuses NUL; no 500


def test_search_filters_the_page_on_the_column_holding_the_term_only(client, reviewer, issued, user):
    """One (column, created_at) index range, not an OR that PostgreSQL may walk the table for."""
    client.force_login(reviewer)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(CHANGELIST, {"q": user.username})
    assert page.context["cl"].result_count == 2
    listed = [
        query["sql"] for query in queries if "ORDER BY" in query["sql"] and "tokenissuance" in query["sql"]
    ]
    assert listed
    for sql in listed:
        assert '"username" =' in sql
        assert '"request_id" =' not in sql and '"access_key_id" =' not in sql


def test_csv_export_streams_selected_rows(client, reviewer, issued):
    client.force_login(reviewer)
    ids = [str(pk) for pk in TokenIssuance.objects.values_list("pk", flat=True)]
    response = client.post(CHANGELIST, {"action": "export_csv", "_selected_action": ids})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["outcome"] for row in rows} == {"issued", "reused"}
    assert all(row["access_key_id"] == issued["accessKeyId"] for row in rows)
    assert "accessKeySecret" not in rows[0] and "security_token" not in rows[0]
    assert any(row["user_agent"].startswith("'=HYPERLINK") for row in rows)  # no spreadsheet formulas
    body = b"".join(
        client.post(CHANGELIST, {"action": "export_csv", "_selected_action": ids}).streaming_content
    )
    assert issued["accessKeySecret"].encode() not in body


def test_non_staff_cannot_see_the_audit_log(client, user, issued):
    client.force_login(user)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_without_view_permission_is_refused(client, django_user_model, issued):
    staff = django_user_model.objects.create_user(username="helpdesk", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(CHANGELIST).status_code == 403


def test_rows_survive_user_deletion(user, issued):
    user.delete()
    rows = TokenIssuance.objects.all()
    assert rows.count() == 2
    assert all(row.user is None and row.username == "alice" for row in rows)


@pytest.mark.parametrize(
    ("query", "estimated"),
    [
        ({}, True),
        ({"p": "2", "o": "-1"}, True),
        ({"q": "alice"}, False),
        ({"outcome__exact": "refused"}, False),
    ],
)
def test_only_the_whole_list_may_show_an_estimated_count(rf, query, estimated):
    from django.contrib import admin

    from audit.admin import EstimatedCountPaginator

    model_admin = admin.site.get_model_admin(TokenIssuance)
    paginator = model_admin.get_paginator(rf.get("/", query), TokenIssuance.objects.all(), 100)
    assert isinstance(paginator, EstimatedCountPaginator) is estimated
