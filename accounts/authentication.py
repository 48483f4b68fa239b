"""JWT authentication for the API: simplejwt's, plus revocation (``accounts.tokens.token_user``)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt import authentication as jwt_authentication
from rest_framework_simplejwt.tokens import Token

from .models import User
from .tokens import token_user


class JWTAuthentication(jwt_authentication.JWTAuthentication):
    """Refuses (401) access tokens issued before the user's cut-off, of deleted, inactive or (with
    DEBUG off) demo users, and tokens whose claims have the wrong type."""

    def get_user(self, validated_token: Token) -> User:
        return token_user(validated_token)


class JWTAuthenticationScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of simplejwt's class, for this subclass (drf-spectacular)."""

    target_class = JWTAuthentication
