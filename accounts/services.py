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


def user_logged_out_revoke(sender: object, user: User | None = None, **kwargs: object) -> None:
    """Receiver of Django's ``user_logged_out``: a logout is a sign-out everywhere (per user).

    Why per user and not per session: a logout already ends every credential URL of the user (the
    longest-lived grant, ``uploads``), so the sign-in it ends is the user's, not one device's; the
    cut-off is the one mechanism every JWT, session and credential URL is already checked against,
    in the database, so it holds at once on every app server; and it costs nothing per request,
    since the JWT check already reads the user's row (one primary-key SELECT) to compare ``iat``
    with ``tokens_valid_after``. A per-session cut-off would need a session id in every token and a
    second look-up (a table or the shared cache, which fails open when Redis is down) per request.
    The price: logging out on one device signs the user's other devices out too; they sign in again.
    """
    if user is not None and user.pk is not None:  # None: the session had no signed-in user
        user_tokens_revoke(user=user)
