from datetime import UTC

from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from accounts.models import User
from accounts.throttling import ScopedRateThrottle, SimpleRateThrottle
from core.apis import AuditedRefusalMixin, NoStoreMixin, throttle_window_seconds
from core.requests import RequestContext, client_ip, request_context
from core.schema import (
    JSON_BODY,
    JWT_401,
    STS,
    describe_codes,
    error_responses,
    error_schema,
    stock_error_responses,
)
from core.serializers import StrictCharField, representation

from .models import TokenIssuance
from .purposes import DEFAULT_PURPOSE
from .services.audit import issuance_record, unknown_caller_refusal_record
from .services.credential_urls import CredentialUrlRefused, credential_url_create, credential_url_user
from .services.post_policy import post_policy_issue
from .services.sts_token import UploadCredentials, sts_token_issue


class IssuanceApi(NoStoreMixin, AuditedRefusalMixin, APIView):
    """An endpoint that hands out upload credentials (or a form signed with them): rate limited per
    user, every answer ``no-store``, and every request it refuses before the service runs (invalid
    body, rate limit) audited as a ``refused`` row of its ``grant`` (rate-limit refusals of one user
    share a row per window). The service audits everything after that."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sts_token"
    grant = TokenIssuance.Grant.STS_TOKEN

    def refusal_audit(self, request: Request, *, reason: str, window_seconds: int | None) -> None:
        issuance_record(
            user=request.user,
            context=request_context(request),
            outcome=TokenIssuance.Outcome.REFUSED,
            grant=self.grant,
            error_code=reason,
            window_seconds=window_seconds,
        )


class StsTokenApi(IssuanceApi):
    """Short-lived STS credentials that can write only under ``user/<your id>/``."""

    class InputSerializer(serializers.Serializer):
        """No fields: the server decides the prefix, the policy and the lifetime."""

    @extend_schema_serializer(
        component_name="StsCredentials",
        examples=[
            OpenApiExample(
                "Credentials for user 7",
                value={
                    "accessKeyId": "STS.NUgYrLnoC37mZZCNnAbez2BHm",
                    "accessKeySecret": "3dZn…(secret)",
                    "securityToken": "CAIS…(long)",
                    "expiration": "2026-11-29T18:00:00Z",
                    "bucket": "demo-avatars",
                    "region": "cn-hangzhou",
                    "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
                    "prefix": "user/7/",
                },
                response_only=True,
            )
        ],
    )
    class OutputSerializer(serializers.Serializer):
        accessKeyId = serializers.CharField(source="access_key_id")
        accessKeySecret = serializers.CharField(source="access_key_secret")
        securityToken = serializers.CharField(source="security_token")
        expiration = serializers.DateTimeField(help_text="UTC, ISO 8601.")
        bucket = serializers.CharField()
        region = serializers.CharField()
        endpoint = serializers.CharField(help_text="The URL clients upload to.")
        prefix = serializers.CharField(help_text="Always `user/<id>/`: the only writable folder.")

    @extend_schema(
        operation_id="uploads_sts_token_create",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                JSON_BODY,
                JWT_401,
                "permission_denied",
                "quota_exceeded",
                "method_not_allowed",
                "throttled",
                STS,
            ),
        },
    )
    def post(self, request: Request) -> Response:
        self.InputSerializer(data=request.data).is_valid(raise_exception=True)
        credentials = sts_token_issue(user=request.user, context=request_context(request))
        return Response(_sts_token_output(credentials))


_sts_token_output = representation(StsTokenApi.OutputSerializer)  # OutputSerializer(x).data, cheaper


_FORM_FIELD_NAMES = (
    "key",
    "policy",
    "x-oss-signature-version",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-signature",
    "x-oss-security-token",
    "success_action_status",
    "Content-Type",
    "x-oss-content-type",
    "Content-Disposition",
    "x-oss-forbid-overwrite",
)


@extend_schema_field(
    {
        "type": "object",
        "description": (
            "The form fields to send, in this order, before the file. Append the file last as field "
            "`file` (multipart/form-data). Send them unchanged: each one is pinned by the signed policy."
        ),
        "properties": {name: {"type": "string"} for name in _FORM_FIELD_NAMES},
        "required": list(_FORM_FIELD_NAMES),
        "additionalProperties": False,
    }
)
class _FormFields(serializers.DictField):
    child = serializers.CharField()


class PostPolicyApi(IssuanceApi):
    """A server-signed PostObject form: OSS itself enforces the size, type and key of one upload."""

    throttle_scope = "post_policy"
    grant = TokenIssuance.Grant.POST_POLICY

    @extend_schema_serializer(component_name="PostPolicyRequest")
    class InputSerializer(serializers.Serializer):
        contentType = StrictCharField(max_length=100, help_text="The file's type, e.g. image/png.")
        size = serializers.IntegerField(min_value=1, help_text="The file's size in bytes.")
        filename = StrictCharField(
            required=False,
            allow_blank=True,
            max_length=255,
            help_text="The file's name; only a safe extension of it is kept in the key.",
        )
        purpose = StrictCharField(
            required=False,
            default=DEFAULT_PURPOSE,
            max_length=32,
            help_text=(
                "What the file is for (UPLOAD_PURPOSES: e.g. avatar, attachment); decides the folder, types, "
                f"size limit and the status OSS answers with. Default {DEFAULT_PURPOSE!r}."
            ),
        )

    @extend_schema_serializer(
        component_name="PostPolicy",
        examples=[
            OpenApiExample(
                "A form for a PNG avatar",
                value={
                    "url": "https://demo-avatars.oss-cn-hangzhou.aliyuncs.com/",
                    "fields": {
                        "key": "user/7/avatars/0f8e6c2b9d9f4c57a1a2b3c4d5e6f708.png",
                        "policy": "eyJleHBpcmF0aW9uIjoi…",
                        "x-oss-signature-version": "OSS4-HMAC-SHA256",
                        "x-oss-credential": "STS.NUgY…/20261129/cn-hangzhou/oss/aliyun_v4_request",
                        "x-oss-date": "20261129T170000Z",
                        "x-oss-signature": "6a1f…(64 hex digits)",
                        "x-oss-security-token": "CAIS…",
                        "success_action_status": "204",
                        "Content-Type": "image/png",
                        "x-oss-content-type": "image/png",
                        "Content-Disposition": "attachment",
                        "x-oss-forbid-overwrite": "true",
                    },
                    "key": "user/7/avatars/0f8e6c2b9d9f4c57a1a2b3c4d5e6f708.png",
                    "maxBytes": 5242880,
                    "expiration": "2026-11-29T17:10:00Z",
                },
                response_only=True,
            )
        ],
    )
    class OutputSerializer(serializers.Serializer):
        url = serializers.CharField(help_text="POST the form here (multipart/form-data).")
        fields = _FormFields()
        key = serializers.CharField(help_text="Where the file will be stored; confirm it with this key.")
        maxBytes = serializers.IntegerField(
            source="max_bytes",
            help_text="The largest file OSS accepts with this form, in bytes: the declared size.",
        )
        expiration = serializers.DateTimeField(help_text="UTC, ISO 8601; at most 10 minutes ahead.")

    @extend_schema(
        operation_id="uploads_post_policy_create",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                JSON_BODY,
                "unknown_purpose",
                "unsupported_content_type",
                "object_too_large",
                JWT_401,
                "permission_denied",
                "quota_exceeded",
                "method_not_allowed",
                "throttled",
                STS,
            ),
        },
        description=(
            "Errors: 400 `unknown_purpose`, `unsupported_content_type` (type not accepted for the purpose), "
            "`object_too_large` (declared size above the purpose's limit), `invalid`; 403 `quota_exceeded` "
            "(the declared size or one more object would not fit; `maxBytes` is also capped to what is left); "
            "then as sts-token. "
            "OSS answers the form itself: on success the purpose's `success_action_status` (`fields`: 204 "
            "for avatars, 200 for attachments; 200 and 204 with an empty body, 201 with XML); 400 `EntityTooLarge`/`EntityTooSmall` (size outside "
            '1..maxBytes); 403 `AccessDenied` "Invalid according to Policy" (another key, type or field, or '
            "the form expired); 409 `FileAlreadyExists` (the form was used already)."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        form = post_policy_issue(
            user=request.user,
            context=request_context(request),
            content_type=data["contentType"],
            size=data["size"],
            filename=data.get("filename", ""),
            purpose=data["purpose"],
        )
        return Response(self.OutputSerializer(form).data)


# --- The stock mobile format: what Alibaba's OSSAuthCredentialProvider (iOS, Android) reads ----------


@extend_schema_serializer(
    component_name="StsServerCredentials",
    examples=[
        OpenApiExample(
            "Credentials in the stock format",
            value={
                "StatusCode": "200",
                "AccessKeyId": "STS.NUgYrLnoC37mZZCNnAbez2BHm",
                "AccessKeySecret": "3dZn…(secret)",
                "SecurityToken": "CAIS…(long)",
                "Expiration": "2026-11-29T18:00:00Z",
            },
            response_only=True,
        )
    ],
)
class StsServerCredentialsSerializer(serializers.Serializer):
    """Exactly the keys the stock providers read; nothing else (no bucket, region or prefix)."""

    StatusCode = serializers.ChoiceField(choices=["200"], help_text='Always the string "200" here.')
    AccessKeyId = serializers.CharField()
    AccessKeySecret = serializers.CharField()
    SecurityToken = serializers.CharField()
    Expiration = serializers.CharField(help_text="UTC, ISO 8601 without fractions: 2026-11-28T14:00:00Z.")


@extend_schema_serializer(component_name="StsServerError")
class StsServerErrorSerializer(serializers.Serializer):
    StatusCode = serializers.CharField(help_text='The HTTP status the error stands for, as a string ("401").')
    ErrorCode = serializers.CharField(help_text="A stable machine-readable code (ours, e.g. throttled).")
    ErrorMessage = serializers.CharField(help_text="A sentence for people.")


def _stock_credentials(credentials: UploadCredentials) -> dict:
    expiration = credentials.expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return StsServerCredentialsSerializer(
        {
            "StatusCode": "200",
            "AccessKeyId": credentials.access_key_id,
            "AccessKeySecret": credentials.access_key_secret,
            "SecurityToken": credentials.security_token,
            "Expiration": expiration,
        }
    ).data


class _StockFormatApi(IssuanceApi):
    """GET → the stock format, with the same service (policy, reuse, rate limit, audit) as sts-token.

    Errors keep our stable codes, in the stock shape ``{StatusCode, ErrorCode, ErrorMessage}``.
    ``errors_as_http_200``: the stock Android provider reads the body only of a 2xx answer
    (HttpURLConnection.getInputStream throws on 4xx/5xx, with the URL in its message), so the
    credential URL states every error in the body of an HTTP 200.
    """

    errors_as_http_200 = False

    def get(self, request: Request, **kwargs: str) -> Response:
        credentials = sts_token_issue(user=request.user, context=request_context(request))
        return Response(_stock_credentials(credentials))

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        # A method we do not answer is refused before authentication, with a real 405.
        if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        data = response.data if isinstance(response.data, dict) else {}
        response.data = StsServerErrorSerializer(
            {
                "StatusCode": str(response.status_code),
                "ErrorCode": data.get("code", "error"),
                "ErrorMessage": data.get("detail", gettext("The request failed.")),
            }
        ).data
        if self.errors_as_http_200 and self.request.method in ("GET", "HEAD"):  # what stock providers send
            response.status_code = 200
            if "WWW-Authenticate" in response:
                del response["WWW-Authenticate"]
        return response


class StsServerApi(_StockFormatApi):
    """Upload credentials in the stock "STS app server" format, for a provider that sends a bearer token.

    The keys Alibaba's iOS and Android `OSSAuthCredentialProvider` read, for a custom provider of
    your own. Same policy, reuse, rate limit and audit as `POST /api/uploads/sts-token/`. Errors
    answer with their real HTTP status and the body `{StatusCode, ErrorCode, ErrorMessage}`.
    """

    authentication_classes = [JWTAuthentication]

    @extend_schema(
        operation_id="uploads_sts_server_retrieve",
        responses={
            200: StsServerCredentialsSerializer,
            **stock_error_responses(JWT_401, "quota_exceeded", "method_not_allowed", "throttled", STS),
        },
    )
    def get(self, request: Request, **kwargs: str) -> Response:
        return super().get(request, **kwargs)


class CredentialUrlFailureThrottle(SimpleRateThrottle):
    """Credential URLs that do not work, per client address (``THROTTLE_CREDENTIAL_URL_FAILURES``)."""

    scope = "credential_url_failure"

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CredentialUrlAuthentication(BaseAuthentication):
    """The secret in the path of a credential URL stands for its user (no header needed)."""

    audit_auth_method = "credential_url"

    def authenticate(self, request: Request) -> tuple[User, None]:
        """The URL's user; a URL that does not work (unknown, expired, ended) is audited and counts
        against its client address's own budget (``credential_url_failure``): past it, 429
        ``throttled`` (audited too, one row per address per window), so guessing is slow and seen."""
        secret = request.parser_context["kwargs"].get("secret", "")
        try:
            return credential_url_user(secret=secret), None
        except CredentialUrlRefused as exc:
            throttle = CredentialUrlFailureThrottle()
            allowed = throttle.allow_request(request, None)
            code = exc.code if allowed else "throttled"
            context = RequestContext(
                auth_method=self.audit_auth_method,
                client_ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", ""),
                request_id=getattr(request, "request_id", ""),
            )
            window = throttle_window_seconds(CredentialUrlFailureThrottle.scope)
            if exc.owner is not None:
                issuance_record(
                    user=exc.owner,
                    context=context,
                    outcome=TokenIssuance.Outcome.REFUSED,
                    grant=TokenIssuance.Grant.STS_TOKEN,
                    error_code=code,
                    window_seconds=window,
                )
            else:
                unknown_caller_refusal_record(
                    context=context,
                    grant=TokenIssuance.Grant.STS_TOKEN,
                    error_code=code,
                    window_seconds=window,
                )
            if not allowed:
                raise exceptions.Throttled(wait=throttle.wait()) from None
            raise exceptions.AuthenticationFailed(exc.detail, code=exc.code) from None

    def authenticate_header(self, request: Request) -> str:
        return "CredentialURL"


_CREDENTIAL_URL_ERRORS = [
    "credential_url_invalid",
    "credential_url_expired",
    "credential_url_revoked",
    "quota_exceeded",
    "method_not_allowed",
    "throttled",
    *STS,
]
_CREDENTIAL_URL_ERROR_SCHEMA = error_schema(
    _CREDENTIAL_URL_ERRORS, code_field="ErrorCode", detail_field="ErrorMessage"
)
_CREDENTIAL_URL_ERROR_SCHEMA["properties"] = {
    "StatusCode": {
        "type": "string",
        "enum": ["401", "403", "405", "429", "502", "503"],
        "description": "The HTTP status the error stands for; the answer itself is HTTP 200.",
    },
    **_CREDENTIAL_URL_ERROR_SCHEMA["properties"],
}
_CREDENTIAL_URL_ERROR_SCHEMA["required"] = ["StatusCode", "ErrorCode", "ErrorMessage"]
_STS_SERVER_ANSWER = {
    "oneOf": [{"$ref": "#/components/schemas/StsServerCredentials"}, _CREDENTIAL_URL_ERROR_SCHEMA],
}


class CredentialUrlStsServerApi(_StockFormatApi):
    """A credential URL: a plain GET, no headers, answers with its user's upload credentials.

    Give the URL to the stock `OSSAuthCredentialProvider` (iOS, Android) as its STS server URL. Always
    HTTP 200: `StatusCode` is `"200"` with the credentials, or the error's status (`"401"` with
    `credential_url_expired`, `credential_url_revoked` or `credential_url_invalid`; `"429"`
    `throttled`; `"502"`/`"503"` for STS) with `ErrorCode` and `ErrorMessage`.
    """

    authentication_classes = [CredentialUrlAuthentication]
    # A budget of its own (per user, THROTTLE_CREDENTIAL_URL): whoever holds one of a user's URLs cannot
    # use up that user's sts-token budget.
    throttle_scope = "credential_url"
    errors_as_http_200 = True

    @extend_schema(
        operation_id="uploads_sts_server_credential_url_retrieve",
        auth=[],
        parameters=[
            OpenApiParameter(
                "secret",
                str,
                OpenApiParameter.PATH,
                description="The secret part of the URL (`osscu_` and 43 URL-safe characters): keep it secret.",
            )
        ],
        responses={
            200: OpenApiResponse(
                response=_STS_SERVER_ANSWER,
                description='Credentials (`StatusCode` "200") or an error in the body. '
                + describe_codes(_CREDENTIAL_URL_ERRORS),
                examples=[
                    OpenApiExample(
                        "Ended by a logout",
                        value={
                            "StatusCode": "401",
                            "ErrorCode": "credential_url_revoked",
                            "ErrorMessage": "This credential URL was ended by a sign-out or a password change.",
                        },
                        response_only=True,
                    )
                ],
            ),
            **error_responses("not_found"),
        },
    )
    def get(self, request: Request, **kwargs: str) -> Response:
        return super().get(request, **kwargs)


class CredentialUrlCreateApi(NoStoreMixin, APIView):
    """A new credential URL for your own account, for providers that cannot send a header.

    The URL is a secret: keep it like a password, never log it. It works until `expiresAt`
    (`CREDENTIAL_URL_LIFETIME_MINUTES`, 24 hours by default) and ends earlier when you log out
    (anywhere), change your password or are deactivated. The server keeps only a hash of it.
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sts_token"

    @extend_schema_serializer(
        component_name="CredentialUrl",
        examples=[
            OpenApiExample(
                "A credential URL",
                value={
                    "url": "https://uploads.example.com/api/uploads/sts-server/osscu_q1W…(43 characters)/",
                    "expiresAt": "2026-11-30T17:00:00Z",
                },
                response_only=True,
            )
        ],
    )
    class OutputSerializer(serializers.Serializer):
        url = serializers.URLField(help_text="GET it with no headers for credentials in the stock format.")
        expiresAt = serializers.DateTimeField(source="expires_at", help_text="UTC, ISO 8601.")

    @extend_schema(
        operation_id="uploads_sts_server_url_create",
        request=None,
        responses={
            201: OutputSerializer,
            **error_responses(JWT_401, "permission_denied", "method_not_allowed", "throttled"),
        },
    )
    def post(self, request: Request) -> Response:
        created = credential_url_create(user=request.user, context=request_context(request))
        url = request.build_absolute_uri(reverse("sts_server_credential_url", args=[created.secret]))
        return Response(
            self.OutputSerializer({"url": url, "expires_at": created.expires_at}).data, status=201
        )
