"""System checks for sign-in: a production start (DEBUG off) refuses settings that let anyone in.

No network calls; the demo-user check reads the database only when the checks are run with one
(``check --database default``, ``migrate``; ``make check-deploy`` does).
"""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError

from core.health import READINESS_TAG

MIN_JWT_KEY_BYTES = 32  # HS256: RFC 7518 §3.2 wants a key at least as long as the hash (PyJWT warns below)


@register(Tags.security, READINESS_TAG)
def check_jwt_signing_key(app_configs: Any = None, **kwargs: Any) -> list:
    """Whoever knows the JWT signing key can mint a token for any user: it must be its own secret."""
    if settings.DEBUG:
        return []
    key = settings.SIMPLE_JWT.get("SIGNING_KEY") or ""
    errors: list = []
    if len(key.encode()) < MIN_JWT_KEY_BYTES:
        errors.append(
            Error(
                f"DJANGO_JWT_SIGNING_KEY is {len(key.encode())} bytes long; HS256 needs at least {MIN_JWT_KEY_BYTES}.",
                hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(48))"',
                id="accounts.E001",
            )
        )
    if key and key == settings.SECRET_KEY:
        errors.append(
            Error(
                "DJANGO_JWT_SIGNING_KEY is the same as DJANGO_SECRET_KEY.",
                hint="Give JWTs a key of their own, so that rotating one secret does not expose the other.",
                id="accounts.E002",
            )
        )
    if key == settings.JWT_DEVELOPMENT_SIGNING_KEY:
        errors.append(
            Error(
                "DJANGO_JWT_SIGNING_KEY is the development fallback written in config/settings/base.py: anyone can forge any user's token.",
                hint='Set a random key: python -c "import secrets; print(secrets.token_urlsafe(48))"',
                id="accounts.E003",
            )
        )
    return errors


@register(Tags.security, Tags.database)
def check_no_active_demo_users(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list:
    """Demo users have documented passwords (README); with DEBUG off they must not stay active."""
    if settings.DEBUG or not databases or "default" not in databases:
        return []
    from .models import User

    try:
        names = list(
            User.objects.filter(is_demo=True, is_active=True).values_list("username", flat=True)[:10]
        )
    except DatabaseError:  # not migrated yet: nothing to find
        return []
    if not names:
        return []
    return [
        Error(
            f"Active demo users with documented passwords: {', '.join(names)}.",
            hint="They cannot sign in while DEBUG is off, but deactivate or delete them: in the admin, or "
            'python manage.py shell -c "from accounts.models import User; User.objects.filter(is_demo=True).update(is_active=False)"',
            id="accounts.E004",
        )
    ]


@register(Tags.database, deploy=True)
def check_database_engine(app_configs: Any = None, **kwargs: Any) -> list:
    """SQLite serialises every write (logins, rotations, audit rows): fine for a demo, not a service."""
    if settings.DEBUG or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return []
    return [
        Warning(
            "The database is SQLite with DEBUG off.",
            hint="Set DATABASE_URL to PostgreSQL (postgres://user:password@host:5432/name) for production.",
            id="accounts.W001",
        )
    ]
