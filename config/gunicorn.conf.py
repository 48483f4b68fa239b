"""gunicorn settings for production: `gunicorn -c config/gunicorn.conf.py config.wsgi`.

Values come from config/settings/base.py (GUNICORN_BIND, GUNICORN_WORKERS, GUNICORN_TIMEOUT,
GUNICORN_ACCESS_LOG, …; documented in docs/reference/settings.md), so the environment and .env are read in one place
and a bad production environment stops gunicorn's master with Django's message. Threaded workers
(gthread): an STS call, its backoff or a wait for another request's STS call blocks one thread, not
a whole worker, so a throttling STS does not stall every other request.

Draining: on SIGTERM (to the master, or to the whole process group) the instance first marks itself
as draining, so ``/readyz`` answers 503 while requests are still served, for GUNICORN_DRAIN_SECONDS;
then gunicorn stops as it always does on SIGTERM (no new connections, in-flight requests finish within
``graceful_timeout``). A second SIGTERM skips the rest of the wait. SIGINT/SIGQUIT stop at once.
"""

import json
import os
import signal
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from gunicorn.glogging import Logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from aliyun.deadlines import sts_call_deadline_seconds
from core.health import DRAIN_FILE_ENVIRONMENT
from core.middleware import QueryStringLogFilter
from core.redaction import RedactSecretsLogFilter, redact_secrets


class JsonAccessLogger(Logger):
    """One JSON object per request, with the request id the app echoes; no query string
    (it may carry signatures), no request headers, and credential-URL secrets cut out of the path
    (here and in gunicorn's error log, which names the URI of a request that failed)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if not any(
                isinstance(f, RedactSecretsLogFilter) for f in logger.filters
            ):  # setup runs again on HUP
                logger.addFilter(RedactSecretsLogFilter())
                logger.addFilter(QueryStringLogFilter())  # "Error handling request <uri>" names it

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        headers = dict((name.lower(), value) for name, value in resp.headers)
        record = {
            "time": self.now(),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": redact_secrets(environ.get("PATH_INFO", "")),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": headers.get("x-request-id", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", "-")[:256],
        }
        self.access_log.info(json.dumps(record))


wsgi_app = "config.wsgi:application"
bind = settings.GUNICORN_BIND
workers = settings.GUNICORN_WORKERS
worker_class = "gthread"
threads = settings.GUNICORN_THREADS
# Above the worst case of one request: waiting for its turn in the STS budget, then one STS call
# (uploads/services/reuse.py), plus the database.
timeout = settings.GUNICORN_TIMEOUT or int(
    settings.ALIYUN_STS_QUEUE_SECONDS + sts_call_deadline_seconds() + 5
)
graceful_timeout = max(30, timeout)
keepalive = 5
worker_tmp_dir = "/dev/shm"  # noqa: S108 -- heartbeat files off the disk (slow or read-only in containers)
max_requests = settings.GUNICORN_MAX_REQUESTS
max_requests_jitter = max_requests // 10
# Empty disables the access log (e.g. behind a load balancer that logs already).
accesslog = settings.GUNICORN_ACCESS_LOG or None
logger_class = JsonAccessLogger
errorlog = "-"
loglevel = settings.GUNICORN_LOG_LEVEL
# X-Forwarded-Proto (and gunicorn's other forwarded headers) count only when the app is told a
# TLS-terminating proxy stands in front (DJANGO_SECURE_PROXY_SSL_HEADER): that proxy is then the only
# peer, whatever its address. Otherwise from nobody, not even loopback (gunicorn's default), so no
# client can make a plain-http request look like https. The client address is DRF's business
# (DJANGO_NUM_PROXIES, X-Forwarded-For); gunicorn never rewrites REMOTE_ADDR.
forwarded_allow_ips = "*" if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) else ""
# No runtime control socket: unused here, and two instances on one host would share its path.
control_socket_disable = True


# --- draining (see the module docstring) -------------------------------------------------------------
DRAIN_SECONDS = settings.GUNICORN_DRAIN_SECONDS


def _drain_file() -> Path:
    return Path(os.environ[DRAIN_FILE_ENVIRONMENT])


def on_starting(server: Any) -> None:
    """In the master, before the workers fork: name the drain marker (the workers inherit it)."""
    os.environ[DRAIN_FILE_ENVIRONMENT] = str(Path(tempfile.gettempdir()) / f"ossup-draining-{os.getpid()}")
    _drain_file().unlink(missing_ok=True)


def _drain_then_stop(process: str, log: Any, stop: Any) -> Any:
    """A SIGTERM handler that marks the instance draining and re-sends SIGTERM to this process after
    DRAIN_SECONDS, with ``stop`` (gunicorn's own handler) in place by then."""

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, stop)  # the next SIGTERM (ours, or a second one) stops
        _drain_file().touch()
        if process == "master":
            log.info("SIGTERM: draining for %d s (/readyz answers 503), then stopping", DRAIN_SECONDS)
        timer = threading.Timer(DRAIN_SECONDS, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    return handler


def when_ready(server: Any) -> None:
    if DRAIN_SECONDS > 0:
        signal.signal(
            signal.SIGTERM, _drain_then_stop("master", server.log, signal.getsignal(signal.SIGTERM))
        )


def post_worker_init(worker: Any) -> None:
    """A worker that gets SIGTERM itself (sent to the process group) drains too, instead of stopping."""
    if DRAIN_SECONDS > 0:
        signal.signal(
            signal.SIGTERM, _drain_then_stop("worker", worker.log, signal.getsignal(signal.SIGTERM))
        )


def on_exit(server: Any) -> None:
    _drain_file().unlink(missing_ok=True)
