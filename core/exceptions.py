"""One error shape for the whole API: ``{"detail": "...", "code": "..."}`` plus extras.

DRF's own exceptions (authentication, parsing, throttling, validation) and the project's
``ApplicationError`` both end up here, so a client can switch on ``code`` everywhere.
"""

import logging
import sys
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from .dependencies import DATABASE_RETRY_AFTER_SECONDS, DependencyUnavailable, database_unavailable

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """An expected failure of a service, with the HTTP status and stable code the API reports."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "error"
    default_detail = _("The request could not be completed.")

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.retry_after = retry_after
        super().__init__(self.detail)


def _first_code(codes: Any) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        codes = list(codes.values())
    for item in codes or []:
        return _first_code(item)
    return "error"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        # str(): a lazy message is put into the request's language here (LocaleMiddleware chose it).
        return Response(
            {"detail": str(exc.detail), "code": exc.code}, status=exc.status_code, headers=headers
        )

    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": gettext("The request body is too large."), "code": "request_too_large"}, status=413
        )
    if isinstance(exc, SuspiciousOperation):
        return Response({"detail": gettext("Bad request."), "code": "bad_request"}, status=400)
    if isinstance(exc, DatabaseError):
        # Logged once per interval with a count (core.dependencies.OutageLogFilter), not per request.
        logger.warning("Database unavailable in %s", context.get("view").__class__.__name__, exc_info=exc)
        exc = database_unavailable()

    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            {"detail": gettext("Internal server error."), "code": "internal_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": gettext("Invalid input."),
            "code": "invalid",
            "errors": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = _first_code(exc.get_codes())
        detail = exc.detail
        if isinstance(detail, dict):  # simplejwt: {"detail", "code", "messages"}
            code = str(detail.get("code") or code)
            detail = detail.get("detail", gettext("Request failed."))
        response.data = {"detail": str(detail), "code": code}
    else:  # Django's Http404 and PermissionDenied, which DRF turns into {"detail"} alone
        detail = (
            response.data.get("detail", "Request failed.")
            if isinstance(response.data, dict)
            else "Request failed."
        )
        code = {404: "not_found", 403: "permission_denied"}.get(response.status_code, "error")
        response.data = {"detail": str(detail), "code": code}
    return response


def _json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None):
    if request.path.startswith("/api/"):
        return _json_error(400, gettext("Bad request."), "bad_request")
    from django.views.defaults import bad_request as default_bad_request

    return default_bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None):
    if request.path.startswith("/api/"):
        return _json_error(
            403, gettext("You do not have permission to perform this action."), "permission_denied"
        )
    from django.views.defaults import permission_denied as default_permission_denied

    return default_permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception | None = None):
    if request.path.startswith("/api/"):
        return _json_error(404, gettext("Not found."), "not_found")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest):
    # Django calls this while it handles the uncaught exception, so sys.exc_info() names it: a
    # database that failed under a page, a login form or a middleware is 503 with Retry-After.
    if isinstance(sys.exc_info()[1], DatabaseError):
        retry_after = str(DATABASE_RETRY_AFTER_SECONDS)
        if request.path.startswith("/api/"):
            response = _json_error(503, str(DependencyUnavailable.default_detail), "database_unavailable")
        else:
            response = HttpResponse(
                gettext("The service is unavailable for a moment; try again shortly."),
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = retry_after
        return response
    if request.path.startswith("/api/"):
        return _json_error(500, gettext("Internal server error."), "internal_error")
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)
