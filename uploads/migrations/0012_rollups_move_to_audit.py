"""The overview's rollup tables now belong to the audit app (audit/migrations/0001_initial.py): only
Django's record changes; the tables and their rows stay, and their content types move to audit."""

from django.db import migrations

from core.migration_helpers import content_types_move

ROLLUP_MODELS = ["issuancerollup", "issuancerollupuser", "issuancerolluphour", "issuancerolluphouruser"]


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
        migrations.RunPython(
            content_types_move(ROLLUP_MODELS, "uploads", "audit"),
            content_types_move(ROLLUP_MODELS, "audit", "uploads"),
        ),
    ]
