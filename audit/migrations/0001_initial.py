"""The overview's rollup tables move here from uploads, with their names, rows and constraints:
only Django's record of which app owns them changes (no SQL runs)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("uploads", "0011_verbose_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='IssuanceRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField()),
                        ('time_zone', models.CharField(max_length=64)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        'db_table': 'uploads_issuancerollup',
                        'constraints': [models.UniqueConstraint(fields=('time_zone', 'day'), name='issuance_rollup_zone_day')],
                    },
                ),
                migrations.CreateModel(
                    name='IssuanceRollupHourUser',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('issued', models.PositiveBigIntegerField(default=0)),
                        ('reused', models.PositiveBigIntegerField(default=0)),
                        ('refused', models.PositiveBigIntegerField(default=0)),
                        ('failed', models.PositiveBigIntegerField(default=0)),
                        ('time_zone', models.CharField(max_length=64)),
                        ('hour', models.DateTimeField()),
                        ('username', models.CharField(blank=True, max_length=150)),
                        ('addresses', models.JSONField(default=list)),
                    ],
                    options={
                        'db_table': 'uploads_issuancerolluphouruser',
                        'constraints': [models.UniqueConstraint(fields=('time_zone', 'hour', 'username'), name='issuance_rollup_hour_user')],
                    },
                ),
                migrations.CreateModel(
                    name='IssuanceRollupHour',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('issued', models.PositiveBigIntegerField(default=0)),
                        ('reused', models.PositiveBigIntegerField(default=0)),
                        ('refused', models.PositiveBigIntegerField(default=0)),
                        ('failed', models.PositiveBigIntegerField(default=0)),
                        ('hour', models.DateTimeField()),
                        ('rollup', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='hours', to='audit.issuancerollup')),
                    ],
                    options={
                        'db_table': 'uploads_issuancerolluphour',
                        'constraints': [models.UniqueConstraint(fields=('rollup', 'hour'), name='issuance_rollup_hour')],
                    },
                ),
                migrations.CreateModel(
                    name='IssuanceRollupUser',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('issued', models.PositiveBigIntegerField(default=0)),
                        ('reused', models.PositiveBigIntegerField(default=0)),
                        ('refused', models.PositiveBigIntegerField(default=0)),
                        ('failed', models.PositiveBigIntegerField(default=0)),
                        ('username', models.CharField(max_length=150)),
                        ('client_ips', models.PositiveIntegerField(default=0)),
                        ('rollup', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='users', to='audit.issuancerollup')),
                    ],
                    options={
                        'db_table': 'uploads_issuancerollupuser',
                        'constraints': [models.UniqueConstraint(fields=('rollup', 'username'), name='issuance_rollup_user')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
