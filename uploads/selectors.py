"""Reads for the uploads app: whether a credential URL still works (usage and quota: ``ledger.selectors``)."""

from datetime import datetime

from django.db.models import Q, QuerySet, TextChoices
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.selectors import token_is_current, token_is_current_q

from .models import CredentialUrl

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
