from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class TokenIssuance(models.Model):
    """One row per request for upload credentials, whatever the outcome. Append-only.

    Holds what a security reviewer needs (who, when, from where, which prefix, which STS key
    id) and never the AccessKey secret or the security token.
    """

    class Outcome(models.TextChoices):
        ISSUED = "issued", _("Issued (new STS credentials)")
        REUSED = "reused", _("Reused (cached credentials)")
        REFUSED = "refused", _("Refused (rate limited, invalid request or over quota)")
        FAILED = "failed", _("Failed (STS error)")

    class Grant(models.TextChoices):
        STS_TOKEN = "sts_token", _("STS credentials")
        POST_POLICY = "post_policy", _("Signed form (PostObject policy)")

    class AuthMethod(models.TextChoices):
        JWT = "jwt", _("JWT")
        SESSION = "session", _("Session")
        CREDENTIAL_URL = "credential_url", _("Credential URL")
        OTHER = "other", _("Other")

    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="token_issuances",
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
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    # db_default: rows written by the previous release during a rolling deploy still get a value.
    grant = models.CharField(
        _("what was asked for"),
        max_length=16,
        choices=Grant.choices,
        default=Grant.STS_TOKEN,
        db_default=Grant.STS_TOKEN,
    )
    auth_method = models.CharField(_("auth method"), max_length=16, choices=AuthMethod.choices)
    prefix = models.CharField(_("prefix"), max_length=255)
    object_key = models.CharField(
        _("object key"),
        max_length=1024,
        blank=True,
        default="",
        db_default="",
        help_text=_("The one key a signed form may write."),
    )
    role_session_name = models.CharField(_("role session name"), max_length=64, blank=True)
    access_key_id = models.CharField(_("STS access key id"), max_length=128, blank=True)
    expiration = models.DateTimeField(_("expiration"), null=True, blank=True)
    policy = models.JSONField(_("session policy sent"), null=True, blank=True)
    sts_request_id = models.CharField(_("STS request id"), max_length=64, blank=True)
    error_code = models.CharField(_("error code"), max_length=128, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    attempts = models.PositiveIntegerField(
        _("attempts"),
        default=1,
        help_text=_(
            "Requests this row stands for: throttled refusals of one user within one throttle "
            "window share a row (sum this, not rows, to count requests); every other row is 1."
        ),
    )
    last_attempt_at = models.DateTimeField(
        _("last attempt at"),
        null=True,
        blank=True,
        help_text=_("Time of the latest request counted in attempts (when more than one)."),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("token issuance")
        verbose_name_plural = _("token issuances")
        indexes = [
            models.Index(fields=["outcome", "-created_at"], name="issuance_outcome_created"),
            models.Index(fields=["auth_method", "-created_at"], name="issuance_auth_created"),
            # The admin searches these by exact value and lists the matches newest first: one
            # index range per search, and MIN/MAX for the date hierarchy from its ends. (db_index=True
            # on a CharField would add a second, LIKE-only index on PostgreSQL, paid on every insert.)
            models.Index(fields=["request_id", "-created_at"], name="issuance_request_created"),
            models.Index(fields=["username", "-created_at"], name="issuance_username_created"),
            models.Index(fields=["access_key_id", "-created_at"], name="issuance_key_created"),
            models.Index(fields=["client_ip", "-created_at"], name="issuance_ip_created"),
        ]

    def __str__(self) -> str:
        return gettext("%(what)s for %(username)s at %(time)s") % {
            "what": self.get_outcome_display(),
            "username": self.username or "?",
            "time": f"{self.created_at:%Y-%m-%d %H:%M:%S}",
        }


class CredentialUrl(models.Model):
    """A secret URL that answers a plain GET with its user's upload credentials (stock mobile format).

    Only the SHA-256 of the secret is kept: the URL itself is shown once, to its creator. It ends
    at ``expires_at``, when ``revoked_at`` is set (logout), and when the user's sign-in cut-off
    (``accounts.User.tokens_valid_after``: password change, deactivation, sign out everywhere)
    moves past ``created_at``.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credential_urls"
    )
    secret_hash = models.CharField("SHA-256 of the secret", max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    auth_method = models.CharField(
        "how its creator authenticated", max_length=16, choices=TokenIssuance.AuthMethod.choices
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("credential URL")
        verbose_name_plural = _("credential URLs")
        indexes = [models.Index(fields=["user", "expires_at"], name="credential_url_user_expires")]

    def __str__(self) -> str:
        return f"Credential URL of user {self.user_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
