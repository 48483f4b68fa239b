"""OpenAPI pieces shared by every view: the one error shape, and which codes each endpoint can answer.

A view lists the error codes it can return, ``responses={200: ..., **error_responses("parse_error",
"throttled", ...)}``; they are grouped by HTTP status, each status gets the codes as an ``enum`` on
``code`` (so a schema-driven test catches a code the schema does not list), a description that names
them, and an example. Text here is Markdown for Swagger UI: anything with ``<`` goes in backticks
(``user/<id>/``), or the browser eats it as an HTML tag.
"""

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for people.")
    code = serializers.CharField(help_text="A stable machine-readable code.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(help_text="Per-field messages.", required=False)


# code → (HTTP status, when it is answered). One list for the whole API.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "parse_error": (400, "the body is not well-formed JSON"),
    "invalid": (400, "the input is not valid; `errors` has a message per field"),
    "bad_request": (400, "a request Django refuses before the API sees it"),
    "unknown_purpose": (400, "no such upload purpose"),
    "unsupported_content_type": (400, "this file type is not accepted for the purpose"),
    "object_too_large": (400, "the (declared or stored) file is larger than allowed"),
    "not_an_image": (400, "the type or the file's first bytes are not PNG, JPEG, GIF or WebP"),
    "object_not_found": (400, "nothing was uploaded under that key"),
    "not_authenticated": (401, "no credentials were sent"),
    "bad_authorization_header": (401, "the Authorization header is not `Bearer <token>`"),
    "token_not_valid": (401, "the token is malformed, expired, of the wrong type or blacklisted"),
    "user_not_found": (401, "the token's user no longer exists"),
    "user_inactive": (401, "the token's user may not sign in (deactivated)"),
    "token_revoked": (
        401,
        "issued before the user's sign-in cut-off (logout, password change, sign out everywhere)",
    ),
    "no_active_account": (401, "wrong username or password"),
    "credential_url_invalid": (401, "no such credential URL: ask for a new one"),
    "credential_url_expired": (401, "the credential URL is past its lifetime: ask for a new one"),
    "credential_url_revoked": (401, "ended by a logout, a password change or a deactivation: sign in again"),
    "permission_denied": (403, "session authentication without the CSRF token"),
    "outside_prefix": (403, "the key is outside your folder `user/<your id>/`"),
    "quota_exceeded": (403, "your storage quota is used up (or the file would not fit in what is left)"),
    "not_found": (404, "no such path"),
    "method_not_allowed": (405, "another HTTP method"),
    "object_in_use": (409, "the file is your current avatar; choose another avatar first"),
    "object_changed": (409, "the uploaded object changed while the server checked it; upload again"),
    "request_too_large": (413, "the request body is too large"),
    "unsupported_media_type": (415, "the body is not `application/json`"),
    "throttled": (429, "too many requests; wait `Retry-After` seconds"),
    "login_locked": (
        429,
        "too many failed logins for this username or from this address; wait `Retry-After` seconds",
    ),
    "sts_rejected": (502, "STS refused the server's own configuration"),
    "oss_rejected": (502, "OSS refused the server's own key"),
    "sts_throttled": (503, "STS is throttling; see `Retry-After`"),
    "sts_unavailable": (503, "STS is down or timing out; see `Retry-After`"),
    "oss_unavailable": (503, "OSS is down or timing out; see `Retry-After`"),
    "audit_unavailable": (503, "the audit row could not be written, so nothing was handed out"),
    "sts_busy": (
        503,
        "too many requests wait for STS already, or the account's STS budget had no turn in time; see `Retry-After`",
    ),
    "database_unavailable": (503, "the database did not answer; see `Retry-After`"),
}

