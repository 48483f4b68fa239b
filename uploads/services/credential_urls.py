"""Credential URLs: a secret URL that a stock mobile credential provider can GET for its user's
upload credentials (``GET /api/uploads/sts-server/<secret>/``)."""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from core.exceptions import ApplicationError
from core.redaction import CREDENTIAL_URL_SECRET_PREFIX
from core.requests import RequestContext
from core.text import storable_text

from ..models import CredentialUrl
from ..selectors import CredentialUrlStatus, credential_url_status, credential_urls_live


@dataclass(frozen=True)
class NewCredentialUrl:
    secret: str  # shown once, to its creator; only its SHA-256 is stored
    expires_at: datetime


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def credential_url_create(*, user: User, context: RequestContext) -> NewCredentialUrl:
    """A new credential URL secret for ``user``, valid for CREDENTIAL_URL_LIFETIME_MINUTES.

    The secret is ``osscu_`` + 43 URL-safe characters (256 random bits); the prefix lets the log
    filter in ``core/redaction.py`` cut it out of every log line. The user's expired URLs are
    deleted on the way, so rows do not pile up.
    """
    now = timezone.now()
    secret = CREDENTIAL_URL_SECRET_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=settings.CREDENTIAL_URL_LIFETIME_MINUTES)
    CredentialUrl.objects.filter(user=user, expires_at__lte=now).delete()
    CredentialUrl.objects.create(
        user=user,
        secret_hash=_sha256(secret),
        created_at=now,
        expires_at=expires_at,
        auth_method=context.auth_method,
        client_ip=context.client_ip,
        user_agent=storable_text(context.user_agent, 512),
        request_id=context.request_id,
    )
    return NewCredentialUrl(secret=secret, expires_at=expires_at)


class CredentialUrlRefused(ApplicationError):
    """A credential URL that does not work (401); ``owner`` is its user when the URL exists (expired or
    ended), None for a secret that names no URL."""

    def __init__(self, detail: str, *, code: str, owner: User | None) -> None:
        super().__init__(detail, code=code, status_code=401)
        self.owner = owner


def _credential_url_refused(code: str, detail: str, owner: User | None = None) -> CredentialUrlRefused:
    return CredentialUrlRefused(detail, code=code, owner=owner)


def credential_url_user(*, secret: str) -> User:
    """The user a credential URL secret belongs to, if the URL still works.

    Raises ``CredentialUrlRefused`` (401) with code ``credential_url_invalid`` (no such URL),
    ``credential_url_expired`` (past its lifetime: make a new one) or ``credential_url_revoked``
    (ended by logout, a password change, deactivation or "sign out everywhere": sign in again).
    """
    row = (
        CredentialUrl.objects.select_related("user").filter(secret_hash=_sha256(secret)).first()
        if secret.startswith(CREDENTIAL_URL_SECRET_PREFIX)
        else None
    )
    if row is None:
        raise _credential_url_refused("credential_url_invalid", _("This credential URL does not exist."))
    # The user's sign-in cut-off (password change, deactivation, "sign out everywhere" in the
    # admin) ends credential URLs made before it, as it ends their JWTs: both answer "revoked".
    status = credential_url_status(row)
    if status in (CredentialUrlStatus.REVOKED, CredentialUrlStatus.CUT_OFF):
        raise _credential_url_refused(
            "credential_url_revoked",
            _("This credential URL was ended by a sign-out or a password change."),
            row.user,
        )
    if status == CredentialUrlStatus.EXPIRED:
        raise _credential_url_refused(
            "credential_url_expired",
            _("This credential URL has expired; ask the API for a new one."),
            row.user,
        )
    return row.user


def credential_urls_revoke(*, user: User | None = None, ids: Iterable[int] | None = None) -> list[int]:
    """End the credential URLs that still work, of ``user`` (a logout) or among ``ids`` (a reviewer's
    admin action); returns the ids of those it ended.

    Expired URLs and URLs already ended keep their ``revoked_at`` (or none), so their status still
    says why they stopped. The rows are locked first (PostgreSQL), so two reviewers ending the same
    URL at once do not both count it. Raises ``ValueError`` unless exactly one of ``user`` and
    ``ids`` is given.
    """
    if (user is None) == (ids is None):
        raise ValueError("give either user or ids")
    now = timezone.now()
    with transaction.atomic():
        candidates = (
            CredentialUrl.objects.filter(user=user)
            if user is not None
            else CredentialUrl.objects.filter(pk__in=list(ids or ()))
        )
        ended = list(
            credential_urls_live(candidates, now=now)
            .select_for_update(of=("self",))
            .values_list("pk", flat=True)
        )
        CredentialUrl.objects.filter(pk__in=ended).update(revoked_at=now)
    return ended
