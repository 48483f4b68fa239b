"""Probes for the load balancer and the orchestrator.

``/healthz`` (liveness) answers from the process alone, so a database outage does not get every
worker restarted. ``/readyz`` (readiness) takes the instance out of rotation when it could not
serve an issuance: the database, the shared cache or the Alibaba Cloud settings are broken.
Neither calls Alibaba Cloud, and neither reports exception messages or setting values: only
check names, exception classes and system-check ids.

Probes come from the orchestrator with the pod's address as Host, so ``ProbeMiddleware`` answers
them ahead of the ALLOWED_HOSTS check (a probe would get 400 otherwise) and of SecurityMiddleware
(so they are also never redirected to https, which a 301 would count as success without any check).
"""

import logging
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.core.checks import ERROR, run_checks
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

# System checks registered with this tag must pass for the instance to be ready (an app registers its
# settings checks with it, e.g. ``uploads.checks``); probes never import an app.
READINESS_TAG = "readiness"


class CheckFailed(Exception):
    """A readiness check's own verdict, with a reason that is safe to show to anyone."""


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise CheckFailed("unexpected answer to SELECT 1")


def _cache() -> None:
    """A real round trip: a key only this probe knows, written, read back, removed."""
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


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503 naming the checks that failed."""
    results: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except CheckFailed as exc:
            results[name] = f"fail: {exc}"
        except Exception as exc:  # a probe must answer, whatever broke
            results[name] = f"fail: {type(exc).__name__}"
        else:
            results[name] = "ok"
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
