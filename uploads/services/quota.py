"""A user's quota as hand-outs apply it: usage is the ledger's (``ledger``: kept from OSS events),
reservations for signed forms are made there; refusals are audited here."""

from typing import Any

from accounts.models import User
from core.exceptions import ApplicationError
from core.requests import RequestContext
from ledger.selectors import UsageSummary
from ledger.services.usage import quota_exceeded, usage_release, usage_reserve, usage_summary

from ..models import TokenIssuance
from .audit import issuance_record

__all__ = [
    "UsageSummary",
    "quota_exceeded",
    "refusal_record",
    "usage_release",
    "usage_reserve",
    "usage_summary",
]


def refusal_record(
    *, user: User, context: RequestContext, grant: str, error: ApplicationError, **fields: Any
) -> ApplicationError:
    """Audit a request the server refused before calling STS with ``error``'s code; returns ``error``
    for the caller to raise."""
    issuance_record(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REFUSED,
        grant=grant,
        error_code=error.code,
        **fields,
    )
    return error
