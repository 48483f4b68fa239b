"""Reads for the accounts app: may this user (still) be signed in with what they hold?"""

from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connections, router

from .models import User


def user_can_sign_in(*, user: User) -> bool:
    """Active, and not a demo user (documented password) while DEBUG is off."""
    return user.is_active and (settings.DEBUG or not user.is_demo)


def token_is_current(*, user: User, issued_at: datetime) -> bool:
    """Whether something ``user`` was handed at ``issued_at`` (an aware datetime, microseconds kept)
    still stands: a JWT, a session, an upload credential link.

    False when the user may not sign in (inactive, or a demo user with DEBUG off) or when
    ``issued_at`` is before the user's cut-off ``tokens_valid_after``, which a password change, a
    deactivation and ``accounts.services.user_tokens_revoke`` move to "now". Equal times count as
    current: a login right after the cut-off works.
    """
    if not user_can_sign_in(user=user):
        return False
    cutoff = user.tokens_valid_after
    return cutoff is None or issued_at >= cutoff


@cache
def _select_by_pk(alias: str) -> tuple[str, list[str], dict[int, tuple[list[Any], Any]]]:
    """``SELECT <every concrete column> FROM accounts_user WHERE id = %s`` for ``alias``, the
    attribute names in column order, and the backend's converters for the columns (SQLite's
    datetimes, for one), by column position."""
    names = [field.attname for field in User._meta.concrete_fields]
    query = User._base_manager.using(alias).filter(pk=0).values_list(*names).query
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    assert params == (0,), "one placeholder: the primary key"
    return sql, names, compiler.get_converters([column for column, _, _ in compiler.select])


def user_by_pk(pk: int) -> User | None:
    """The user with primary key ``pk``, or None: ``User.objects.filter(pk=pk).first()``, cheaper.

    Every API request authenticates through this, and the ORM spends most of such a lookup's CPU
    building the same SQL again (about 0.7 of 1 ms per request on the bench machine, `make profile
    me`). The SQL still comes from the ORM, so it follows the model; it is compiled once per
    process and database alias.
    """
    alias = router.db_for_read(User)
    sql, names, converters = _select_by_pk(alias)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(sql, [User._meta.pk.get_prep_value(pk)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, (functions, expression) in converters.items():  # as SQLCompiler.apply_converters does
        for function in functions:
            values[index] = function(values[index], expression, connection)
    return User.from_db(alias, names, values)
