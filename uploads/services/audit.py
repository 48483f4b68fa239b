"""The one writer of token issuance audit rows: every attempt leaves one row, whatever its outcome, and
if the row cannot be written nothing is handed out."""

import logging
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun.policy import user_prefix
from core import compiled
from core.exceptions import ApplicationError
from core.requests import RequestContext
from core.text import storable_text

from ..models import TokenIssuance

logger = logging.getLogger(__name__)


def role_session_name(user_id: int) -> str:
    """Shows up in the assumed-role ARN and in ActionTrail, so it names the user."""
    return f"user-{user_id}"


def audit_unavailable() -> ApplicationError:
    """503 ``audit_unavailable`` with Retry-After: the database could not take the audit row."""
    return ApplicationError(
        _("The audit log is unavailable; no credentials were issued."),
        code="audit_unavailable",
        status_code=503,
        retry_after=5,
    )


def issuance_record(
    *,
    user: User,
    context: RequestContext,
    outcome: str,
    grant: str,
    error_code: str = "",
    window_seconds: int | None = None,
    **fields: Any,
) -> None:
    """Write the audit row of one request for ``grant`` (``TokenIssuance.Grant``) by ``user``.

    ``outcome`` is a ``TokenIssuance.Outcome``; ``error_code`` says why a request was refused or failed
    (a stable code such as ``throttled``, ``invalid``, ``quota_exceeded``, or Alibaba's STS code); other
    ``fields`` are columns of ``TokenIssuance`` (``policy``, ``access_key_id``, ``expiration``…).
    The user's prefix and role session name are filled in here.

    With ``window_seconds`` (a rate limit's window, for its refusals) the refusals of one user for one
    grant and code share a row while it is younger than the window: ``attempts`` counts them and
    ``last_attempt_at`` is the latest, so a flood costs one row per user per window and a reviewer
    still sees how many and when. The plain INSERT is the ORM's, compiled once per process
    (``core.compiled``): every hand-out writes one. Raises ``ApplicationError`` ``audit_unavailable``
    (503) if the row cannot be written.
    """
    row = {
        "user": user,
        "username": user.get_username(),
        "outcome": outcome,
        "grant": grant,
        "prefix": user_prefix(user.pk),
        "role_session_name": role_session_name(user.pk),
        "error_code": error_code,
        "auth_method": context.auth_method,
        "client_ip": context.client_ip,
        "user_agent": storable_text(context.user_agent, 512),
        "request_id": context.request_id,
        **fields,
    }
    try:
        if window_seconds and outcome == TokenIssuance.Outcome.REFUSED:
            _refusal_count(row, window_seconds)
        else:
            compiled.create(TokenIssuance, **row)
    except DatabaseError:
        logger.exception("Could not write the token issuance audit row")
        raise audit_unavailable() from None


def _refusal_count(row: dict[str, Any], window_seconds: int) -> None:
    """Count a refusal in the user's row for this grant and code within the window, or start one."""
    now = timezone.now()
    with transaction.atomic():
        # One refusal of a user at a time: PostgreSQL locks the user's row; SQLite's transactions
        # take the database's write lock as they begin (config/settings/base.py).
        list(User.objects.select_for_update().filter(pk=row["user"].pk).values_list("pk"))
        counted = TokenIssuance.objects.filter(
            pk__in=TokenIssuance.objects.filter(
                user=row["user"],
                grant=row["grant"],
                outcome=TokenIssuance.Outcome.REFUSED,
                error_code=row["error_code"],
                created_at__gt=now - timedelta(seconds=window_seconds),
            ).values("pk")[:1]
        ).update(attempts=F("attempts") + 1, last_attempt_at=now)
        if not counted:
            TokenIssuance.objects.create(**row, created_at=now)


def unknown_caller_refusal_record(
    *, context: RequestContext, grant: str, error_code: str, window_seconds: int
) -> None:
    """Audit a refusal of a request that names no user (a credential URL that does not exist): one row
    per client address, grant and code per ``window_seconds``, its ``attempts`` counting them, so
    guessing costs a bounded number of rows and a reviewer still sees who guessed, how often and when.
    The row has no user and an empty username. Raises ``ApplicationError`` ``audit_unavailable`` (503)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            counted = TokenIssuance.objects.filter(
                pk__in=TokenIssuance.objects.filter(
                    user__isnull=True,
                    username="",
                    client_ip=context.client_ip,
                    grant=grant,
                    outcome=TokenIssuance.Outcome.REFUSED,
                    error_code=error_code,
                    created_at__gt=now - timedelta(seconds=window_seconds),
                ).values("pk")[:1]
            ).update(attempts=F("attempts") + 1, last_attempt_at=now)
            if not counted:
                TokenIssuance.objects.create(
                    user=None,
                    username="",
                    outcome=TokenIssuance.Outcome.REFUSED,
                    grant=grant,
                    prefix="",
                    error_code=error_code,
                    auth_method=context.auth_method,
                    client_ip=context.client_ip,
                    user_agent=storable_text(context.user_agent, 512),
                    request_id=context.request_id,
                    created_at=now,
                )
    except DatabaseError:
        logger.exception("Could not write the token issuance audit row")
        raise audit_unavailable() from None
