"""core.compiled sends the ORM's own statements and reads back what the ORM would.

core.compiled builds its SQL with Django's compiler once per process and binds parameters itself,
so it depends on how the compiler writes a statement. These tests compare, for every model it
serves, the statement it executes (SQL and parameters, as the cursor receives them) with the one
the ORM executes for the same read or write, and the rows either way: a Django upgrade that changes
the compiler fails here, and only here.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, models
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import User
from core import compiled
from ledger.models import UploadUsage
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db

# What core.compiled serves, and where (keep in step with its call sites).
SELECTED_BY_PK = [User, UploadUsage]  # accounts.selectors.user_by_pk, ledger.selectors.upload_usage_summary
INSERTED = [TokenIssuance]  # uploads.services.audit.issuance_record


@contextmanager
def executed() -> Iterator[list[tuple[str, list[Any]]]]:
    """Every statement the default connection runs meanwhile: (SQL as sent, parameters)."""
    statements: list[tuple[str, list[Any]]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, [getattr(value, "obj", value) for value in params or ()]))  # psycopg's Jsonb
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield statements


def _values(instance: models.Model, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        field.attname: getattr(instance, field.attname)
        for field in type(instance)._meta.concrete_fields
        if field.attname not in skip
    }


def test_the_served_models_are_the_ones_listed():
    assert {User, UploadUsage, TokenIssuance} == {*SELECTED_BY_PK, *INSERTED}


def _stored_rows(user: User) -> dict[type[models.Model], Any]:
    """A row of each SELECTED_BY_PK model with no field at its default."""
    user.first_name, user.email, user.avatar_key = "Ålice", "alice@example.com", f"avatars/{user.pk}/a.png"
    user.tokens_valid_after = timezone.now() - timedelta(hours=1)  # SQLite needs its converter
    user.is_demo = True
    user.save()
    UploadUsage.objects.create(
        user=user,
        stored_bytes=2**40,
        stored_objects=7,
        pending_bytes=3,
        pending_objects=1,
        pending_until=timezone.now() + timedelta(minutes=5),
        counted_at=timezone.now(),
        quota_bytes=2**41,
        quota_objects=9,
    )
    return {User: user.pk, UploadUsage: user.pk}


@pytest.mark.parametrize("model", SELECTED_BY_PK, ids=lambda model: model.__name__)
def test_get_by_pk_sends_the_orms_select_and_loads_the_orms_instance(model, user):
    pk = _stored_rows(user)[model]
    with executed() as ours:
        loaded = compiled.get_by_pk(model, pk)
    with executed() as orms:
        [expected] = model.objects.filter(pk=pk).order_by()  # the same rows as .first(), unordered
    assert ours == orms
    assert _values(loaded) == _values(expected)
    assert type(loaded) is model
    assert (loaded._state.adding, loaded._state.db) == (False, "default")
    assert compiled.get_by_pk(model, pk + 1000) is None is model.objects.filter(pk=pk + 1000).first()


def text(max_size: int) -> st.SearchStrategy[str]:
    """Any text PostgreSQL stores: no NUL, in a text column or in JSON."""
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)


issuance_values = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(TokenIssuance.Outcome.values),
        "grant": st.sampled_from(TokenIssuance.Grant.values),
        "auth_method": st.sampled_from(TokenIssuance.AuthMethod.values),
        "prefix": text(30),
        "object_key": text(30),
        "access_key_id": text(30),
        "expiration": st.none() | st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),
        "policy": st.none() | st.dictionaries(text(5), text(5) | st.integers()),
        "client_ip": st.none() | st.ip_addresses().map(str),
        "user_agent": text(30),
        "request_id": text(30),
        "attempts": st.integers(min_value=0, max_value=2**31 - 1),
    },
)


@pytest.mark.parametrize("model", INSERTED, ids=lambda model: model.__name__)
@settings(max_examples=25, deadline=None)
@given(values=issuance_values)
def test_create_sends_the_orms_insert_and_stores_the_orms_row(model, values):
    user = User.objects.get_or_create(username="compiled")[0]
    values = {**values, "user": user, "username": user.username, "created_at": timezone.now()}
    with executed() as ours:
        compiled.create(model, **values)
    with executed() as orms:
        created = model.objects.create(**values)
    [(our_sql, our_params)] = ours
    [(orm_sql, orm_params)] = orms
    returning = " RETURNING "  # the ORM reads the new pk back; core.compiled does not need it
    assert orm_sql == our_sql or orm_sql.startswith(our_sql + returning), (our_sql, orm_sql)
    assert our_params == orm_params
    ours_stored, orms_stored = model.objects.filter(user=user).order_by("pk")
    assert orms_stored.pk == created.pk
    assert _values(ours_stored, skip=("id",)) == _values(orms_stored, skip=("id",))
    model.objects.filter(user=user).delete()
