"""Facts about the caller that views hand to services (kept out of the services themselves)."""

from dataclasses import dataclass
from ipaddress import ip_address

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.authentication import JWTAuthentication


def client_ip(request: Request) -> str | None:
    """The caller's address as DRF's throttles see it, or None if malformed: with DJANGO_NUM_PROXIES
    = N > 0 the N-th ``X-Forwarded-For`` entry from the right (the one our outermost proxy appended;
    what a client wrote to its left is ignored), with 0 the TCP peer. Audit rows, throttles and the
    failed-login counts (``AXES_CLIENT_IP_CALLABLE``) all use this one."""
    ident = BaseThrottle().get_ident(request)
    try:
        return str(ip_address(ident))
    except ValueError:
        return None


def auth_method(request: Request) -> str:
    """How the caller authenticated, as the audit log records it (``jwt``, ``session``, …).

    An authentication class of the project names itself with an ``audit_auth_method`` attribute.
    """
    authenticator = request.successful_authenticator
    named = getattr(authenticator, "audit_auth_method", None)
    if named:
        return named
    if isinstance(authenticator, JWTAuthentication):
        return "jwt"
    if isinstance(authenticator, SessionAuthentication):
        return "session"
    return "other"


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and from where, as every audit row records it; captured once per request by
    ``request_context`` in the API view and handed to the services."""

    auth_method: str  # "jwt", "session", "credential_url", "other" (see ``auth_method``)
    client_ip: str | None  # None when the address is malformed
    user_agent: str  # as sent; the audit cuts it to its column
    request_id: str  # ``core.middleware.RequestIdMiddleware``'s id ("" outside a request)


def request_context(request: Request) -> RequestContext:
    """The ``RequestContext`` of a DRF request, after authentication."""
    return RequestContext(
        auth_method=auth_method(request),
        client_ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
        request_id=getattr(request, "request_id", ""),
    )
