"""Writes for the accounts app."""

from datetime import datetime

from django.utils import timezone

from .models import User


def user_tokens_revoke(*, user: User) -> datetime:
    """Sign ``user`` out everywhere: every JWT (access and refresh), session and upload credential
    link issued before now stops working (see ``accounts.selectors.token_is_current``).

    Returns the new cut-off (aware, UTC). The user can sign in again at once; what they get then
    is issued after the cut-off. Idempotent apart from moving the cut-off forward.
    """
    cutoff = timezone.now()
    user.tokens_valid_after = cutoff
    user.save(update_fields=["tokens_valid_after"])
    return cutoff
