"""UploadUsage now belongs to the ledger app (ledger/migrations/0001_initial.py): only Django's record
changes; the table and its rows stay, and its content type (with the permissions on it) moves."""

from django.db import migrations

from core.migration_helpers import content_types_move


class Migration(migrations.Migration):

    dependencies = [
        ("uploads", "0012_rollups_move_to_audit"),
        ("ledger", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="UploadUsage")],
            database_operations=[],
        ),
        migrations.RunPython(
            content_types_move(["uploadusage"], "uploads", "ledger"),
            content_types_move(["uploadusage"], "ledger", "uploads"),
        ),
    ]
