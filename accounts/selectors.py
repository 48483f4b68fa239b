"""Reads for the accounts app: may this user (still) be signed in with what they hold?"""

from datetime import datetime

from django.conf import settings
from django.db.models import F, Q

from core.compiled import get_by_pk

from .models import User


def user_can_sign_in(*, user: User) -> bool:
    """Active, and not a demo user (documented password) while DEBUG is off."""
    return user.is_active and (settings.DEBUG or not user.is_demo)


def token_is_current(*, user: User, issued_at: datetime) -> bool:
    """Whether something ``user`` was handed at ``issued_at`` (an aware datetime, microseconds kept)
    still stands: a JWT, a session, an upload credential link.

    False when the user may not sign in (inactive, or a demo user with DEBUG off) or when
    ``issued_at`` is before the user's cut-off ``tokens_valid_after``, which a password change, a
    deactivation and ``accounts.services.user_tokens_revoke`` move to "now". Equal times count as
    current: a login right after the cut-off works.
    """
    if not user_can_sign_in(user=user):
        return False
    cutoff = user.tokens_valid_after
    return cutoff is None or issued_at >= cutoff


def token_is_current_q(*, user: str, issued_at: str) -> Q:
    """``token_is_current`` in SQL, to filter rows that point at a user: ``user`` is the path to the
    user (``"user"``), ``issued_at`` the row's own time field (``"created_at"``)."""
    current = Q(**{f"{user}__is_active": True}) & (
        Q(**{f"{user}__tokens_valid_after__isnull": True})
        | Q(**{f"{user}__tokens_valid_after__lte": F(issued_at)})
    )
    return current if settings.DEBUG else current & Q(**{f"{user}__is_demo": False})


def user_by_pk(pk: int) -> User | None:
    """The user with primary key ``pk``, or None: ``User.objects.filter(pk=pk).first()``, cheaper.

    Every API request authenticates through this, and the ORM would spend most of the lookup's CPU
    building the same SQL again (``core.compiled``).
    """
    return get_by_pk(User, pk)
