"""simplejwt's tokens, with three changes that make revocation and staff access safe.

- ``iat`` keeps microseconds (a JSON number with a fraction, which RFC 7519 §2 allows for a
  NumericDate), so a token issued just before a password change is told apart from one issued
  just after it, in the same second (``accounts.selectors.token_is_current``).
- The outstanding-token table keeps a SHA-256 digest of each refresh token, never the token
  (simplejwt stores it in clear, and its admin showed it to staff).
- Every claim is checked for its type before use: a token with a malformed claim is a 401, never
  an exception.
"""

import hashlib
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from .models import User
from .selectors import token_is_current, user_by_pk, user_can_sign_in

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_USER_ID = 2**63 - 1


def token_digest(token: str) -> str:
    """What the database keeps instead of a refresh token: ``sha256:<hex>``, useless as a bearer."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class _Hardened:
    """Microsecond ``iat``; claims of the wrong type or range are a TokenError (a 401), not a 500."""

    payload: dict[str, Any]
    current_time: datetime

    def __init__(self, token: Any = None, verify: bool = True) -> None:
        try:
            super().__init__(token, verify)  # type: ignore[call-arg]
        except (TypeError, ValueError, OverflowError, OSError) as exc:  # e.g. "exp": "123" or 1e300
            raise TokenError(_("Token is invalid")) from exc

    def verify(self) -> None:
        jti = self.payload.get(api_settings.JTI_CLAIM)
        if not isinstance(jti, str) or not 0 < len(jti) <= 255 or not jti.isprintable():
            raise TokenError(_("Token has no id"))
        super().verify()  # type: ignore[misc]

    def set_iat(self, claim: str = "iat", at_time: datetime | None = None) -> None:
        at_time = at_time or self.current_time
        # From whole microseconds, so the float is the nearest to the 6-decimal value (not
        # timestamp()'s rounding), and its repr in the JSON is that value (token_issued_at).
        self.payload[claim] = ((at_time - _EPOCH) // timedelta(microseconds=1)) / 1_000_000


class AccessToken(_Hardened, jwt_tokens.AccessToken):
    pass


class RefreshToken(_Hardened, jwt_tokens.RefreshToken):
    access_token_class = AccessToken

    def outstand(self, user: User | None = None) -> OutstandingToken:
        """This token's row in the outstanding list (created if missing), holding its digest only."""
        row, _created = OutstandingToken.objects.get_or_create(
            jti=self.payload[api_settings.JTI_CLAIM],
            defaults={
                "user": user if user is not None else _user_or_none(self.payload),
                "created_at": self.current_time,
                "token": token_digest(str(self)),
                "expires_at": datetime_from_epoch(self.payload["exp"]),
            },
        )
        return row

    def blacklist(self) -> tuple[BlacklistedToken, bool]:
        """Blacklists this token; ``created`` is False when it already was (by someone else, too:
        the unique constraint on the blacklist decides between concurrent callers)."""
        return BlacklistedToken.objects.get_or_create(token=self.outstand())

    @classmethod
    def for_user(cls, user: User) -> "RefreshToken":
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(user.pk)
        token.outstand(user=user)
        return token


def _user_id(payload: dict[str, Any]) -> int | None:
    value = payload.get(api_settings.USER_ID_CLAIM)
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 < value <= _MAX_USER_ID:
        return value
    return None


def _user_or_none(payload: dict[str, Any]) -> User | None:
    user_id = _user_id(payload)
    return User.objects.filter(pk=user_id).first() if user_id is not None else None


def token_issued_at(token: jwt_tokens.Token) -> datetime:
    """The token's ``iat`` as an aware datetime, to the microsecond; InvalidToken if it is not a
    number of seconds since 1970 (older tokens carry whole seconds, which compare as earlier)."""
    value = token.get("iat")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken("Token has no valid 'iat' claim")
    if not 0 <= value < 253_402_300_800:  # year 10000
        raise InvalidToken("Token has no valid 'iat' claim")
    # repr() is the shortest decimal that reads back as this float: the 6-decimal value set_iat
    # wrote, as long as floats are finer than a microsecond there (until the year 2112).
    return _EPOCH + timedelta(microseconds=int(Decimal(repr(value)).scaleb(6).to_integral_value()))


def token_user(token: jwt_tokens.Token) -> User:
    """The user a validated token speaks for, if that token still stands.

    Raises (all 401 through the API's error handler): InvalidToken for a missing or malformed user
    id or ``iat``; AuthenticationFailed ``user_not_found`` for a deleted user, ``user_inactive`` for a
    user who may not sign in (inactive, or a demo user with DEBUG off), ``token_revoked`` for a token
    issued before the user's cut-off (a logout anywhere, password change, deactivation, "Sign out
    everywhere": ``accounts.services.user_logged_out_revoke`` says why a logout is per user).

    Cost per request: the user's row by primary key (one indexed SELECT, no cache, so a cut-off
    moved by any app server holds on the next request everywhere) and a comparison in Python.
    """
    user_id = _user_id(token.payload)
    if user_id is None:
        raise InvalidToken("Token contained no recognizable user identification")
    issued_at = token_issued_at(token)
    user = user_by_pk(user_id)
    if user is None:
        raise AuthenticationFailed(_("User not found"), code="user_not_found")
    if not user_can_sign_in(user=user):
        raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
    if not token_is_current(user=user, issued_at=issued_at):
        raise AuthenticationFailed(
            _("Token was revoked (logout, password change or sign-out everywhere); sign in again."),
            code="token_revoked",
        )
    return user


def refresh_token_rotate(raw_refresh: str) -> dict[str, str]:
    """``{access, refresh}`` for a refresh token, which is blacklisted in the same transaction.

    Of concurrent calls with one token exactly one succeeds: the blacklist row is the commit
    point (a unique constraint; on SQLite the transaction takes the write lock as it begins, see
    ``transaction_mode`` in config/settings/base.py), and the others find it there and get TokenError.
    """
    refresh = RefreshToken(raw_refresh)  # TokenError: bad signature, expired, wrong type, blacklisted
    user = token_user(refresh)
    with transaction.atomic():
        _row, created = refresh.blacklist()
        if not created:
            raise TokenError(_("Token is blacklisted"))
        access = refresh.access_token
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand(user=user)
    return {"access": str(access), "refresh": str(refresh)}
