"""Rate limits: DRF's throttles counted in one atomic Redis round trip, and one login budget per
client address, shared by the JWT endpoint and the HTML login forms."""

import logging
import math
import threading
import time
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

import redis  # noqa: F401 -- imported in full before `limits` looks it up (see _new_limiter)
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies
from rest_framework import throttling

from core.dependencies import process_share, redis_breaker, redis_configured

logger = logging.getLogger(__name__)


_limiter_lock = threading.Lock()


@cache
def _limiter(uri: str) -> strategies.MovingWindowRateLimiter:
    with _limiter_lock:
        return _new_limiter(uri)


def _new_limiter(uri: str) -> strategies.MovingWindowRateLimiter:
    # `limits` finds redis-py in sys.modules and reads its __version__: a request thread that got
    # there while another was still importing it read no version and failed. Hence the import above.
    options: dict[str, Any] = {}
    if not uri.startswith("memory:"):
        # As the cache (config/settings/base.py): a slow or dead Redis costs a request at most the
        # timeout, then the breaker sends the next ones to the per-process limiter straight away.
        timeout = settings.REDIS_TIMEOUT_MS / 1000
        options = {
            "key_prefix": "ossup:throttle",
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
        }
    return strategies.MovingWindowRateLimiter(storage.storage_from_string(uri, **options))


def rate_limiter() -> strategies.MovingWindowRateLimiter:
    """The process's limiter: on the cache's Redis (settings.REDIS_URL), else in process memory."""
    return _limiter(settings.REDIS_URL or "memory://")


def _process_limiter() -> strategies.MovingWindowRateLimiter:
    """The stand-in while Redis is unreachable: this process's memory, counted under its own keys."""
    return _limiter("memory://")


def _hit(limiter: strategies.MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float | None:
    """None when the request is let in (and counted), else when the oldest counted one leaves."""
    if limiter.hit(item, key):
        return None
    return limiter.get_window_stats(item, key).reset_time


class SimpleRateThrottle(throttling.SimpleRateThrottle):
    """DRF's throttle, same rates and semantics, counted by the `limits` library (moving window).

    At most N requests in any trailing window of the rate's duration; a refused request does not
    count; Retry-After is the time until the oldest counted request leaves the window (DRF's
    ``wait()`` once the limit is reached). DRF keeps the window as a pickled list in the cache and
    reads then rewrites it: two Redis round trips per request, and concurrent requests can
    overwrite each other's entry. `limits` checks and records in one Lua script (one round trip,
    atomic). If Redis is unreachable (``core.dependencies.redis_breaker``), each process counts on
    its own, to its share of the limit (``process_share``: N / (workers x APP_INSTANCES)), so the
    limit still holds across the processes, never unlimited; the outage is logged by the breaker.
    """

    _reset_at = 0.0

    def allow_request(self, request: HttpRequest, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        key, duration = self.key, self.duration

        def on_this_process() -> float | None:
            share = RateLimitItemPerSecond(process_share(self.num_requests), duration)
            return _hit(_process_limiter(), share, key)

        if redis_configured():
            item = RateLimitItemPerSecond(self.num_requests, duration)
            reset_at = redis_breaker.call(lambda: _hit(rate_limiter(), item, key), on_this_process)
        else:
            reset_at = _hit(rate_limiter(), RateLimitItemPerSecond(self.num_requests, duration), key)
        if reset_at is None:
            return True
        self._reset_at = reset_at
        return False

    def wait(self) -> float:
        return max(0.0, self._reset_at - time.time())


class ScopedRateThrottle(throttling.ScopedRateThrottle, SimpleRateThrottle):
    """DRF's ScopedRateThrottle (``throttle_scope`` on the view) counted as ``SimpleRateThrottle``."""


def rate_limits_clear() -> None:
    """Forget every request counted so far (tests start from nothing, like the cache)."""
    _process_limiter().storage.reset()
    redis_breaker.call(lambda: rate_limiter().storage.reset(), lambda: None)


class LoginRateThrottle(SimpleRateThrottle):
    """Same scope and cache key as DRF's ScopedRateThrottle with ``throttle_scope = "login"``."""

    scope = "login"

    def get_cache_key(self, request: HttpRequest, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_login_posts(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a Django login view (ours, the admin's) so password guessing hits the same limit."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method == "POST":
            throttle = LoginRateThrottle()
            if not throttle.allow_request(request, None):
                wait = math.ceil(throttle.wait() or 1)
                response = render(request, "registration/throttled.html", {"wait": wait}, status=429)
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapped
