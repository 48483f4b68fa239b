"""The user behind a bearer token is loaded by one SELECT the ORM compiled once (accounts.selectors)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accounts.selectors import user_by_pk
from accounts.tokens import AccessToken

pytestmark = pytest.mark.django_db


def test_a_token_authenticates_its_user_with_one_select(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/api/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    user_queries = [query["sql"] for query in queries if 'FROM "accounts_user"' in query["sql"]]
    assert len(user_queries) == 1  # the lookup; what /api/me/ itself reads is not this test's business
    assert user_queries[0].startswith('SELECT "accounts_user"."id"')


def test_the_loaded_user_is_the_same_as_the_orms(user):
    user.first_name, user.email, user.avatar_key = "Alice", "alice@example.com", f"user/{user.pk}/a.png"
    user.tokens_valid_after = timezone.now() - timedelta(hours=1)
    user.save()
    loaded = user_by_pk(user.pk)
    expected = type(user).objects.get(pk=user.pk)
    fields = [field.attname for field in type(user)._meta.concrete_fields]
    assert [getattr(loaded, name) for name in fields] == [getattr(expected, name) for name in fields]
    assert expected.tokens_valid_after is not None  # an aware datetime (SQLite needs its converter)
    assert loaded._state.adding is False and loaded._state.db == "default"


def test_a_deleted_users_token_is_refused(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    user.delete()
    response = api_client.get("/api/me/")
    assert (response.status_code, response.json()["code"]) == (401, "user_not_found")


@given(pk=st.integers(min_value=-(2**63), max_value=2**63 - 1).filter(lambda pk: pk > 2**31 or pk < 1))
def test_an_unknown_primary_key_is_no_user(pk):
    assert user_by_pk(pk) is None
