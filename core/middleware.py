"""Request ids: one per request, echoed in the response, attached to every log line and audit row.

Which client headers are believed, and from whom (docs/security.md, "Trusted headers"):

- ``X-Forwarded-For``: only with DJANGO_NUM_PROXIES = N > 0, and then only its N-th entry from the
  right, the one the outermost of our N proxies appended (DRF's ``get_ident``, ``core.requests``):
  what a client writes to the left of it is ignored. With 0, the TCP peer (REMOTE_ADDR).
- The request id: read from the header DJANGO_REQUEST_ID_HEADER (default ``X-Request-ID``) only
  when DJANGO_TRUST_REQUEST_ID says so; unset, exactly when DJANGO_NUM_PROXIES > 0 (a proxy sets or
  replaces it). Even then only a well-formed one (8-64 of ``A-Za-z0-9._-``) is kept; otherwise, or
  when not trusted, the server makes one. Responses always name it ``X-Request-ID``.
"""

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_header_parameters

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")  # whole value (fullmatch): "$" would let a final "\n" in


def _behind_proxy() -> bool:
    return bool(settings.REST_FRAMEWORK.get("NUM_PROXIES"))


def request_id_trusted() -> bool:
    """Whether a request id arriving with the request may name it (DJANGO_TRUST_REQUEST_ID; unset:
    only behind a proxy, DJANGO_NUM_PROXIES > 0)."""
    trusted = getattr(settings, "REQUEST_ID_TRUSTED", None)
    return _behind_proxy() if trusted is None else bool(trusted)


def current_request_id() -> str:
    return _request_id.get()


class RequestIdMiddleware:
    """Takes a well-formed request id from the trusted header (``request_id_trusted``), or makes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Only a proxy we are told about may name the request; a client could collide with other ids.
        header = getattr(settings, "REQUEST_ID_HEADER", "X-Request-ID")
        incoming = request.headers.get(header, "") if request_id_trusted() else ""
        request_id = incoming if _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Left set after the response (the next request in this thread sets its own): Django logs
        # a 4xx/5xx ("django.request") and runserver its request line ("django.server") after the
        # middleware has returned, and those lines carry the id too.
        _request_id.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Every line gets ``request_id``: the request's own when the record names it (django.request
    passes ``request=``), else the one of the request this thread is serving or served last."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(getattr(record, "request", None), "request_id", None) or _request_id.get()
        return True


# A path followed by its query string, anywhere in a line ("GET /api/x?token=… HTTP/1.1",
# "<WSGIRequest: GET '/api/x?token=…'>", a URL in an exception message).
_QUERY_STRING = re.compile(r"(/[^\s?'\"<>]*)\?[^\s'\"<>]*")
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def strip_query_strings(text: str) -> str:
    """``text`` with the query string of every path or URL in it removed (it may carry signatures)."""
    return _QUERY_STRING.sub(r"\1", text) if "?" in text else text


class QueryStringLogFilter(logging.Filter):
    """No log line carries a query string: the message (rendered here), string extras (such as the
    request Django's loggers attach, as the secret-redacting filter before this one leaves it) and
    the traceback text lose theirs. On the console handler (config/settings/base.py) and gunicorn's
    loggers (config/gunicorn.conf.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args}"
        record.msg, record.args = strip_query_strings(message), ()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = strip_query_strings(record.exc_text)
        for name, value in list(vars(record).items()):
            if name in _STANDARD_ATTRIBUTES:
                continue
            if isinstance(value, HttpRequest):
                value = f"<{type(value).__name__}: {value.method} {value.path!r}>"
            if isinstance(value, str):
                setattr(record, name, strip_query_strings(value))
        return True


def _is_text_charset(charset: str) -> bool:
    try:
        "".encode(charset)  # rejects bytes-to-bytes codecs such as bz2_codec, base64_codec
    except LookupError as exc:
        return "not a text encoding" not in str(exc)  # an unknown name: Django ignores it
    return True


class TextCharsetWSGIMiddleware:
    """WSGI middleware (config/wsgi.py): answers 400 ``unsupported_charset`` when the Content-Type
    names a codec that is not a text encoding (``charset=bz2_codec``, ``base64_codec``…).

    Django takes such a charset as the request's encoding and decodes the query string with it
    while it builds the request, before any Django middleware runs: a LookupError, a 500 that no
    error handler could catch.
    """

    def __init__(self, application: Callable) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response: Callable) -> object:
        _content_type, params = parse_header_parameters(environ.get("CONTENT_TYPE", ""))
        charset = params.get("charset")
        if charset is None or _is_text_charset(charset):
            return self.application(environ, start_response)
        body = json.dumps(
            {
                "detail": "The charset in the Content-Type header is not a text encoding.",
                "code": "unsupported_charset",
            }
        ).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", uuid.uuid4().hex),
            ],
        )
        return [body]
