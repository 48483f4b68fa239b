"""The test run (``tests/settings.py`` feeds it a test environment): production's settings, plus the local
sandbox the tests talk to through the real SDKs, and faster password hashing."""

from .production import *  # noqa: F403
from .sandbox import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # serve from the finders; no collectstatic before tests
WHITENOISE_USE_FINDERS = True
