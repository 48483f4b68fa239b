"""The ledger's endpoints: the OSS event receiver (for SMQ, signed by Alibaba) and a user's own files."""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttling import ScopedRateThrottle
from core.apis import NoStoreMixin
from core.requests import request_context
from core.schema import JWT_401, error_responses

from .notifications import PushRefused
from .selectors import stored_objects_of
from .services.objects import object_not_found, stored_object_delete
from .services.receiver import oss_push_receive

logger = logging.getLogger(__name__)


@method_decorator(csrf_exempt, name="dispatch")
class OssEventsView(View):
    """``POST /api/uploads/oss-events/``: an SMQ (MNS) HTTP push of OSS events. No user signs in:
    Alibaba's signature is the authentication (``ledger.services.receiver``). 204 when handled (also
    a redelivery); 403 a push this server does not believe; 413 too large; 415 not the XML format;
    503 when the certificate or the database is unavailable, so MNS retries later."""

    def http_method_not_allowed(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = JsonResponse(
            {"detail": "Only POST (an SMQ push) is accepted here.", "code": "method_not_allowed"}, status=405
        )
        response["Allow"] = "POST"
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.http_method_not_allowed(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        limit = settings.OSS_EVENTS_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > limit:
            return _refusal(PushRefused(413, "request_too_large", f"A push is at most {limit} bytes."))
        body = request.read(limit + 1)
        if len(body) > limit:
            return _refusal(PushRefused(413, "request_too_large", f"A push is at most {limit} bytes."))
        headers = {name: value for name, value in request.headers.items()}
        try:
            oss_push_receive(path=request.get_full_path(), headers=headers, body=body)
        except PushRefused as refused:
            return _refusal(refused)
        return HttpResponse(status=204)


def _refusal(refused: PushRefused) -> JsonResponse:
    logger.warning("OSS push refused: %s (%d)", refused.code, refused.status)
    response = JsonResponse({"detail": refused.detail, "code": refused.code}, status=refused.status)
    if refused.status == 503:
        response["Retry-After"] = "5"
    return response


class _ObjectsPagination(CursorPagination):
    page_size = 50
    ordering = ("-uploaded_at", "-id")
    cursor_query_param = "cursor"


class StoredObjectSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The object's key in the bucket (the server's; pass it to DELETE).")
    size = serializers.IntegerField(help_text="Bytes.")
    contentType = serializers.CharField(
        source="content_type", help_text="The type declared for it, when the server knows it; else empty."
    )
    uploadedAt = serializers.DateTimeField(
        source="uploaded_at", help_text="When this version was written (UTC)."
    )


class StoredObjectPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next (older) page; null on the last.")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous (newer) page; null on the first."
    )
    results = StoredObjectSerializer(many=True)


class DeletedSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The key deleted.")
    deleted = serializers.BooleanField(help_text="Always true.")


class StoredObjectsApi(NoStoreMixin, APIView):
    """Your files, as the server's ledger knows them from OSS's event notifications."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "objects"

    @extend_schema(
        operation_id="uploads_objects_list",
        parameters=[
            OpenApiParameter(
                "cursor", str, required=False, description="The `next` or `previous` link's cursor."
            ),
        ],
        responses={
            200: StoredObjectPageSerializer,
            **error_responses(JWT_401, "not_found", "throttled"),
        },
        description="Your files under `user/<your id>/` and your avatars, newest first, 50 a page "
        "(cursor-paginated: follow `next`). A file appears a few seconds after OSS stored it.",
    )
    def get(self, request: Request) -> Response:
        paginator = _ObjectsPagination()
        page = paginator.paginate_queryset(stored_objects_of(user=request.user), request, view=self)
        return paginator.get_paginated_response(StoredObjectSerializer(page, many=True).data)

    @extend_schema(
        operation_id="uploads_objects_delete",
        parameters=[
            OpenApiParameter("key", str, required=True, description="The key, as the list shows it."),
        ],
        request=None,
        responses={
            200: DeletedSerializer,
            **error_responses(
                JWT_401,
                "not_found",
                "object_in_use",
                "throttled",
                "oss_rejected",
                "oss_unavailable",
                "audit_unavailable",
            ),
        },
        description="Delete one of your files with the server's key (your upload credentials cannot "
        "delete). A key that is not yours, or none, answers 404 like a missing one. Every delete is audited.",
    )
    def delete(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not key or len(key) > 1024:
            raise object_not_found()
        stored_object_delete(user=request.user, key=key, context=request_context(request))
        return Response({"key": key, "deleted": True})
