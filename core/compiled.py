"""The ORM's SQL for the hot path's two statement shapes, compiled once per process.

``Model.objects.filter(pk=...)`` and ``Model.objects.create(...)`` rebuild the same SQL on every
call. ``get_by_pk`` and ``create`` ask the ORM for the SQL once per (model, database alias) and
afterwards only bind the parameters, with the ORM's own conversions, so the SQL still follows the
model and its migrations. No signals are sent (the hot path's models have no receivers) and nothing
is returned from an INSERT.

Why it exists: a reused sts-token hand-out runs three of these statements (the user behind the JWT,
the user's upload usage, the audit INSERT). On the bench's stack (tests/perf/harness.py: gunicorn,
PostgreSQL, Redis), with the plain ORM calls instead the workers spent a median 3.87 ms of CPU per
reused hand-out against 2.88 ms with this module (2 clients, 8 interleaved rounds of 4 s, paired
ratio 1.30 / 1.38 / 1.46 min / median / max; at 10 clients 1.31 / 1.60 / 1.70): it saves about a
quarter of that CPU, over the 10 % the project asks before keeping code that leans on the ORM's
compiler. It uses the compiler and cursor classes (``InsertQuery``, ``ServerBindingCursor``) rather
than documented API, so tests/core/test_compiled.py compares its statements and rows with the ORM's
for every model it serves: a Django upgrade that changes them fails there.
"""

from functools import cache
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models.sql import InsertQuery

M = TypeVar("M", bound=models.Model)


@cache
def _select_by_pk(model: type[models.Model], alias: str) -> tuple[str, list[str], dict[int, Any]]:
    """``SELECT <every concrete column> FROM <table> WHERE <pk> = %s`` for ``alias``, the attribute
    names in column order, and the backend's converters for the columns (SQLite's datetimes, for
    one), by column position."""
    names = [field.attname for field in model._meta.concrete_fields]
    query = model._base_manager.using(alias).filter(pk=0).order_by().query
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    assert params == (0,), "one placeholder: the primary key"
    return sql, names, compiler.get_converters([column for column, _, _ in compiler.select])


def _cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """``connection.cursor()``, but on PostgreSQL one that binds parameters on the server.

    Django's psycopg 3 cursors bind on the client unless ``server_side_binding`` is on (off here:
    some ORM queries need client binding), which turns every parameter into an SQL literal in
    Python, per call; an audit row has twenty. The statements here take plain values only, so
    they use Django's own server-binding cursor class (what ``server_side_binding`` would choose),
    wrapped as Django wraps every cursor: execute wrappers, query logging and error translation
    still apply. In-process CPU of the audit INSERT: 0.30 -> 0.18 ms.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def get_by_pk(model: type[M], pk: Any) -> M | None:
    """``model.objects.filter(pk=pk).first()``, cheaper: the instance, or None. Raises DatabaseError."""
    alias = router.db_for_read(model)
    sql, names, converters = _select_by_pk(model, alias)
    connection = connections[alias]
    with _cursor(connection) as cursor:
        cursor.execute(sql, [model._meta.pk.get_prep_value(pk)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, (functions, expression) in converters.items():  # as SQLCompiler.apply_converters does
        for function in functions:
            values[index] = function(values[index], expression, connection)
    return model.from_db(alias, names, values)


@cache
def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    """What ``Model.save()`` inserts for a new row: every local concrete column but an automatic pk."""
    meta = model._meta
    return [field for field in meta.local_concrete_fields if field is not meta.auto_field]


@cache
def _insert_sql(model: type[models.Model], alias: str) -> str:
    """``INSERT INTO <table> (<columns>) VALUES (%s, ...)`` for ``alias``, as the ORM writes it."""
    fields = _insert_fields(model)
    query = InsertQuery(model)
    query.insert_values(fields, [model()])
    [(sql, params)] = query.get_compiler(using=alias).as_sql()
    # Every value is one plain placeholder (no field here has a custom one), so binding is all
    # that is left to do per row.
    assert len(params) == len(fields) and sql.count("%s") == len(fields), sql
    return sql


def create(model: type[M], **values: Any) -> None:
    """``model.objects.create(**values)`` without the per-call SQL compilation; returns nothing (the
    pk is not read back). Defaults, ``auto_now_add`` and the fields' database conversions apply as
    in ``save()``. Raises DatabaseError."""
    alias = router.db_for_write(model)
    sql = _insert_sql(model, alias)
    instance = model(**values)
    connection = connections[alias]
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in _insert_fields(model)
    ]
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
