"""Index changes that do not stop the audit log taking writes while they run.

On PostgreSQL a plain CREATE INDEX blocks every INSERT into the table until it is built, and a
plain DROP INDEX queues for an exclusive lock behind every running statement, blocking every
INSERT behind it; on a big audit log either stops issuance. These run CONCURRENTLY there, and
plainly elsewhere (SQLite, the demo). Migrations using them need ``atomic = False``, so each one
can be run again after a migration stopped half-way.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import NotSupportedError
from django.db.migrations.operations import AddIndex, AlterField, RemoveIndex
from django.db.migrations.operations.base import Operation


def _postgresql(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


class _PlainOutsidePostgres:
    """CONCURRENTLY (the next class in the MRO) on PostgreSQL, ``plain`` on anything else."""

    plain: type[Operation]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _postgresql(schema_editor):
            return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _postgresql(schema_editor):
            return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_PlainOutsidePostgres, AddIndexConcurrently):
    plain = AddIndex

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        # Run again after a migration stopped half-way: a finished index stays; an interrupted
        # CONCURRENTLY build leaves an INVALID one behind, which is dropped and built again.
        model = to_state.apps.get_model(app_label, self.model_name)
        valid = _index_validity(schema_editor, model._meta.db_table, self.index.name)
        if valid:
            return None
        if valid is False:
            schema_editor.execute(
                f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.index.name)}"
            )
        return super().database_forwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexOnline(_PlainOutsidePostgres, RemoveIndexConcurrently):
    plain = RemoveIndex


def _index_validity(schema_editor, table: str, name: str) -> bool | None:
    """Whether the index ``name`` on ``table`` is usable (False: an interrupted build), None if absent."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            return True if name in connection.introspection.get_constraints(cursor, table) else None
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


class DropFieldIndexOnline(AlterField):
    """An AlterField whose only database change is dropping the field's ``db_index``.

    Django would drop that index with a plain DROP INDEX on PostgreSQL and rebuild the whole table
    on SQLite; this drops just the index ``index_name`` (the name ``db_index=True`` gave it, which
    the migration spells out), CONCURRENTLY on PostgreSQL. Backwards it builds it again the same way.
    """

    def __init__(self, model_name, name, field, index_name: str, preserve_default=True):
        self.index_name = index_name
        super().__init__(model_name, name, field, preserve_default)

    def deconstruct(self):
        path, args, kwargs = super().deconstruct()
        return path, args, {**kwargs, "index_name": self.index_name}

    def _table_and_column(self, app_label, schema_editor, state) -> tuple[str, str] | None:
        model = state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        column = model._meta.get_field(self.name).column
        return schema_editor.quote_name(model._meta.db_table), schema_editor.quote_name(column)

    def _concurrently(self, schema_editor) -> str:
        """``CONCURRENTLY `` on PostgreSQL, which refuses it in a transaction (so ``atomic = False``)."""
        if not _postgresql(schema_editor):
            return ""
        if schema_editor.connection.in_atomic_block:
            raise NotSupportedError(
                f"{type(self).__name__} cannot run inside a transaction: set atomic = False on the migration."
            )
        return "CONCURRENTLY "

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if self._table_and_column(app_label, schema_editor, from_state) is not None:
            name = schema_editor.quote_name(self.index_name)
            schema_editor.execute(f"DROP INDEX {self._concurrently(schema_editor)}IF EXISTS {name}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        where = self._table_and_column(app_label, schema_editor, to_state)
        if where is not None:
            table, column = where
            name = schema_editor.quote_name(self.index_name)
            schema_editor.execute(
                f"CREATE INDEX {self._concurrently(schema_editor)}IF NOT EXISTS {name} ON {table} ({column})"
            )
