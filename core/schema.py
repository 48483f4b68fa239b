"""OpenAPI pieces shared by every view: the one error shape and what each status means here."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for people.")
    code = serializers.CharField(help_text="A stable machine-readable code.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(help_text="Per-field messages.", required=False)


_DESCRIPTIONS = {
    400: "Malformed JSON (`parse_error`) or invalid input (`invalid`, with `errors`).",
    401: "No or bad credentials (`not_authenticated`, `authentication_failed`, `token_not_valid`, `no_active_account`).",
    403: "Authenticated but not allowed (`permission_denied`, e.g. a missing CSRF token with session auth; `outside_prefix`, a key outside user/<your id>/; `quota_exceeded`, your storage quota is used up).",
    404: "Not found (`not_found`).",
    405: "Wrong HTTP method (`method_not_allowed`).",
    409: "The uploaded object changed while the server checked it (`object_changed`); upload again.",
    413: "The request body is too large (`request_too_large`).",
    415: "The body is not JSON (`unsupported_media_type`).",
    429: "Rate limited (`throttled`); see the Retry-After header.",
    502: "Alibaba Cloud refused the server's own configuration (`sts_rejected`, `oss_rejected`).",
    503: "Alibaba Cloud STS throttled or unreachable (`sts_throttled`, `sts_unavailable`), OSS unreachable (`oss_unavailable`) or the audit log unavailable (`audit_unavailable`); see Retry-After.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """``responses={200: ..., **error_responses(401, 405)}`` in ``extend_schema``."""
    return {
        status: OpenApiResponse(
            response=ValidationErrorSerializer if status == 400 else ErrorSerializer,
            description=_DESCRIPTIONS[status],
        )
        for status in statuses
    }
