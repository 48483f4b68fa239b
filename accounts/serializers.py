"""simplejwt's serializers, on this project's token classes (``accounts.tokens``)."""

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers as jwt_serializers

from .lockout import LoginLocked, request_is_locked_out
from .tokens import RefreshToken, refresh_token_rotate


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    """simplejwt's, but a sign-in django-axes refused is 429 ``login_locked``, not a wrong password."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except AuthenticationFailed:
            if request_is_locked_out(self.context["request"]):
                raise LoginLocked() from None
            raise


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        return refresh_token_rotate(attrs["refresh"])


class TokenBlacklistSerializer(jwt_serializers.TokenBlacklistSerializer):
    token_class = RefreshToken
