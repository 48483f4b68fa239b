"""Sign-in for API clients: JWT login, refresh and logout, each with its own rate budget per
client address (``login``, ``refresh``, ``logout``), so a crowd behind one NAT guessing passwords
cannot stop its neighbours from refreshing or logging out. Failed logins are also counted per
address and per username by django-axes (``accounts.lockout``)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers as drf_serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import UntypedToken

from core.schema import JSON_BODY, error_responses

from . import serializers
from .throttling import ScopedRateThrottle


@extend_schema_serializer(
    component_name="TokenPair",
    examples=[
        OpenApiExample(
            "A new pair",
            value={"access": "eyJhbGciOiJIUzI1NiIs…", "refresh": "eyJhbGciOiJIUzI1NiIs…"},
            response_only=True,
        )
    ],
)
class TokenPairSerializer(drf_serializers.Serializer):
    access = drf_serializers.CharField(
        help_text="JWT for the API: send it as `Authorization: Bearer <access>`. Lives JWT_ACCESS_MINUTES (15)."
    )
    refresh = drf_serializers.CharField(
        help_text="Trade it once for a new pair at `/api/auth/token/refresh/`. Lives JWT_REFRESH_DAYS (7)."
    )


_LOGGED_OUT = OpenApiResponse(
    response={"type": "object", "maxProperties": 0, "description": "An empty object."},
    description=(
        "Logged out: the refresh token is blacklisted, and everything the user was issued before now "
        "ends at once, on every device (access and refresh tokens, sessions, credential URLs)."
    ),
    examples=[OpenApiExample("Logged out", value={}, response_only=True)],
)


_REFRESH_TOKEN_401 = ("token_not_valid", "user_not_found", "user_inactive", "token_revoked")


class _PerAddressThrottled:
    """Rate limited per client address, in the budget named by ``throttle_scope``."""

    throttle_classes = [ScopedRateThrottle]


def _not_stored(response: Response) -> Response:
    """A token pair is a credential: no cache, shared or the browser's, may keep the answer."""
    response["Cache-Control"] = "no-store"
    return response


class TokenObtainApi(_PerAddressThrottled, jwt_views.TokenObtainPairView):
    """``{username, password}`` → ``{access, refresh}``. Rate limited per client (THROTTLE_LOGIN);
    repeated failures lock the address and the username out for a while (429 ``login_locked``)."""

    throttle_scope = "login"
    serializer_class = serializers.TokenObtainPairSerializer

    @extend_schema(
        responses={
            200: TokenPairSerializer,
            **error_responses(
                JSON_BODY, "no_active_account", "login_locked", "method_not_allowed", "throttled"
            ),
        }
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return _not_stored(super().post(request, *args, **kwargs))


class TokenRefreshApi(_PerAddressThrottled, jwt_views.TokenRefreshView):
    """``{refresh}`` → a new ``{access, refresh}``; the old refresh token is blacklisted.

    Of concurrent refreshes of one token exactly one succeeds; a token issued before the user's
    cut-off (logout, password change, deactivation, sign-out everywhere) is refused. Its own rate
    budget per client address (THROTTLE_REFRESH).
    """

    throttle_scope = "refresh"
    serializer_class = serializers.TokenRefreshSerializer

    @extend_schema(
        responses={
            200: TokenPairSerializer,
            **error_responses(JSON_BODY, _REFRESH_TOKEN_401, "method_not_allowed", "throttled"),
        }
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return _not_stored(super().post(request, *args, **kwargs))


class LogoutApi(_PerAddressThrottled, jwt_views.TokenBlacklistView):
    """``{refresh}``: blacklists the refresh token so it can mint no more access tokens.

    Like a session logout it sends Django's ``user_logged_out``, so whatever else the user's
    sign-in stands for ends too: the sign-in cut-off moves (every access token is refused from the
    next request on, ``accounts.services.user_logged_out_revoke``) and the credential URLs end. Its
    own rate budget per client address (THROTTLE_LOGOUT).
    """

    throttle_scope = "logout"
    serializer_class = serializers.TokenBlacklistSerializer

    @extend_schema(
        responses={
            200: _LOGGED_OUT,
            **error_responses(JSON_BODY, "token_not_valid", "method_not_allowed", "throttled"),
        }
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        response = super().post(request, *args, **kwargs)
        # Only reached when the token was valid and is now blacklisted (errors raise above).
        user_id = UntypedToken(request.data["refresh"]).get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is not None:
            # DRF's Request stands for the HttpRequest (it delegates every attribute the receivers read).
            user_logged_out.send(sender=type(user), request=request, user=user)
        return response
