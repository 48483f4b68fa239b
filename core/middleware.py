"""Request ids: one per request, echoed in the response, attached to every log line and audit row."""

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _behind_proxy() -> bool:
    return bool(settings.REST_FRAMEWORK.get("NUM_PROXIES"))


def current_request_id() -> str:
    return _request_id.get()


class RequestIdMiddleware:
    """Takes a well-formed ``X-Request-ID`` from the load balancer (DJANGO_NUM_PROXIES > 0), or makes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Only a proxy we are told about may name the request; a client could collide with other ids.
        incoming = request.headers.get("X-Request-ID", "") if _behind_proxy() else ""
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
