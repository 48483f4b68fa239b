"""Reads for the uploads app: a user's storage usage and quota, and whether a credential URL still works."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet, TextChoices
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import token_is_current, token_is_current_q
from core.compiled import get_by_pk

from .models import CredentialUrl, UploadUsage

# --- Storage usage and quota ------------------------------------------------------------------


@dataclass(frozen=True)
class UsageSummary:
    """Bytes and objects the user's folders hold as far as the server knows; a quota of None is no limit."""

    used_bytes: int
    used_objects: int
    quota_bytes: int | None
    quota_objects: int | None
    counted_at: datetime | None

    @property
    def bytes_left(self) -> int | None:
        return None if self.quota_bytes is None else max(0, self.quota_bytes - self.used_bytes)

    @property
    def at_quota(self) -> bool:
        """Nothing more fits: no byte, or no object, is left."""
        return (self.quota_bytes is not None and self.used_bytes >= self.quota_bytes) or (
            self.quota_objects is not None and self.used_objects >= self.quota_objects
        )


def _limit(override: int | None, default: int) -> int | None:
    value = default if override is None else override
    return value or None  # 0: no limit


def usage_summary_of(row: UploadUsage | None) -> UsageSummary:
    """The summary of a usage row (None: a user the server has seen nothing of yet)."""
    quota_bytes = _limit(row.quota_bytes if row else None, settings.UPLOAD_QUOTA_BYTES)
    quota_objects = _limit(row.quota_objects if row else None, settings.UPLOAD_QUOTA_OBJECTS)
    if row is None:
        return UsageSummary(0, 0, quota_bytes, quota_objects, None)
    return UsageSummary(
        used_bytes=row.stored_bytes + row.pending_bytes,
        used_objects=row.stored_objects + row.pending_objects,
        quota_bytes=quota_bytes,
        quota_objects=quota_objects,
        counted_at=row.counted_at,
    )


def upload_usage_summary(*, user: User) -> UsageSummary:
    """What ``user``'s folders hold and their quota (``GET /api/me/`` shows it, and every hand-out
    reads it: compiled once, ``core.compiled``). Raises DatabaseError."""
    return usage_summary_of(get_by_pk(UploadUsage, user.pk))


# --- Credential URLs ---------------------------------------------------------------------------


class CredentialUrlStatus(TextChoices):
    LIVE = "live", _("live")
    EXPIRED = "expired", _("expired")
    REVOKED = "revoked", _("revoked")
    CUT_OFF = "cut_off", _("ended by the sign-in cut-off")


def credential_url_status(row: CredentialUrl, *, now: datetime | None = None) -> CredentialUrlStatus:
    """Whether a credential URL still answers, and if not why, checked in the order
    ``credential_url_user`` refuses it: revoked (a logout, or a reviewer ended it) and the user's
    sign-in cut-off (password change, deactivation, "sign out everywhere") before expiry."""
    if row.revoked_at is not None:
        return CredentialUrlStatus.REVOKED
    if not token_is_current(user=row.user, issued_at=row.created_at):
        return CredentialUrlStatus.CUT_OFF
    if row.expires_at <= (now or timezone.now()):
        return CredentialUrlStatus.EXPIRED
    return CredentialUrlStatus.LIVE


def _credential_url_ended_q() -> Q:
    return Q(revoked_at__isnull=False) | ~token_is_current_q(user="user", issued_at="created_at")


def credential_urls_live(queryset: QuerySet, *, now: datetime) -> QuerySet:
    """The rows of ``queryset`` whose status is live at ``now`` (as ``credential_url_status``, in SQL)."""
    return queryset.exclude(_credential_url_ended_q()).filter(expires_at__gt=now)


def credential_urls_expired(queryset: QuerySet, *, now: datetime) -> QuerySet:
    """The rows of ``queryset`` that ran out their lifetime at ``now`` without being ended first."""
    return queryset.exclude(_credential_url_ended_q()).filter(expires_at__lte=now)


def credential_urls_ended(queryset: QuerySet) -> QuerySet:
    """The rows of ``queryset`` revoked or ended by their user's sign-in cut-off, expired or not."""
    return queryset.filter(_credential_url_ended_q())
