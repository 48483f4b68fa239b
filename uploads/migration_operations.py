"""Index changes that do not stop the audit log taking writes while they run.

On PostgreSQL a plain CREATE INDEX blocks every INSERT into the table until it is built, and on
a big audit log that means issuance waits (or times out) for the whole build; CONCURRENTLY
builds it beside the live table. SQLite (the demo) has no such thing and gets the plain form.
Migrations using these need ``atomic = False``.
"""

from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    NotInTransactionMixin,
    RemoveIndexConcurrently,
)
from django.db.migrations.operations import AddIndex, AlterField, RemoveIndex
from django.db.migrations.operations.base import Operation


class _PlainOutsidePostgres:
    """CONCURRENTLY (the next class in the MRO) on PostgreSQL, ``plain`` on anything else."""

    plain: type[Operation]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddIndexOnline(_PlainOutsidePostgres, AddIndexConcurrently):
    plain = AddIndex


class RemoveIndexOnline(_PlainOutsidePostgres, RemoveIndexConcurrently):
    plain = RemoveIndex


class DropFieldIndexOnline(NotInTransactionMixin, AlterField):
    """An AlterField whose only database change is dropping the field's ``db_index``.

    Django drops that index with a plain DROP INDEX, which queues for an exclusive lock on the
    table behind every running statement and blocks every INSERT behind it; on PostgreSQL this
    drops it CONCURRENTLY instead. Going backwards, and on other databases, it is Django's own.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model = from_state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.name).column
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        for name, info in constraints.items():
            if info["index"] and info["columns"] == [column] and not (info["primary_key"] or info["unique"]):
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # AlterField's own backwards is its forwards (from the later state to the earlier one), which
        # here would be the concurrent drop; the way back is the plain one, adding the index again.
        AlterField.database_forwards(self, app_label, schema_editor, from_state, to_state)
