"""No bearer secret readable by staff: the database keeps refresh-token digests, the admin shows none."""

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.tokens import token_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued_tokens(api_client, user, password) -> list[str]:
    """A login, a rotation (the first token blacklisted) and a logout: every path that stores one."""
    first = api_client.post(
        "/api/auth/token/", {"username": "alice", "password": password}, format="json"
    ).json()
    second = api_client.post("/api/auth/token/refresh/", {"refresh": first["refresh"]}, format="json").json()
    third = api_client.post(
        "/api/auth/token/", {"username": "alice", "password": password}, format="json"
    ).json()
    assert (
        api_client.post("/api/auth/logout/", {"refresh": third["refresh"]}, format="json").status_code == 200
    )
    return [first["refresh"], second["refresh"], third["refresh"], first["access"], second["access"]]


def secrets_in(text: str, tokens: list[str]) -> list[str]:
    """A token, or its signature alone (enough to spot a copy), found in ``text``."""
    return [token for token in tokens if token in text or token.rsplit(".", 1)[1] in text]


def test_outstanding_tokens_hold_digests_only(issued_tokens):
    stored = list(OutstandingToken.objects.values_list("token", flat=True))
    assert len(stored) == 3 and BlacklistedToken.objects.count() == 2
    assert sorted(stored) == sorted(token_digest(token) for token in issued_tokens[:3])

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert secrets_in(dump.getvalue(), issued_tokens) == []


@pytest.mark.parametrize("who", ["superuser", "view-only staff"])
def test_no_admin_page_shows_a_token(client, django_user_model, issued_tokens, who):
    if who == "superuser":
        staff = django_user_model.objects.create_superuser("root", password="root-password-1234")
    else:
        staff = django_user_model.objects.create_user(
            "viewer", password="viewer-password-1234", is_staff=True
        )
        staff.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["view_outstandingtoken", "view_blacklistedtoken", "view_user"]
            )
        )
    client.force_login(staff)
    pages = [
        "/admin/",
        "/admin/token_blacklist/outstandingtoken/",
        "/admin/token_blacklist/blacklistedtoken/",
    ]
    pages += [
        f"/admin/token_blacklist/outstandingtoken/{pk}/change/"
        for pk in OutstandingToken.objects.values_list("pk", flat=True)
    ]
    pages += [
        f"/admin/token_blacklist/blacklistedtoken/{pk}/change/"
        for pk in BlacklistedToken.objects.values_list("pk", flat=True)
    ]
    pages += [
        "/admin/accounts/user/",
        f"/admin/accounts/user/{django_user_model.objects.get(username='alice').pk}/change/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert secrets_in(response.content.decode(), issued_tokens) == [], page
        assert b"sha256:" not in response.content, page
