"""The signed-in user and their avatar: ``/api/me/`` and the two avatar endpoints."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.throttling import ScopedRateThrottle
from core.apis import AuditedRefusalMixin, NoStoreMixin
from core.requests import request_context
from core.schema import JSON_BODY, JWT_401, error_responses
from core.serializers import StrictCharField
from ledger.selectors import upload_usage_summary

from .formats import AVATAR_CONTENT_TYPES
from .models import AvatarChange
from .selectors import user_avatar_url
from .services import (
    MAX_KEY_BYTES,
    avatar_change_record_refusal,
    avatar_confirm,
    avatar_upload_key_grant,
)


def _me(user: User) -> dict:
    usage = upload_usage_summary(user=user)
    return {
        "id": user.pk,
        "username": user.get_username(),
        "avatarUrl": user_avatar_url(user),
        "storage": {
            "usedBytes": usage.used_bytes,
            "usedObjects": usage.used_objects,
            "quotaBytes": usage.quota_bytes,
            "quotaObjects": usage.quota_objects,
            "countedAt": usage.counted_at,
        },
    }


class _StorageSerializer(serializers.Serializer):
    usedBytes = serializers.IntegerField(
        help_text="What your folders hold as far as the server knows, in bytes: the files OSS "
        "reported (within seconds of an upload or delete), plus the declared size of each signed form "
        "not used yet (until it expires)."
    )
    usedObjects = serializers.IntegerField()
    quotaBytes = serializers.IntegerField(allow_null=True, help_text="Your quota in bytes; null: no limit.")
    quotaObjects = serializers.IntegerField(
        allow_null=True, help_text="Your quota in objects; null: no limit."
    )
    countedAt = serializers.DateTimeField(
        allow_null=True,
        help_text="When your folders were last listed in OSS to check the ledger; null: never.",
    )


class _AvatarApi(AuditedRefusalMixin, APIView):
    """Each call makes the server talk to OSS (or hands out a key): rate limited per user. A body that
    does not parse or validate is audited as an avatar change of kind ``refused_kind``."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "avatar"
    audited_refusals = (exceptions.ParseError, exceptions.UnsupportedMediaType, exceptions.ValidationError)
    refused_kind: str

    def refusal_audit(self, request: Request, *, reason: str, window_seconds: int | None) -> None:
        try:
            data = request.data  # after a parse error DRF leaves an empty body here
        except exceptions.APIException:  # a body of a type no parser takes is never parsed
            data = None
        raw_key = data.get("key") if isinstance(data, dict) else None
        avatar_change_record_refusal(
            user=request.user,
            kind=self.refused_kind,
            context=request_context(request),
            reason=reason,
            object_key=raw_key if isinstance(raw_key, str) else "",
        )


class MeApi(NoStoreMixin, APIView):
    """The signed-in user, with a short-lived URL of their avatar."""

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        avatarUrl = serializers.CharField(
            allow_null=True, help_text="A short-lived signed GET URL of the avatar, or null."
        )
        storage = _StorageSerializer(help_text="Your storage usage and quota.")

    @extend_schema(responses={200: OutputSerializer, **error_responses(JWT_401, "method_not_allowed")})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(_me(request.user)).data)  # no-store: a signed avatar URL


class AvatarUploadKeyApi(_AvatarApi):
    """Where to upload a new avatar: a fresh random key under ``user/<your id>/avatars/``."""

    refused_kind = AvatarChange.Kind.UPLOAD_KEY_REFUSED

    @extend_schema_serializer(component_name="AvatarUploadKey")
    class InputSerializer(serializers.Serializer):
        contentType = StrictCharField(
            max_length=100, help_text=f"The file's type: one of {', '.join(AVATAR_CONTENT_TYPES)}."
        )
        size = serializers.IntegerField(min_value=1, help_text="The file's size in bytes.")

    @extend_schema_serializer(component_name="AvatarUploadTarget")
    class OutputSerializer(serializers.Serializer):
        key = serializers.CharField(help_text="Upload here with the STS credentials, then confirm it.")
        maxBytes = serializers.IntegerField(help_text="The largest avatar the server accepts.")

    @extend_schema(
        operation_id="me_avatar_upload_key_create",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                JSON_BODY,
                "not_an_image",
                "object_too_large",
                JWT_401,
                "permission_denied",
                "method_not_allowed",
                "throttled",
                "audit_unavailable",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = avatar_upload_key_grant(
            user=request.user,
            content_type=serializer.validated_data["contentType"].strip().lower(),
            size=serializer.validated_data["size"],
            context=request_context(request),
        )
        return Response(self.OutputSerializer({"key": key, "maxBytes": settings.AVATAR_MAX_BYTES}).data)


class AvatarApi(NoStoreMixin, _AvatarApi):
    """Confirm an upload: the object becomes the avatar once OSS shows it is a small image of yours."""

    refused_kind = AvatarChange.Kind.CONFIRMATION_REFUSED

    @extend_schema_serializer(component_name="AvatarConfirm")
    class InputSerializer(serializers.Serializer):
        key = StrictCharField(
            max_length=MAX_KEY_BYTES, trim_whitespace=False, help_text="The key the upload went to."
        )

    @extend_schema(
        operation_id="me_avatar_set",
        request=InputSerializer,
        responses={
            200: MeApi.OutputSerializer,
            **error_responses(
                JSON_BODY,
                "object_not_found",
                "object_too_large",
                "not_an_image",
                JWT_401,
                "permission_denied",
                "outside_prefix",
                "method_not_allowed",
                "object_changed",
                "throttled",
                "oss_rejected",
                "oss_unavailable",
                "sts_unavailable",
                "audit_unavailable",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = avatar_confirm(
            user=request.user, key=serializer.validated_data["key"], context=request_context(request)
        )
        return Response(MeApi.OutputSerializer(_me(user)).data)
