"""Shared by `aliyun_setup` and `aliyun_doctor`: the administrator credential, the origins, quiet SDKs.

The administrator key is read from the environment here, by these commands only, for one run, and
never stored: putting it in `config/settings/base.py` would hand it to every web worker.
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from aliyun.ram import AdminCredentials
from core.aliyun_names import is_loopback_endpoint

ADMIN_KEY_ID = "ALIYUN_ADMIN_ACCESS_KEY_ID"
ADMIN_KEY_SECRET = "ALIYUN_ADMIN_ACCESS_KEY_SECRET"
# The SDKs' own loggers: oss2 logs every refusal it raises at INFO ("Exception: {'status': 404, …
# NoSuchCORSConfiguration}") and each call it starts; the commands report those themselves.
SDK_LOGGERS = ("oss2", "alibabacloud_credentials", "alibabacloud_oss_v2", "alibabacloud_tea_openapi")


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
    """The origins that upload to the bucket: the --origin flags, else DJANGO_CSRF_TRUSTED_ORIGINS (the
    site's) followed by ALIYUN_OSS_APP_ORIGINS (hybrid apps' web views); each once, in that order."""
    origins = flags or [*settings.CSRF_TRUSTED_ORIGINS, *settings.ALIYUN_OSS_APP_ORIGINS]
    return list(dict.fromkeys(origin.rstrip("/") for origin in origins))


@contextmanager
def quiet_sdk_loggers(level: int = logging.WARNING) -> Iterator[None]:
    """For one command's run: the SDKs' INFO lines stay out of its report (their loggers' levels are
    restored on the way out)."""
    loggers = [logging.getLogger(name) for name in SDK_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)
