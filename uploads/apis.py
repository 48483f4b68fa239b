from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.requests import auth_method, client_ip
from core.schema import error_responses

from .services import RequestContext, sts_token_issue, sts_token_refuse


def request_context(request: Request) -> RequestContext:
    return RequestContext(
        auth_method=auth_method(request),
        client_ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        request_id=getattr(request, "request_id", ""),
    )


class StsTokenApi(APIView):
    """Short-lived STS credentials that can write only under ``user/<your id>/``."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sts_token"

    class InputSerializer(serializers.Serializer):
        """No fields: the server decides the prefix, the policy and the lifetime."""

    class OutputSerializer(serializers.Serializer):
        accessKeyId = serializers.CharField(source="access_key_id")
        accessKeySecret = serializers.CharField(source="access_key_secret")
        securityToken = serializers.CharField(source="security_token")
        expiration = serializers.DateTimeField(help_text="UTC, ISO 8601.")
        bucket = serializers.CharField()
        region = serializers.CharField()
        endpoint = serializers.CharField(help_text="The URL clients upload to.")
        prefix = serializers.CharField(help_text='Always "user/<id>/": the only writable folder.')

    @extend_schema(
        operation_id="uploads_sts_token_create",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 405, 415, 429, 502, 503)},
    )
    def post(self, request: Request) -> Response:
        try:
            self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        except (exceptions.ParseError, exceptions.UnsupportedMediaType, exceptions.ValidationError) as exc:
            sts_token_refuse(user=request.user, context=request_context(request), reason=exc.default_code)
            raise
        credentials = sts_token_issue(user=request.user, context=request_context(request))
        response = Response(self.OutputSerializer(credentials).data)
        response["Cache-Control"] = "no-store"
        return response

    def throttled(self, request: Request, wait: float | None) -> None:
        sts_token_refuse(user=request.user, context=request_context(request), reason="throttled")
        super().throttled(request, wait)
