"""UploadUsage now belongs to the ledger app (ledger/migrations/0001_initial.py): only Django's record
changes; the table and its rows stay, and its content type (with the permissions on it) moves."""

from django.db import migrations


def _move_content_type(apps, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    kept = ContentType.objects.filter(app_label=source, model="uploadusage").first()
    if kept is None:
        return
    ContentType.objects.filter(app_label=target, model="uploadusage").delete()
    kept.app_label = target
    kept.save(update_fields=["app_label"])


def content_type_to_ledger(apps, schema_editor):
    _move_content_type(apps, "uploads", "ledger")


def content_type_to_uploads(apps, schema_editor):
    _move_content_type(apps, "ledger", "uploads")


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
        migrations.RunPython(content_type_to_ledger, content_type_to_uploads),
    ]
