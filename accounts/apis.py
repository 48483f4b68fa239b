"""Sign-in for API clients: JWT login, refresh and logout, rate limited per client address."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import UntypedToken

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
    """``{refresh}``: blacklists the refresh token so it can mint no more access tokens.

    Like a session logout it sends Django's ``user_logged_out``, so whatever else the user's
    sign-in stands for (their credential URLs) ends too.
    """

    serializer_class = serializers.TokenBlacklistSerializer

    @extend_schema(responses={200: None, **error_responses(400, 401, 405, 429)})
    def post(self, request: Request, *args, **kwargs) -> Response:
        response = super().post(request, *args, **kwargs)
        # Only reached when the token was valid and is now blacklisted (errors raise above).
        user_id = UntypedToken(request.data["refresh"]).get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is not None:
            user_logged_out.send(sender=type(user), request=request._request, user=user)
        return response
