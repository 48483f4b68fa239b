"""The upload ledger (ledger.StoredObject), its history, form reservations and received message ids;
UploadUsage moves here from uploads with its table and rows (only Django's record of its app changes,
as audit/migrations/0001_initial.py did for the rollups) and gains pending_until."""

from datetime import timedelta

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def reservations_keep(apps, schema_editor):
    """Reservations made before this release carry no expiry: keep them for a form's lifetime (10
    minutes) and one more, then they lapse as every reservation now does."""
    UploadUsage = apps.get_model("ledger", "UploadUsage")
    until = django.utils.timezone.now() + timedelta(minutes=11)
    UploadUsage.objects.filter(pending_objects__gt=0).update(pending_until=until)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0004_avatar_key_help_text'),
        ('uploads', '0012_rollups_move_to_audit'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='UploadUsage',
                    fields=[
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='upload_usage', serialize=False, to=settings.AUTH_USER_MODEL, verbose_name='user')),
                        ('stored_bytes', models.PositiveBigIntegerField(default=0, verbose_name='stored bytes')),
                        ('stored_objects', models.PositiveIntegerField(default=0, verbose_name='stored objects')),
                        ('pending_bytes', models.PositiveBigIntegerField(default=0, help_text='Declared sizes of signed forms not used yet (until they expire).', verbose_name='pending bytes')),
                        ('pending_objects', models.PositiveIntegerField(default=0, verbose_name='pending objects')),
                        ('counted_at', models.DateTimeField(blank=True, help_text='When the folders were last listed to check the ledger; empty: never.', null=True, verbose_name='counted at')),
                        ('quota_bytes', models.PositiveBigIntegerField(blank=True, help_text='Empty: UPLOAD_QUOTA_BYTES. 0: no limit.', null=True, verbose_name='quota bytes')),
                        ('quota_objects', models.PositiveIntegerField(blank=True, help_text='Empty: UPLOAD_QUOTA_OBJECTS. 0: no limit.', null=True, verbose_name='quota objects')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                    ],
                    options={
                        'verbose_name': 'upload usage',
                        'verbose_name_plural': 'upload usage',
                        'db_table': 'uploads_uploadusage',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name='uploadusage',
            name='pending_until',
            field=models.DateTimeField(blank=True, help_text='When the last unused form expires; after it nothing is reserved.', null=True, verbose_name='reservations until'),
        ),
        migrations.RunPython(reservations_keep, migrations.RunPython.noop),
        migrations.CreateModel(
            name='ReceivedMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('message_id', models.CharField(max_length=128, unique=True)),
                ('received_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name='FormReservation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=1024, unique=True)),
                ('size', models.PositiveBigIntegerField()),
                ('content_type', models.CharField(blank=True, max_length=255)),
                ('expires_at', models.DateTimeField()),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['user', 'expires_at'], name='form_reservation_user_expires')],
            },
        ),
        migrations.CreateModel(
            name='ObjectEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('received_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='received at')),
                ('key', models.CharField(max_length=1024, verbose_name='key')),
                ('kind', models.CharField(choices=[('created', 'Uploaded'), ('removed', 'Deleted')], max_length=16, verbose_name='kind')),
                ('source', models.CharField(choices=[('event', 'OSS event'), ('server', "The server's own write"), ('user', 'Deleted by the user'), ('reconcile', 'Found by a recount')], max_length=16, verbose_name='source')),
                ('event_name', models.CharField(blank=True, max_length=64, verbose_name='event')),
                ('event_time', models.DateTimeField(verbose_name='event time')),
                ('size', models.PositiveBigIntegerField(default=0, verbose_name='size (bytes)')),
                ('delta_bytes', models.BigIntegerField(default=0, verbose_name='usage change (bytes)')),
                ('delta_objects', models.IntegerField(default=0, verbose_name='usage change (objects)')),
                ('applied', models.BooleanField(default=True, help_text='False: older than what the ledger already knew.', verbose_name='applied')),
                ('principal_id', models.CharField(blank=True, max_length=255, verbose_name='principal')),
                ('session_name', models.CharField(blank=True, help_text='From the principal, if it names one.', max_length=64, verbose_name='role session name')),
                ('source_ip', models.CharField(blank=True, max_length=64, verbose_name='source address')),
                ('oss_request_id', models.CharField(blank=True, max_length=64, verbose_name='OSS request id')),
                ('message_id', models.CharField(blank=True, max_length=128, verbose_name='message id')),
                ('request_id', models.CharField(blank=True, max_length=64, verbose_name='request id')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='owner')),
            ],
            options={
                'verbose_name': 'object event',
                'verbose_name_plural': 'object events',
                'ordering': ['-event_time'],
                'indexes': [models.Index(fields=['user', '-event_time'], name='object_event_user_time')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('source', 'event')), fields=('oss_request_id', 'key', 'event_name'), name='object_event_once')],
            },
        ),
        migrations.CreateModel(
            name='StoredObject',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=1024, unique=True, verbose_name='key')),
                ('present', models.BooleanField(default=True, verbose_name='present')),
                ('size', models.PositiveBigIntegerField(default=0, verbose_name='size (bytes)')),
                ('etag', models.CharField(blank=True, max_length=128, verbose_name='ETag')),
                ('content_type', models.CharField(blank=True, max_length=255, verbose_name='content type')),
                ('uploaded_at', models.DateTimeField(help_text='When the current version was written.', verbose_name='uploaded at')),
                ('event_time', models.DateTimeField(verbose_name='last event time')),
                ('request_id', models.CharField(blank=True, max_length=64, verbose_name='OSS request id')),
                ('principal_id', models.CharField(blank=True, max_length=255, verbose_name='principal')),
                ('source_ip', models.CharField(blank=True, max_length=64, verbose_name='source address')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='first seen')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='stored_objects', to=settings.AUTH_USER_MODEL, verbose_name='owner')),
            ],
            options={
                'verbose_name': 'stored object',
                'verbose_name_plural': 'stored objects',
                'indexes': [models.Index(condition=models.Q(('present', True)), fields=['user', '-uploaded_at', '-id'], name='stored_object_user_newest'), models.Index(fields=['present', 'event_time'], name='stored_object_tombstones')],
            },
        ),
    ]
