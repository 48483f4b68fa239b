from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class AvatarChange(models.Model):
    """One row per step of an avatar change, granted or refused. Append-only, like ``TokenIssuance``.

    Upload keys handed out and refused, confirmations accepted and refused (with the reason, the
    object key the user named and the ETag the server checked), so a reviewer can follow what a
    user put in the bucket and what the server made of it.
    """

    class Kind(models.TextChoices):
        UPLOAD_KEY_GRANTED = "upload_key_granted", _("Upload key granted")
        UPLOAD_KEY_REFUSED = "upload_key_refused", _("Upload key refused")
        CONFIRMATION_ACCEPTED = "confirmation_accepted", _("Confirmation accepted")
        CONFIRMATION_REFUSED = "confirmation_refused", _("Confirmation refused")

    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="avatar_changes",
        verbose_name=_("user"),
    )
    username = models.CharField(_("username"), max_length=150)
    # The foreign key above is cleared when the account is deleted; this keeps the id it had, so the
    # rows of a deleted account stay that account's (audit.services.deleted_account_rows_keep_id).
    deleted_account_id = models.BigIntegerField(
        _("deleted account id"),
        null=True,
        blank=True,
        help_text=_("The id of the account this row belonged to, kept when that account was deleted."),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    reason = models.CharField(
        _("reason"),
        max_length=64,
        blank=True,
        help_text=_("The error code of a refusal (e.g. not_an_image); blank if granted."),
    )
    object_key = models.CharField(_("object key"), max_length=1024, blank=True)
    etag = models.CharField(_("ETag"), max_length=128, blank=True)
    avatar_key = models.CharField(
        _("confirmed avatar key"),
        max_length=1024,
        blank=True,
        help_text=_("Where the accepted avatar was copied."),
    )
    auth_method = models.CharField(_("auth method"), max_length=16, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("avatar change")
        verbose_name_plural = _("avatar changes")
        indexes = [
            models.Index(fields=["kind", "-created_at"], name="avatarchange_kind_created"),
            models.Index(fields=["username", "-created_at"], name="avatarchange_username_created"),
            models.Index(fields=["request_id", "-created_at"], name="avatarchange_request_created"),
            models.Index(fields=["client_ip", "-created_at"], name="avatarchange_ip_created"),
        ]

    def __str__(self) -> str:
        return gettext("%(what)s for %(username)s at %(time)s") % {
            "what": self.get_kind_display(),
            "username": self.username or "?",
            "time": f"{self.created_at:%Y-%m-%d %H:%M:%S}",
        }
