"""Probes for the load balancer and the orchestrator.

``/healthz`` (liveness) answers from the process alone, so a database outage does not get every
worker restarted. ``/readyz`` (readiness) takes the instance out of rotation when it could not
serve an issuance: the database, the shared cache or the Alibaba Cloud settings are broken.
Neither calls Alibaba Cloud, and neither reports exception messages or setting values: only
check names, exception classes and system-check ids.

Probes come from the orchestrator with the pod's address as Host, so ``ProbeMiddleware`` answers
them ahead of the ALLOWED_HOSTS check (a probe would get 400 otherwise) and of SecurityMiddleware
(so they are also never redirected to https, which a 301 would count as success without any check).

``/readyz`` answers within ``READINESS_TIMEOUT_SECONDS`` whatever hangs: the checks run on a probe
thread of their own, and a check that has not answered by then fails as ``timeout``. It also says
503 ``draining`` from the moment the server was told to stop (SIGTERM: config/gunicorn.conf.py marks
the instance as draining, keeps serving for ``GUNICORN_DRAIN_SECONDS``, then stops gracefully), so
a load balancer stops sending new requests before the server stops taking them.
"""

import logging
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.core.cache import cache
from django.core.checks import ERROR, run_checks
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .dependencies import redis_breaker, redis_configured

logger = logging.getLogger(__name__)

# System checks registered with this tag must pass for the instance to be ready (an app registers its
# settings checks with it, e.g. ``uploads.checks``); probes never import an app.
READINESS_TAG = "readiness"


class CheckFailed(Exception):
    """A readiness check's own verdict, with a reason that is safe to show to anyone."""


READINESS_TIMEOUT_SECONDS = 2.0
# The file whose existence means "draining"; gunicorn's master names it in the environment before it
# forks the workers (config/gunicorn.conf.py), and creates it on SIGTERM.
DRAIN_FILE_ENVIRONMENT = "OSSUP_DRAIN_FILE"


def draining() -> bool:
    """Whether this instance was told to stop and is draining (a stat of one file per probe)."""
    path = os.environ.get(DRAIN_FILE_ENVIRONMENT)
    return bool(path) and os.path.exists(path)


def _database() -> None:
    """A new connection and ``SELECT 1``, closed again: the probe thread holds no connection between
    probes (nothing to go stale, nothing left open when a database is dropped)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            if cursor.fetchone() != (1,):
                raise CheckFailed("unexpected answer to SELECT 1")
    finally:
        connection.close()


def _cache() -> None:
    """A real round trip: a key only this probe knows, written, read back, removed. While the Redis
    breaker is open (a call failed in the last second) it fails without trying."""
    if redis_configured() and not redis_breaker.available():
        raise CheckFailed("unreachable moments ago")
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise CheckFailed("value written was not read back")
    finally:
        cache.delete(key)


def _settings() -> None:
    failing = sorted(message.id for message in run_checks(tags=[READINESS_TAG]) if message.level >= ERROR)
    if failing:
        raise CheckFailed(", ".join(failing))


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "settings": _settings,
}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process serves requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _run(check: Callable[[], None]) -> str:
    try:
        check()
    except CheckFailed as exc:
        return f"fail: {exc}"
    except Exception as exc:  # a probe must answer, whatever broke
        return f"fail: {type(exc).__name__}"
    return "ok"


# One thread per process runs the checks, so a hanging database or Redis holds that thread, not the
# request's: probes queued behind a hung check time out too, until it returns.
_probe_pool: ThreadPoolExecutor | None = None
_probe_pool_pid = 0


def _probe_thread() -> ThreadPoolExecutor:
    global _probe_pool, _probe_pool_pid
    if _probe_pool is None or _probe_pool_pid != os.getpid():
        _probe_pool, _probe_pool_pid = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz"),
            os.getpid(),
        )
    return _probe_pool


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503 naming the checks that failed (or
    ``draining``), within ``READINESS_TIMEOUT_SECONDS``."""
    if draining():
        return JsonResponse({"status": "draining", "checks": {}}, status=503)
    futures = {name: _probe_thread().submit(_run, check) for name, check in READINESS_CHECKS.items()}
    deadline = time.monotonic() + READINESS_TIMEOUT_SECONDS
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = "fail: timeout"
        if results[name] != "ok":
            logger.warning("Readiness check %s failed: %s", name, results[name])
    ready = all(result == "ok" for result in results.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Serves ``/healthz`` and ``/readyz`` before SecurityMiddleware and the ALLOWED_HOSTS check.

    Their answers hold no URL or host-dependent content, so a foreign Host header is harmless here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        return probe(request) if probe is not None else self.get_response(request)
