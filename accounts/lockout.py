"""Failed logins counted per client address and per username (django-axes), each with its own limit.

django-axes records every failed password sign-in (the JWT endpoint, the login page, the admin's)
in its ``AccessAttempt`` table: the database, so every app server sees the same counts, on SQLite
and PostgreSQL alike. Its rows hold the username typed (at most 150 characters), the client address
(``core.requests.client_ip``: the same one throttles and audit rows use), user agent, path, and the
query string and form fields with every value masked but the field names (``AXES_SENSITIVE_PARAMETERS``
in config/settings.py): never a password, a CSRF token or a JWT.

A username is locked after LOGIN_FAILURES_PER_USERNAME failures, an address after
LOGIN_FAILURES_PER_ADDRESS (higher: many people may share one address behind a NAT), each for
LOGIN_LOCKOUT_MINUTES after the last failure. While locked, even the right password is refused:
429 ``login_locked`` with ``Retry-After`` on the API, the page ``registration/locked_out.html`` on
the login forms. Staff unlock early by deleting the rows in the admin (Axes → Access attempts) or
with ``python manage.py axes_reset_username <name>`` / ``axes_reset_ip <address>``.
"""

import math
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

USERNAME_MAX_LENGTH = 150  # accounts.User.username: a longer one names nobody


def attempted_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The username a sign-in attempt named (``AXES_USERNAME_CALLABLE``), cut to 150 characters so a
    huge one fits django-axes' column on PostgreSQL too; None when there is none."""
    value = (credentials or {}).get("username")
    if value is None:
        value = getattr(request, "POST", {}).get("username")
    return value[:USERNAME_MAX_LENGTH] if isinstance(value, str) else None


def lockout_seconds() -> int:
    """How long a lockout lasts after the last failure, in seconds (LOGIN_LOCKOUT_MINUTES)."""
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds())


class LoginFailureHandler(AxesDatabaseHandler):
    """django-axes' database handler with one limit per lockout parameter instead of one for all.

    ``AXES_LOCKOUT_PARAMETERS`` is ``["ip_address", "username"]``; axes compares the largest count
    with ``AXES_FAILURE_LIMIT`` (the per-username limit). The address's count is scaled to it,
    ``floor(count * per_username / per_address)``, which reaches the per-username limit exactly when
    the count reaches LOGIN_FAILURES_PER_ADDRESS.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        per_address, per_username = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        scaled = per_address * settings.AXES_FAILURE_LIMIT // settings.LOGIN_FAILURES_PER_ADDRESS
        return max(scaled, per_username)


class LoginLocked(exceptions.APIException):
    """429 ``login_locked``: too many failed logins for this username or from this address.
    ``Retry-After`` (DRF's handler reads ``wait``) is the lockout's length: at most that long."""

    status_code = 429
    default_code = "login_locked"
    default_detail = _("Too many failed logins for this username or from your address; try again later.")

    def __init__(self) -> None:
        super().__init__()
        self.wait = lockout_seconds()


def request_is_locked_out(request: object) -> bool:
    """Whether django-axes refused this sign-in attempt (it marks the request it was handed)."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """What the login forms answer when locked (``AXES_LOCKOUT_CALLABLE``): a page, 429, Retry-After;
    under /api/ our JSON error shape instead."""
    wait = lockout_seconds()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": gettext(str(LoginLocked.default_detail)), "code": "login_locked"}, status=429
        )
    else:
        minutes = max(1, math.ceil(wait / 60))
        response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(wait)
    return response
