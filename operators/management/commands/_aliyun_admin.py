"""Shared by `aliyun_setup` and `aliyun_doctor`: the administrator credential and the site's origins.

The administrator key is read from the environment here, by these commands only, for one run, and
never stored: putting it in `config/settings/base.py` would hand it to every web worker.
"""

import os

from django.conf import settings

from aliyun.ram import AdminCredentials
from core.aliyun_names import is_loopback_endpoint

ADMIN_KEY_ID = "ALIYUN_ADMIN_ACCESS_KEY_ID"
ADMIN_KEY_SECRET = "ALIYUN_ADMIN_ACCESS_KEY_SECRET"


def sandbox_in_use() -> bool:
    """Both endpoints on loopback: the local sandbox, whose RAM user's key is also its administrator."""
    return is_loopback_endpoint(settings.ALIYUN_STS_ENDPOINT) and is_loopback_endpoint(
        settings.ALIYUN_OSS_ENDPOINT
    )


def admin_credentials(*, sandbox_fallback: bool) -> AdminCredentials | None:
    key_id = os.environ.get(ADMIN_KEY_ID, "")  # deliberately not a setting (module docstring)
    secret = os.environ.get(ADMIN_KEY_SECRET, "")
    if key_id and secret:
        return AdminCredentials(key_id, secret)
    if sandbox_fallback and sandbox_in_use() and settings.ALIYUN_ACCESS_KEY_ID:
        return AdminCredentials(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET)
    return None


def site_origins(flags: list[str] | None) -> list[str]:
    """The origins browsers upload from: --origin flags, else DJANGO_CSRF_TRUSTED_ORIGINS."""
    return [origin.rstrip("/") for origin in (flags or settings.CSRF_TRUSTED_ORIGINS)]
