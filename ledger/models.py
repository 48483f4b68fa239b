"""What the server knows is stored in the users' folders, kept from OSS event notifications.

``StoredObject`` is the ledger: one row per key ever seen under a user's folders; ``present`` False
keeps the last thing known about a removed key (a tombstone), so an older event that arrives late
cannot bring it back. ``UploadUsage`` holds the running totals of the present rows and the
reservations of signed forms; ``ObjectEvent`` is the append-only history reviewers read;
``ReceivedMessage`` makes a redelivered push a no-op.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class UploadUsage(models.Model):
    """What a user's folders hold, as far as the server knows, and the quota that applies to them.

    ``stored_*`` is the sum of the user's present ledger rows, moved by each event's change to the
    ledger and corrected by ``reconcile_upload_usage``. ``pending_*`` is what signed forms reserved
    and did not use yet (``FormReservation``); it counts only until ``pending_until`` (the last of
    those forms' expiry): past it every reservation has lapsed. The quota columns override the
    ``UPLOAD_QUOTA_*`` settings for this user: empty uses the setting, 0 means no limit.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="upload_usage",
        verbose_name=_("user"),
    )
    stored_bytes = models.PositiveBigIntegerField(_("stored bytes"), default=0)
    stored_objects = models.PositiveIntegerField(_("stored objects"), default=0)
    pending_bytes = models.PositiveBigIntegerField(
        _("pending bytes"),
        default=0,
        help_text=_("Declared sizes of signed forms not used yet (until they expire)."),
    )
    pending_objects = models.PositiveIntegerField(_("pending objects"), default=0)
    pending_until = models.DateTimeField(
        _("reservations until"),
        null=True,
        blank=True,
        help_text=_("When the last unused form expires; after it nothing is reserved."),
    )
    counted_at = models.DateTimeField(
        _("counted at"),
        null=True,
        blank=True,
        help_text=_("When the folders were last listed to check the ledger; empty: never."),
    )
    quota_bytes = models.PositiveBigIntegerField(
        _("quota bytes"), null=True, blank=True, help_text=_("Empty: UPLOAD_QUOTA_BYTES. 0: no limit.")
    )
    quota_objects = models.PositiveIntegerField(
        _("quota objects"), null=True, blank=True, help_text=_("Empty: UPLOAD_QUOTA_OBJECTS. 0: no limit.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "uploads_uploadusage"
        verbose_name = _("upload usage")
        verbose_name_plural = _("upload usage")

    def __str__(self) -> str:
        return gettext("Upload usage of user %(id)s") % {"id": self.user_id}


class StoredObject(models.Model):
    """One key under a user's folders: what is stored there now (``present``), or that it was removed.

    Ordering: an event changes the row only if its (``event_time``, ``request_id``) is greater than
    the row's (see ``ledger.services.events``).
    """

    key = models.CharField(_("key"), max_length=1024, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="stored_objects",
        verbose_name=_("owner"),
    )
    present = models.BooleanField(_("present"), default=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    etag = models.CharField(_("ETag"), max_length=128, blank=True)
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    uploaded_at = models.DateTimeField(_("uploaded at"), help_text=_("When the current version was written."))
    event_time = models.DateTimeField(_("last event time"))
    request_id = models.CharField(_("OSS request id"), max_length=64, blank=True)
    principal_id = models.CharField(_("principal"), max_length=255, blank=True)
    source_ip = models.CharField(_("source address"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        verbose_name = _("stored object")
        verbose_name_plural = _("stored objects")
        indexes = [
            models.Index(
                fields=["user", "-uploaded_at", "-id"],
                condition=Q(present=True),
                name="stored_object_user_newest",
            ),
            models.Index(fields=["present", "event_time"], name="stored_object_tombstones"),
        ]

    def __str__(self) -> str:
        return self.key


class FormReservation(models.Model):
    """Bytes and one object a signed form may still add; gone when its object is in the ledger."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=1024, unique=True)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="form_reservation_user_expires")]

    def __str__(self) -> str:
        return self.key


class ObjectEvent(models.Model):
    """One change to a user's files as the server learned it. Append-only; what reviewers read."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Uploaded")
        REMOVED = "removed", _("Deleted")

    class Source(models.TextChoices):
        EVENT = "event", _("OSS event")
        SERVER = "server", _("The server's own write")
        USER = "user", _("Deleted by the user")
        RECONCILE = "reconcile", _("Found by a recount")

    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    # The foreign key above is cleared when the account is deleted; this keeps the id it had, so the
    # rows of a deleted account stay that account's (audit.services.deleted_account_rows_keep_id).
    deleted_account_id = models.BigIntegerField(
        _("deleted account id"),
        null=True,
        blank=True,
        help_text=_("The id of the account this row belonged to, kept when that account was deleted."),
    )
    key = models.CharField(_("key"), max_length=1024)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    event_name = models.CharField(_("event"), max_length=64, blank=True)
    event_time = models.DateTimeField(_("event time"))
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    delta_bytes = models.BigIntegerField(_("usage change (bytes)"), default=0)
    delta_objects = models.IntegerField(_("usage change (objects)"), default=0)
    applied = models.BooleanField(
        _("applied"), default=True, help_text=_("False: older than what the ledger already knew.")
    )
    principal_id = models.CharField(_("principal"), max_length=255, blank=True)
    session_name = models.CharField(
        _("role session name"), max_length=64, blank=True, help_text=_("From the principal, if it names one.")
    )
    source_ip = models.CharField(_("source address"), max_length=64, blank=True)
    oss_request_id = models.CharField(_("OSS request id"), max_length=64, blank=True)
    message_id = models.CharField(_("message id"), max_length=128, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        ordering = ["-event_time"]
        verbose_name = _("object event")
        verbose_name_plural = _("object events")
        indexes = [models.Index(fields=["user", "-event_time"], name="object_event_user_time")]
        constraints = [
            # The same OSS request for the same key and event is applied once, whatever message carried it.
            models.UniqueConstraint(
                fields=["oss_request_id", "key", "event_name"],
                condition=Q(source="event"),
                name="object_event_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key}"


class ReceivedMessage(models.Model):
    """An MNS message id already handled: a redelivery answers 204 and changes nothing."""

    message_id = models.CharField(max_length=128, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.message_id
