"""JWT authentication for the API: simplejwt's, plus revocation (``accounts.tokens.token_user``)."""

import logging

from django.db import DatabaseError
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt.tokens import Token

from core.dependencies import database_unavailable

from .models import User
from .tokens import token_user

logger = logging.getLogger(__name__)


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """Refuses (401) access tokens issued before the user's cut-off, of deleted, inactive or (with
    DEBUG off) demo users, and tokens whose claims have the wrong type."""

    def get_user(self, validated_token: Token) -> User:
        """The token's user (``token_user``); 503 ``database_unavailable`` with Retry-After when the
        database cannot say (down, restarting, its connection terminated), never a 500."""
        try:
            return token_user(validated_token)
        except DatabaseError:
            logger.warning("Database unavailable while authenticating a token", exc_info=True)
            raise database_unavailable() from None


class JWTAuthenticationScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of simplejwt's class, for this subclass (drf-spectacular)."""

    target_class = JWTAuthentication
