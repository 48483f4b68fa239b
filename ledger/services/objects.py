"""A user's own files: deleting one with the server's key (a user's credentials are write-only)."""

import logging

from django.db import DatabaseError
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun import oss
from core.exceptions import ApplicationError
from core.requests import RequestContext

from ..models import ObjectEvent
from ..selectors import stored_object_of
from .events import server_delete_record

logger = logging.getLogger(__name__)


def object_not_found() -> ApplicationError:
    """The one answer for a key that is not the caller's, not there, or not given: nothing leaks."""
    return ApplicationError(_("You have no file with that key."), code="not_found", status_code=404)


def stored_object_delete(*, user: User, key: str, context: RequestContext) -> None:
    """Delete ``user``'s file at ``key`` from OSS and from the ledger; audited as an ``ObjectEvent``
    (source ``user``, with the request's id and client address).

    Raises ``ApplicationError``: 404 ``not_found`` (not the user's, or not there), 409
    ``object_in_use`` (it is the user's current avatar), 502/503 when OSS or the database fails.
    """
    try:
        row = stored_object_of(user=user, key=key)
    except DatabaseError:
        raise _database_unavailable() from None
    if row is None:
        raise object_not_found()
    if key == user.avatar_key:
        raise ApplicationError(
            _("This file is your current avatar; choose another avatar first."),
            code="object_in_use",
            status_code=409,
        )
    try:
        oss.delete_object(key)
    except oss.OssError as exc:
        unavailable = exc.code == "oss_unavailable"
        raise ApplicationError(
            _("The storage service is unavailable; try again shortly.")
            if unavailable
            else _("The storage service refused the server's configuration."),
            code=exc.code if exc.code in ("oss_unavailable", "oss_rejected") else "oss_unavailable",
            status_code=503 if unavailable else 502,
            retry_after=5 if unavailable else None,
        ) from None
    try:
        server_delete_record(
            key=key,
            source=ObjectEvent.Source.USER,
            request_id=context.request_id,
            source_ip=context.client_ip or "",
        )
    except DatabaseError:
        # Deleted in OSS: its event will take it off the ledger (and the next reconcile at the latest).
        logger.exception("Could not record a user's delete in the ledger")


def _database_unavailable() -> ApplicationError:
    logger.exception("Could not read the ledger")
    return ApplicationError(
        _("The database is unavailable; try again shortly."),
        code="audit_unavailable",
        status_code=503,
        retry_after=5,
    )
