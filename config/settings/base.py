"""Settings every environment shares; with the environment modules beside it, the only code that reads
the environment.

Every variable is documented in docs/reference/settings.md and .env.example. Values are parsed here and validated
by the system checks (``uploads/checks.py``, ``accounts/checks.py``), so a bad deployment fails at
start-up with a message and a hint instead of at the first request. ``config/settings/__init__.py``
picks development or production; tests use ``config.settings.test``.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")


# What start-up is missing or cannot read: reported all together by the environment module's
# ``stop_if_problems()``, without a traceback, instead of one ImproperlyConfigured at a time.
problems: list[str] = []
REQUIRED_IN_PRODUCTION = {
    "DJANGO_SECRET_KEY": "Django's secret: a long random string",
    "DJANGO_JWT_SIGNING_KEY": "signs JWTs: another long random string (at least 32 bytes)",
    "DJANGO_ALLOWED_HOSTS": "the host names the site answers to, comma-separated",
    # Not required when the server's identity comes from RRSA, an ECS RAM role or a credentials URI
    # (production.py; docs/operating/keyless.md).
    "ALIYUN_ACCESS_KEY_ID": "the RAM user allowed to call AssumeRole, or no AccessKey at all: see docs/operating/keyless.md "
    "(ALIBABA_CLOUD_ROLE_ARN, ...)",
    "ALIYUN_ACCESS_KEY_SECRET": "its AccessKey secret",
    "ALIYUN_STS_ROLE_ARN": "acs:ram::<account>:role/<name>",
    "ALIYUN_OSS_BUCKET": "the bucket clients upload to",
}


def _required_outside_debug(name: str, debug_default: str) -> str:
    """Secrets have a throw-away default only in development; production must set them."""
    value = env.str(name, default="")
    return value or (debug_default if DEBUG else "")


def env_int(name: str, default: int) -> int:
    """``name`` as an integer; a malformed value is reported at start-up (``stop_if_problems``)."""
    try:
        return env.int(name, default=default)
    except ValueError:
        problems.append(f"  {name} must be an integer, got {env.str(name)!r}.")
        return default


def stop_if_problems() -> None:
    """End start-up with one message naming every problem found (SystemExit: no traceback)."""
    if problems:
        raise SystemExit(
            "The environment is not ready for production (DJANGO_DEBUG is off):\n"
            + "\n".join(problems)
            + "\nSet them in the environment or in .env beside manage.py (see .env.example),"
            " or set DJANGO_DEBUG=1 for development."
            if not DEBUG
            else "The environment has values the settings cannot read:\n" + "\n".join(problems)
        )


# --- Core -------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = _required_outside_debug("DJANGO_SECRET_KEY", "django-insecure-development-only")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",  # for its translations (zh_Hans), as simplejwt's docs say
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",  # plumbing, and the `translations` command
    "accounts",
    "ledger",  # what is stored: the upload ledger kept from OSS events, usage, users' files
    "uploads",
    "operators",  # aliyun_setup, aliyun_doctor
    "avatars",
    "audit",  # the reviewers' admin: every audit log, the overview, timelines, retention
]  # the local sandbox only in development and test (config/settings/sandbox.py)

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.health.ProbeMiddleware",  # probes answer any Host, over http (see health.py)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # the language cookie, else Accept-Language
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",  # django-csp, plus the OSS endpoint (config/csp.py)
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.ModelBackend"]  # refuses demo users when DEBUG is off
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A transaction takes SQLite's write lock as it begins, so concurrent writers queue (up to the
    # timeout) instead of one failing with "database is locked"; refresh rotation relies on it.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer fails the request (503 database_unavailable) within seconds.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 3)
    )

REDIS_URL = env.str("REDIS_URL", default="")
# Every Redis call (cache, rate limits, the STS budget) gives up after this long; a failure opens
# core.dependencies' breaker, and requests use per-process stand-ins until Redis answers again.
REDIS_TIMEOUT_MS = env_int("REDIS_TIMEOUT_MS", 500)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Errors are raised, not ignored: the callers (core.dependencies.redis_breaker) fall back to
            # per-process state and log the outage once per interval instead of a traceback per call.
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_MS / 1000,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT_MS / 1000,
            },
            "KEY_PREFIX": "ossup",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Security -----------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = 31_536_000 if SECURE_SSL_REDIRECT else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL_REDIRECT
# Preload lists are hard to leave (months, for every subdomain): only when asked for.
SECURE_HSTS_PRELOAD = SECURE_SSL_REDIRECT and env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "preload is off": on purpose, see above
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp) on every response: scripts, styles and fonts only from our
# own static files (the ali-oss bundle, Swagger UI from drf-spectacular-sidecar, the admin's), no
# inline code; uploads and avatars also reach the OSS endpoint (added per response, config/csp.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins (the JWT endpoint and both login forms) counted per username and per client address
# by django-axes, in the database (accounts/lockout.py); a locked sign-in is 429 `login_locked`.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes asks: the login forms' lockout page
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", *AUTHENTICATION_BACKENDS]
AXES_HANDLER = "accounts.lockout.LoginFailureHandler"  # one limit per username, another per address
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # this order: LoginFailureHandler relies on it
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURES_PER_USERNAME", 10)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 50)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a refused attempt writes nothing
AXES_RESET_ON_SUCCESS = False  # else one good login of one's own account resets the address's count
AXES_DISABLE_ACCESS_LOG = True  # successful logins: not axes' to keep
AXES_CLIENT_IP_CALLABLE = "core.requests.client_ip"  # DJANGO_NUM_PROXIES, as throttles and audit rows
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken", "refresh", "access", "token"]
AXES_VERBOSE = False

# --- I18N and static ----------------------------------------------------------------------
LANGUAGE_CODE = "en"
# Our own catalogs live in locale/ (Babel-compiled by `make install`); Django, DRF and simplejwt bring
# theirs for zh-hans. Accept-Language zh, zh-CN, zh-SG pick zh-hans.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
# One date format everywhere, with seconds and the zone: 2026-12-05 23:13:31 UTC (config/formats/).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/ali-oss", BASE_DIR / "node_modules/ali-oss/dist"),
    ("vendor/chart.js", BASE_DIR / "node_modules/chart.js/dist"),  # the audit overview's chart
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",  # + revocation: accounts/tokens.py
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],  # bounded size and depth: 400, never 500
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "sts_token": env.str("THROTTLE_STS_TOKEN", default="60/min"),
        "login": env.str("THROTTLE_LOGIN", default="20/min"),
        "refresh": env.str("THROTTLE_REFRESH", default="120/min"),  # per client address, apart from login's
        "logout": env.str("THROTTLE_LOGOUT", default="60/min"),  # per client address, apart from login's
        "avatar": env.str("THROTTLE_AVATAR", default="30/min"),
        "post_policy": env.str("THROTTLE_POST_POLICY", default="60/min"),
        # Credential URLs: per user, apart from sts-token's; and URLs that do not work, per client address.
        "credential_url": env.str("THROTTLE_CREDENTIAL_URL", default="60/min"),
        "credential_url_failure": env.str("THROTTLE_CREDENTIAL_URL_FAILURES", default="30/min"),
        "objects": env.str("THROTTLE_OBJECTS", default="120/min"),  # listing and deleting one's files
    },
    # Proxies in front of the app: 0 means REMOTE_ADDR is the client (never trust X-Forwarded-For).
    "NUM_PROXIES": env_int("DJANGO_NUM_PROXIES", 0),
}
# The request id a proxy sends (core/middleware.py): which header, and whether to believe it at all
# (unset: only behind a proxy, DJANGO_NUM_PROXIES > 0). docs/security.md, "Trusted headers".
REQUEST_ID_HEADER = env.str("DJANGO_REQUEST_ID_HEADER", default="X-Request-ID")
if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", REQUEST_ID_HEADER):
    problems.append(
        f"  DJANGO_REQUEST_ID_HEADER must be a header name (letters, digits, '-'), got {REQUEST_ID_HEADER!r}."
    )
_TRUST_CHOICES = {"": None, "1": True, "true": True, "on": True, "0": False, "false": False, "off": False}
_trust_request_id = env.str("DJANGO_TRUST_REQUEST_ID", default="").strip().lower()
if _trust_request_id not in _TRUST_CHOICES:
    problems.append(f"  DJANGO_TRUST_REQUEST_ID must be 1 or 0 (or unset), got {_trust_request_id!r}.")
REQUEST_ID_TRUSTED: bool | None = _TRUST_CHOICES.get(_trust_request_id, False)

# The development fallback: long enough for PyJWT not to warn, and refused with DEBUG off (accounts.E003).
JWT_DEVELOPMENT_SIGNING_KEY = "jwt-development-only-key-never-use-in-production"
SIMPLE_JWT = {
    "SIGNING_KEY": _required_outside_debug("DJANGO_JWT_SIGNING_KEY", JWT_DEVELOPMENT_SIGNING_KEY),
    "ALGORITHM": "HS256",
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Microsecond iat, digests instead of tokens in the outstanding list, atomic rotation, revocation.
    "AUTH_TOKEN_CLASSES": ("accounts.tokens.AccessToken",),
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.TokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "accounts.serializers.TokenRefreshSerializer",
    "TOKEN_BLACKLIST_SERIALIZER": "accounts.serializers.TokenBlacklistSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OSS direct-upload credentials API",
    "DESCRIPTION": (
        "Short-lived Alibaba Cloud STS credentials that can write only under `user/<id>/` "
        "of the bucket, for browsers and mobile apps. Every error is `{detail, code}` with a "
        "stable `code`; each operation lists the codes it can answer. Mobile apps: see "
        "`/api/uploads/sts-server/` and `/api/uploads/sts-server-url/` (Alibaba's stock format)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: no CDN at run time
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Alibaba Cloud ------------------------------------------------------------------------
ALIYUN_ACCESS_KEY_ID = env.str("ALIYUN_ACCESS_KEY_ID", default="")
ALIYUN_ACCESS_KEY_SECRET = env.str("ALIYUN_ACCESS_KEY_SECRET", default="")
ALIYUN_STS_ROLE_ARN = env.str("ALIYUN_STS_ROLE_ARN", default="")
ALIYUN_STS_ENDPOINT = env.str("ALIYUN_STS_ENDPOINT", default="sts.aliyuncs.com")
ALIYUN_STS_DURATION_SECONDS = env_int("ALIYUN_STS_DURATION_SECONDS", 3600)
ALIYUN_STS_CONNECT_TIMEOUT_MS = env_int("ALIYUN_STS_CONNECT_TIMEOUT_MS", 2000)
ALIYUN_STS_READ_TIMEOUT_MS = env_int("ALIYUN_STS_READ_TIMEOUT_MS", 5000)
ALIYUN_STS_MAX_ATTEMPTS = env_int("ALIYUN_STS_MAX_ATTEMPTS", 3)
ALIYUN_STS_REUSE_MARGIN_SECONDS = env_int("ALIYUN_STS_REUSE_MARGIN_SECONDS", 900)
# Cached credentials with more than this left are handed out at once while one background refresh
# replaces them (refresh ahead; a failing STS is bridged the same way); 0 turns that off.
ALIYUN_STS_STALE_IF_ERROR_SECONDS = env_int("ALIYUN_STS_STALE_IF_ERROR_SECONDS", 300)
# The account's AssumeRole budget, shared by every instance through Redis (Alibaba allows 100 per
# second per account, all callers together); 0: no budget.
ALIYUN_STS_MAX_CALLS_PER_SECOND = env_int("ALIYUN_STS_MAX_CALLS_PER_SECOND", 50)
# How long a request that needs an AssumeRole call waits for its turn before 503 sts_busy.
ALIYUN_STS_QUEUE_SECONDS = env_int("ALIYUN_STS_QUEUE_SECONDS", 5)
# Request threads per process that may wait on STS at once (0: half of GUNICORN_THREADS, at least 1);
# past it a request that needs STS gets 503 sts_busy at once, so the others keep their threads.
ALIYUN_STS_WAITERS_PER_PROCESS = env_int("ALIYUN_STS_WAITERS_PER_PROCESS", 0)
ALIYUN_STS_REFRESH_THREADS = env_int("ALIYUN_STS_REFRESH_THREADS", 2)  # background refreshes per process
# How many app servers share the Redis: while it is down each process keeps to its share
# (limit / (GUNICORN_WORKERS x APP_INSTANCES)) of the STS budget and of every per-user rate limit.
APP_INSTANCES = env_int("APP_INSTANCES", 1)
ALIYUN_OSS_BUCKET = env.str("ALIYUN_OSS_BUCKET", default="")
ALIYUN_OSS_REGION = env.str("ALIYUN_OSS_REGION", default="cn-hangzhou")
# The account that owns the bucket, named in the session policy; empty: the account in ALIYUN_STS_ROLE_ARN.
ALIYUN_OSS_OWNER_ACCOUNT_ID = env.str("ALIYUN_OSS_OWNER_ACCOUNT_ID", default="")
ALIYUN_OSS_ENDPOINT = env.str("ALIYUN_OSS_ENDPOINT", default=f"https://oss-{ALIYUN_OSS_REGION}.aliyuncs.com")
# The server's own identity without an AccessKey (docs/operating/keyless.md), used only when
# ALIYUN_ACCESS_KEY_ID is unset (an AccessKey wins: uploads.W040). The credentials chain's standard variables
# are read here, like every other setting, and aliyun/credentials.py passes them to the provider explicitly:
# the library's own reading of the environment (once, when it is imported) never decides, and tests change
# them with override_settings.
ALIBABA_CLOUD_ROLE_ARN = env.str("ALIBABA_CLOUD_ROLE_ARN", default="")  # RRSA (ACK): the server's role
ALIBABA_CLOUD_OIDC_PROVIDER_ARN = env.str("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", default="")
ALIBABA_CLOUD_OIDC_TOKEN_FILE = env.str(
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE", default=""
)  # re-read at each refresh
ALIBABA_CLOUD_ROLE_SESSION_NAME = env.str("ALIBABA_CLOUD_ROLE_SESSION_NAME", default="uploads-server")
ALIBABA_CLOUD_ECS_METADATA = env.str("ALIBABA_CLOUD_ECS_METADATA", default="")  # the ECS instance's RAM role
ALIBABA_CLOUD_CREDENTIALS_URI = env.str("ALIBABA_CLOUD_CREDENTIALS_URI", default="")  # a credentials sidecar
# Where RRSA's AssumeRoleWithOIDC goes, host[:port], always over HTTPS (the library knows no other way);
# empty: ALIYUN_STS_ENDPOINT, which must then not be a plain-http loopback address (uploads.E044).
ALIYUN_STS_HTTPS_ENDPOINT = env.str("ALIYUN_STS_HTTPS_ENDPOINT", default="")
# How long the server's own RRSA session lasts (900 to the role's maximum); the library renews it once less
# than 15 minutes are left, so at least 1800 keeps it from renewing on nearly every call (uploads.W041).
ALIYUN_SERVER_SESSION_SECONDS = env_int("ALIYUN_SERVER_SESSION_SECONDS", 3600)

# Origins of apps (not the site) that upload to the bucket from a web view, e.g. capacitor://localhost
# or ionic://localhost (hybrid apps; ali-oss issue 531): `aliyun_setup` allows them in the bucket's CORS
# rule beside DJANGO_CSRF_TRUSTED_ORIGINS, and `aliyun_doctor` checks each.
ALIYUN_OSS_APP_ORIGINS = env.list("ALIYUN_OSS_APP_ORIGINS", default=[])
# RAM, called only by `manage.py aliyun_setup --apply` (and `aliyun_doctor` with an admin key).
# Empty: ram.aliyuncs.com, or the STS endpoint when that is the local sandbox (it answers RAM too).
ALIYUN_RAM_ENDPOINT = env.str("ALIYUN_RAM_ENDPOINT", default="")

# A credential URL (POST /api/uploads/sts-server-url/) works for this long unless logout, a password
# change or deactivation ends it first; uploads.E020 keeps it within the refresh token's lifetime.
CREDENTIAL_URL_LIFETIME_MINUTES = env_int("CREDENTIAL_URL_LIFETIME_MINUTES", 24 * 60)

AVATAR_MAX_BYTES = env_int("AVATAR_MAX_BYTES", 5 * 1024 * 1024)
# What a server-signed form (POST /api/uploads/post-policy/) may upload: per purpose, its folder inside
# user/<id>/, content types with their extensions, the size limit (bytes) and the status OSS answers a
# success with (200 or 204: empty body; 201: XML). `avatar` is the avatars app's: it supplies the image
# types and AVATAR_MAX_BYTES. The env variable (JSON, same shape) replaces the whole mapping;
# uploads.E050 checks it. docs/api.md, "Upload purposes".
UPLOAD_PURPOSES = env.json(
    "UPLOAD_PURPOSES",
    default={
        "avatar": {"folder": "avatars/", "success_action_status": 204},
        "attachment": {
            "folder": "attachments/",
            "content_types": {
                "application/pdf": [".pdf"],
                "image/jpeg": [".jpg", ".jpeg"],
                "image/png": [".png"],
                "text/plain": [".txt"],
            },
            "max_bytes": 20 * 1024 * 1024,
            "success_action_status": 200,
        },
    },
)
# Per-user quota over what the user's folders hold (user/<id>/ and confirmed avatars); 0: no limit.
# Staff override them per user in the admin (ledger.UploadUsage).
UPLOAD_QUOTA_BYTES = env_int("UPLOAD_QUOTA_BYTES", 100 * 1024 * 1024)
UPLOAD_QUOTA_OBJECTS = env_int("UPLOAD_QUOTA_OBJECTS", 1000)
# A user with less than this share of the quota left (percent, bytes or objects) gets STS credentials
# of the shortest lifetime Alibaba allows (900 s), so what one token can add past the quota is bounded.
UPLOAD_QUOTA_SHORT_CREDENTIALS_PERCENT = env_int("UPLOAD_QUOTA_SHORT_CREDENTIALS_PERCENT", 10)

# --- OSS event notifications (ledger/): POST /api/uploads/oss-events/, pushed by SMQ (MNS) ----------
# Certificate URLs a push may name (x-mns-signing-cert-url), comma-separated prefixes, each ending in
# "/"; Alibaba's "verify a signature on an HTTP server" page names the one default. ledger.E001 refuses
# a plain-http or loopback prefix unless ALIYUN_OSS_ENDPOINT is the local sandbox.
OSS_EVENTS_CERT_URL_PREFIXES = env.list(
    "OSS_EVENTS_CERT_URL_PREFIXES", default=["https://mnstest.oss-cn-hangzhou.aliyuncs.com/"]
)
# The topic whose pushes are believed (the XML body's TopicOwner and TopicName). Empty owner: the
# bucket owner's account (ALIYUN_OSS_OWNER_ACCOUNT_ID, else the account in ALIYUN_STS_ROLE_ARN).
OSS_EVENTS_TOPIC_OWNER = env.str("OSS_EVENTS_TOPIC_OWNER", default="")
OSS_EVENTS_TOPIC_NAME = env.str("OSS_EVENTS_TOPIC_NAME", default="oss-events")
OSS_EVENTS_MAX_BODY_BYTES = env_int("OSS_EVENTS_MAX_BODY_BYTES", 256 * 1024)
OSS_EVENTS_MAX_EVENTS = env_int("OSS_EVENTS_MAX_EVENTS", 100)
OSS_EVENTS_CERT_TIMEOUT_SECONDS = env_int("OSS_EVENTS_CERT_TIMEOUT_SECONDS", 2)
# How long `aliyun_doctor` waits for its probe upload's event to reach the receiver (0: no event check).
OSS_EVENTS_DOCTOR_WAIT_SECONDS = env_int("OSS_EVENTS_DOCTOR_WAIT_SECONDS", 10)

# --- Serving (config/gunicorn.conf.py reads these, so .env applies to gunicorn too) -----------
GUNICORN_BIND = env.list("GUNICORN_BIND", default=["127.0.0.1:8000"])
GUNICORN_WORKERS = env_int("GUNICORN_WORKERS", 2)
GUNICORN_THREADS = env_int(
    "GUNICORN_THREADS", 4
)  # per worker: an STS call or backoff blocks one thread, not the worker
GUNICORN_TIMEOUT = env_int("GUNICORN_TIMEOUT", 0)  # 0: derived from the STS deadline
# On SIGTERM /readyz answers 503 ("draining") for this long while requests are still served, then
# gunicorn stops gracefully: the load balancer's health check must notice within it (README).
GUNICORN_DRAIN_SECONDS = env_int("GUNICORN_DRAIN_SECONDS", 10)
GUNICORN_MAX_REQUESTS = env_int("GUNICORN_MAX_REQUESTS", 0)
GUNICORN_ACCESS_LOG = env.str("GUNICORN_ACCESS_LOG", default="-")
GUNICORN_LOG_LEVEL = env.str("GUNICORN_LOG_LEVEL", default="info")

# --- Logging ------------------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.middleware.RequestIdLogFilter"},
        # A dependency outage is logged once per interval with a count, not a traceback per request.
        "outages": {"()": "core.dependencies.OutageLogFilter"},
        # Credential-URL secrets (osscu_…) never reach a log line, whoever logs the path.
        "redact_secrets": {"()": "core.redaction.RedactSecretsLogFilter"},
        # Nor the SDKs' request URLs and bodies (OIDC tokens, security tokens, signatures, secrets).
        "redact_cloud_secrets": {"()": "core.redaction.CloudSecretsLogFilter"},
        # Nor does any query string (signed URLs, tokens a client put there).
        "no_query_string": {"()": "core.middleware.QueryStringLogFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["outages", "request_id", "redact_secrets", "no_query_string"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own handlers for these (a DEBUG-only console, runserver's request lines) are dropped:
    # each line goes once through the console handler above, with its request id and filters.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
        "axes": {
            "level": "WARNING"
        },  # not an INFO line on every logout ("Cleaned up 0 expired access attempts")
        # Alibaba's SDKs log through loggers of their own, each with its own stderr handler (removed here,
        # and again by aliyun/credentials.py once they are imported, since their import adds it back):
        # a failed refresh of the server's credentials logs the request URL with OIDCToken=,
        # SecurityToken= and Signature=, and DEBUG=sdk dumps headers. Warnings only, secrets cut out.
        **{
            name: {"level": "WARNING", "handlers": [], "filters": ["redact_cloud_secrets"]}
            for name in ("credentials", "alibabacloud-tea", "darabonba-core")
        },
    },
}
