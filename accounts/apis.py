"""Sign-in for API clients: JWT login, refresh and logout, rate limited per client address."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import views as jwt_views

from core.schema import error_responses

from . import serializers


class _LoginThrottled:
    """Password and refresh-token guessing is rate limited per client address."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"


class TokenObtainApi(_LoginThrottled, jwt_views.TokenObtainPairView):
    """``{username, password}`` → ``{access, refresh}``. Rate limited per client."""

    serializer_class = serializers.TokenObtainPairSerializer

    @extend_schema(
        responses={200: serializers.TokenObtainPairSerializer, **error_responses(400, 401, 405, 429)}
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class TokenRefreshApi(_LoginThrottled, jwt_views.TokenRefreshView):
    """``{refresh}`` → a new ``{access, refresh}``; the old refresh token is blacklisted.

    Of concurrent refreshes of one token exactly one succeeds; a token issued before the user's
    cut-off (password change, deactivation, sign-out everywhere) is refused.
    """

    serializer_class = serializers.TokenRefreshSerializer

    @extend_schema(
        responses={200: serializers.TokenRefreshSerializer, **error_responses(400, 401, 405, 429)}
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutApi(_LoginThrottled, jwt_views.TokenBlacklistView):
    """``{refresh}``: blacklists the refresh token so it can mint no more access tokens."""

    serializer_class = serializers.TokenBlacklistSerializer

    @extend_schema(responses={200: None, **error_responses(400, 401, 405, 429)})
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)
