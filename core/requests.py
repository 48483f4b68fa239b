"""Facts about the caller that views hand to services (kept out of the services themselves)."""

from ipaddress import ip_address

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.authentication import JWTAuthentication


def client_ip(request: Request) -> str | None:
    """The caller's address as DRF's throttles see it (honours NUM_PROXIES), or None if malformed."""
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
