"""What the API views of every app share: answers no cache may keep, and refusals that leave a trace."""

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from .exceptions import ApplicationError


def throttle_window_seconds(scope: str) -> int:
    """The window of the rate limit named ``scope`` (``"60/min"`` → 60), in seconds."""
    throttle = ScopedRateThrottle()
    throttle.scope = scope
    _count, duration = throttle.parse_rate(throttle.get_rate())
    return int(duration or 60)


class NoStoreMixin:
    """Every answer of the view, errors included, says ``Cache-Control: no-store``: it carries a
    credential, a signed form or a signed URL, which no cache, shared or the browser's, may keep."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response["Cache-Control"] = "no-store"
        return response


class AuditedRefusalMixin:
    """A request refused before the view's service ran (a body that does not parse or validate, a rate
    limit) is audited through ``refusal_audit`` and then answered as DRF answers it: one rule for every
    view that must leave a trace of what it refused.

    ``refusal_audit(request, reason=…, window_seconds=…)`` gets DRF's code for the refusal (``invalid``,
    ``parse_error``, ``unsupported_media_type``, ``throttled``) and, for a rate limit, the window of
    the view's ``throttle_scope``, within which the refusals of one user may share a row. Refusals of
    anonymous requests are not audited (there is nobody to audit them for: authentication answers
    first). If the audit cannot be written, the answer is the audit's error (503) instead.
    """

    audited_refusals: tuple[type[Exception], ...] = (
        exceptions.ParseError,
        exceptions.UnsupportedMediaType,
        exceptions.ValidationError,
        exceptions.Throttled,
    )

    def refusal_audit(self, request: Request, *, reason: str, window_seconds: int | None) -> None:
        raise NotImplementedError

    def handle_exception(self, exc: Exception) -> Response:
        request = self.request  # type: ignore[attr-defined]
        if isinstance(exc, self.audited_refusals) and request.user.is_authenticated:
            throttled = isinstance(exc, exceptions.Throttled)
            window = throttle_window_seconds(self.throttle_scope) if throttled else None  # type: ignore[attr-defined]
            try:
                self.refusal_audit(request, reason=exc.default_code, window_seconds=window)  # type: ignore[attr-defined]
            except ApplicationError as failure:
                return super().handle_exception(failure)  # type: ignore[misc]
        return super().handle_exception(exc)  # type: ignore[misc]
