"""simplejwt's serializers, on this project's token classes (``accounts.tokens``)."""

from typing import Any

from rest_framework_simplejwt import serializers as jwt_serializers

from .tokens import RefreshToken, refresh_token_rotate


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    token_class = RefreshToken


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        return refresh_token_rotate(attrs["refresh"])


class TokenBlacklistSerializer(jwt_serializers.TokenBlacklistSerializer):
    token_class = RefreshToken
