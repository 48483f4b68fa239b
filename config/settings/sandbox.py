"""The local sandbox (``python manage.py sandbox``): a stand-in for Alibaba Cloud STS, RAM and OSS on the
two ALIYUN_*_ENDPOINTs, for development and tests only. Production never installs it."""

from pathlib import Path

from .base import BASE_DIR, INSTALLED_APPS, env, env_int

INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]

SANDBOX_DATA_DIR = Path(env.str("SANDBOX_DATA_DIR", default=str(BASE_DIR / "var" / "sandbox")))
SANDBOX_ROLE_POLICY = env.json("SANDBOX_ROLE_POLICY", default=None)
SANDBOX_ROLE_MAX_SESSION_DURATION = env_int("SANDBOX_ROLE_MAX_SESSION_DURATION", 3600)
# Origins the sandbox bucket answers CORS for until a CORS rule is applied to it; "*" allows any.
SANDBOX_CORS_ALLOWED_ORIGINS = env.list("SANDBOX_CORS_ALLOWED_ORIGINS", default=[])
# Where the sandbox pushes OSS event notifications as MNS does (empty: nowhere), and in which
# format: "xml" (with the topic's metadata) or "simplified" (the bare message).
SANDBOX_EVENT_ENDPOINT = env.str("SANDBOX_EVENT_ENDPOINT", default="")
SANDBOX_EVENT_FORMAT = env.str("SANDBOX_EVENT_FORMAT", default="xml")
