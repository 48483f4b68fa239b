"""The overview's rollup tables now belong to the audit app (audit/migrations/0001_initial.py): only
Django's record changes; the tables and their rows stay, and their content types move to audit."""

from django.db import migrations

ROLLUP_MODELS = ["issuancerollup", "issuancerollupuser", "issuancerolluphour", "issuancerolluphouruser"]


def _move_content_types(apps, source: str, target: str) -> None:
    """Keep each model's content type (and the permissions that point at it) under its new app label;
    a fresh one that post_migrate made meanwhile for the target label holds nothing and goes."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in ROLLUP_MODELS:
        kept = ContentType.objects.filter(app_label=source, model=model).first()
        if kept is None:
            continue
        ContentType.objects.filter(app_label=target, model=model).delete()
        kept.app_label = target
        kept.save(update_fields=["app_label"])


def content_types_to_audit(apps, schema_editor):
    _move_content_types(apps, "uploads", "audit")


def content_types_to_uploads(apps, schema_editor):
    _move_content_types(apps, "audit", "uploads")


class Migration(migrations.Migration):

    dependencies = [
        ("uploads", "0011_verbose_names"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='issuancerolluphour',
                    name='rollup',
                ),
                migrations.RemoveField(
                    model_name='issuancerollupuser',
                    name='rollup',
                ),
                migrations.DeleteModel(
                    name='IssuanceRollupHourUser',
                ),
                migrations.DeleteModel(
                    name='IssuanceRollupHour',
                ),
                migrations.DeleteModel(
                    name='IssuanceRollup',
                ),
                migrations.DeleteModel(
                    name='IssuanceRollupUser',
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to_audit, content_types_to_uploads),
    ]
