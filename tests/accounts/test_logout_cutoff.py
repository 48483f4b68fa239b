"""A logout (the JWT endpoint, the login page's, the admin's) ends the user's access tokens at once:
it moves the sign-in cut-off (per user, accounts.services.user_logged_out_revoke), which every
request reads from the database."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.models import User

pytestmark = pytest.mark.django_db


def login(username: str, password: str) -> dict:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refusal(response) -> tuple[int, str]:
    """(status, code) of an error: our JSON shape, or the mobile SDKs' stock shape (sts-server answers
    200 with the status in the body, as the stock Android provider reads only a 2xx body)."""
    body = response.json()
    if "StatusCode" in body:
        return int(body["StatusCode"]), body["ErrorCode"]
    return response.status_code, body["code"]


def jwt_operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API that accepts a bearer token, from the generated schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (method, path)
        for path, by_method in schema["paths"].items()
        for method, operation in by_method.items()
        if any("jwtAuth" in requirement for requirement in operation.get("security", []))
    ]
    assert ("post", "/api/uploads/sts-server-url/") in operations  # the schema is read, not guessed
    return operations


def test_jwt_logout_ends_the_access_token_on_every_endpoint(user, password):
    tokens = login("alice", password)
    client = bearer(tokens["access"])
    assert client.get("/api/me/").status_code == 200
    assert client.post("/api/uploads/sts-server-url/", {}, format="json").status_code == 201

    assert (
        APIClient().post("/api/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code
        == 200
    )

    for method, path in jwt_operations():
        assert refusal(getattr(client, method)(path, {}, format="json")) == (401, "token_revoked"), path


def test_logout_ends_every_device_of_the_user_and_a_fresh_login_works(user, other_user, password):
    phone, tablet, bobs = login("alice", password), login("alice", password), login("bob", password)

    assert (
        APIClient().post("/api/auth/logout/", {"refresh": phone["refresh"]}, format="json").status_code == 200
    )

    assert bearer(tablet["access"]).get("/api/me/").status_code == 401
    refreshed = APIClient().post("/api/auth/token/refresh/", {"refresh": tablet["refresh"]}, format="json")
    assert (refreshed.status_code, refreshed.json()["code"]) == (401, "token_revoked")
    assert bearer(bobs["access"]).get("/api/me/").status_code == 200  # another user: untouched
    fresh = login("alice", password)
    assert bearer(fresh["access"]).post("/api/uploads/sts-server-url/", {}, format="json").status_code == 201


@pytest.mark.parametrize("logout_path", ["/accounts/logout/", "/admin/logout/"])
def test_a_logout_page_ends_the_users_access_tokens_too(client, user, password, logout_path):
    tokens = login("alice", password)
    user.is_staff = True
    user.save()
    client.force_login(user)

    assert client.post(logout_path).status_code in (200, 302)

    response = bearer(tokens["access"]).post("/api/uploads/sts-server-url/", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (401, "token_revoked")
    assert client.get("/").status_code == 302  # the session ended as before


def test_the_cut_off_is_read_from_the_database_on_each_request(user, password):
    """What another app server's logout writes holds here at the next request: no per-process copy."""
    client = bearer(login("alice", password)["access"])
    assert client.get("/api/me/").status_code == 200

    User.objects.filter(pk=user.pk).update(tokens_valid_after=timezone.now())  # as another server would

    assert client.get("/api/me/").status_code == 401


def test_the_check_costs_one_primary_key_read_of_the_user_per_request(user, password):
    client = bearer(login("alice", password)["access"])
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/me/").status_code == 200
    user_reads = [q["sql"] for q in queries if 'FROM "accounts_user"' in q["sql"]]
    assert len(user_reads) == 1, user_reads


def test_logout_with_an_anonymous_session_changes_nothing(client, user, password):
    tokens = login("alice", password)
    assert client.post("/accounts/logout/").status_code == 302
    assert bearer(tokens["access"]).get("/api/me/").status_code == 200
