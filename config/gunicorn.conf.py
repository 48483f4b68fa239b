"""gunicorn settings for production: `gunicorn -c config/gunicorn.conf.py config.wsgi`.

Read from the environment (documented in README.md): GUNICORN_BIND, GUNICORN_WORKERS,
GUNICORN_TIMEOUT, GUNICORN_ACCESS_LOG. Sync workers: a request is one database transaction and
at most one STS call, and the STS client is blocking.
"""

import json
import os
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _sts_deadline_seconds() -> int:
    """Mirrors uploads.services._sts_deadline_seconds: all attempts of one AssumeRole call."""
    per_attempt = (
        _int("ALIYUN_STS_CONNECT_TIMEOUT_MS", 2000) + _int("ALIYUN_STS_READ_TIMEOUT_MS", 5000)
    ) / 1000
    return int(_int("ALIYUN_STS_MAX_ATTEMPTS", 3) * (per_attempt + 1.0))


class JsonAccessLogger(Logger):
    """One JSON object per request, with the request id the app echoes; no query string
    (it may carry signatures) and no request headers."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = dict((name.lower(), value) for name, value in resp.headers)
        record = {
            "time": self.now(),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": headers.get("x-request-id", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", "-")[:256],
        }
        self.access_log.info(json.dumps(record))


wsgi_app = "config.wsgi:application"
bind = [address for address in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if address]
workers = _int("GUNICORN_WORKERS", 2)
worker_class = "sync"
# Above the worst case of one request: waiting for another request's STS call to the lock's
# deadline, then making its own (services._fresh_or_cached), plus the database.
timeout = _int("GUNICORN_TIMEOUT", 2 * _sts_deadline_seconds() + 5)
graceful_timeout = 30
keepalive = 5
worker_tmp_dir = "/dev/shm"  # noqa: S108 -- heartbeat files off the disk (slow or read-only in containers)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# Empty disables the access log (e.g. behind a load balancer that logs already).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
logger_class = JsonAccessLogger
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No runtime control socket: unused here, and two instances on one host would share its path.
control_socket_disable = True
