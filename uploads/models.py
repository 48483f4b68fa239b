from django.conf import settings
from django.db import models
from django.utils import timezone


class TokenIssuance(models.Model):
    """One row per request for upload credentials, whatever the outcome. Append-only.

    Holds what a security reviewer needs (who, when, from where, which prefix, which STS key
    id) and never the AccessKey secret or the security token.
    """

    class Outcome(models.TextChoices):
        ISSUED = "issued", "Issued (new STS credentials)"
        REUSED = "reused", "Reused (cached credentials)"
        REFUSED = "refused", "Refused (rate limited)"
        FAILED = "failed", "Failed (STS error)"

    class AuthMethod(models.TextChoices):
        JWT = "jwt", "JWT"
        SESSION = "session", "Session"
        OTHER = "other", "Other"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="token_issuances",
    )
    username = models.CharField(max_length=150)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    auth_method = models.CharField(max_length=16, choices=AuthMethod.choices)
    prefix = models.CharField(max_length=255)
    role_session_name = models.CharField(max_length=64, blank=True)
    access_key_id = models.CharField("STS access key id", max_length=128, blank=True)
    expiration = models.DateTimeField(null=True, blank=True)
    policy = models.JSONField("session policy sent", null=True, blank=True)
    sts_request_id = models.CharField("STS request id", max_length=64, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "token issuance"
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
        return (
            f"{self.get_outcome_display()} for {self.username or '?'} at {self.created_at:%Y-%m-%d %H:%M:%S}"
        )