# Groups every endpoint with that kind of authentication can answer.
JWT_401 = (
    "not_authenticated",
    "bad_authorization_header",
    "token_not_valid",
    "user_not_found",
    "user_inactive",
    "token_revoked",
    "database_unavailable",
)
JSON_BODY = ("parse_error", "invalid", "request_too_large", "unsupported_media_type")
STS = ("sts_rejected", "sts_throttled", "sts_unavailable", "sts_busy", "audit_unavailable")

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Wrong method",
    409: "Conflict",
    413: "Too large",
    415: "Not JSON",
    429: "Rate limited",
    502: "Alibaba Cloud refused the server",
    503: "Unavailable for now",
}


def error_schema(codes: list[str], *, code_field: str = "code", detail_field: str = "detail") -> dict:
    """The error body with ``code`` limited to ``codes`` (a raw schema, inlined per response)."""
    properties = {
        detail_field: {"type": "string", "description": "A sentence for people."},
        code_field: {"type": "string", "enum": codes, "description": "A stable machine-readable code."},
    }
    if "invalid" in codes and code_field == "code":
        properties["errors"] = {
            "type": "object",
            "additionalProperties": {},
            "description": "Per-field messages (with `invalid`).",
        }
    return {"type": "object", "properties": properties, "required": [detail_field, code_field]}


def describe_codes(codes: list[str]) -> str:
    return "; ".join(f"`{code}`: {ERROR_CODES[code][1]}" for code in codes) + "."


def _by_status(codes: tuple) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for code in codes:
        status = ERROR_CODES[code][0]
        grouped.setdefault(status, [])
        if code not in grouped[status]:
            grouped[status].append(code)
    return dict(sorted(grouped.items()))


def error_responses(*codes: str | tuple[str, ...]) -> dict[int, OpenApiResponse]:
    """``responses={200: ..., **error_responses("throttled", *JWT_401)}`` in ``extend_schema``."""
    flat = tuple(code for item in codes for code in ((item,) if isinstance(item, str) else item))
    return {
        status: OpenApiResponse(
            response=error_schema(listed),
            description=f"{_TITLES[status]}. {describe_codes(listed)}",
            examples=[
                OpenApiExample(
                    f"{status} {listed[0]}",
                    value={"detail": ERROR_CODES[listed[0]][1].capitalize() + ".", "code": listed[0]},
                    status_codes=[str(status)],
                    response_only=True,
                )
            ],
        )
        for status, listed in _by_status(flat).items()
    }


def stock_error_responses(*codes: str | tuple[str, ...]) -> dict[int, OpenApiResponse]:
    """Like ``error_responses`` for the stock mobile format ``{StatusCode, ErrorCode, ErrorMessage}``."""
    flat = tuple(code for item in codes for code in ((item,) if isinstance(item, str) else item))
    responses = {}
    for status, listed in _by_status(flat).items():
        schema = error_schema(listed, code_field="ErrorCode", detail_field="ErrorMessage")
        schema["properties"] = {
            "StatusCode": {"type": "string", "enum": [str(status)]},
            **schema["properties"],
        }
        schema["required"] = ["StatusCode", *schema["required"]]
        responses[status] = OpenApiResponse(
            response=schema,
            description=f"{_TITLES[status]}. {describe_codes(listed)}",
            examples=[
                OpenApiExample(
                    f"{status} {listed[0]}",
                    value={
                        "StatusCode": str(status),
                        "ErrorCode": listed[0],
                        "ErrorMessage": ERROR_CODES[listed[0]][1].capitalize() + ".",
                    },
                    status_codes=[str(status)],
                    response_only=True,
                )
            ],
        )
    return responses


class SwaggerUiView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script as a file of its own (``?script``), so the page works
    under a Content-Security-Policy without inline code; OPTIONS answers with the allowed methods
    (DRF's metadata response has no HTML template, which made it a 500). The page is public and
    signs nobody in: with a bad token, its HTML error page would authenticate while rendering (the
    auth context processor) and fail there."""

    authentication_classes = ()

    def options(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        return HttpResponse(headers={"Allow": ", ".join(self.allowed_methods)})
