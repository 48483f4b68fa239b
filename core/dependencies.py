"""Shared dependencies that fail: a breaker for Redis, per-process shares of shared limits, and log
lines about an outage that come once per interval with a count instead of a traceback per request.

Redis holds state every instance shares (cached credentials, the single-flight locks, rate-limit
windows, the STS budget). When a call to it fails, ``redis_breaker`` opens for ``OPEN_SECONDS``:
callers skip Redis and use their per-process stand-in (``Breaker.call``'s ``fallback``) at once,
instead of each waiting for a timeout; after that the next call tries Redis again. Nothing here
raises: a request never fails because Redis did.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status

logger = logging.getLogger(__name__)

T = TypeVar("T")
OPEN_SECONDS = 1.0  # how long a failed call keeps a dependency skipped
LOG_INTERVAL_SECONDS = 60.0  # an ongoing outage is summarised this often


@cache
def redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis call raises: redis-py's errors (the rate limiter and the STS budget call
    redis-py directly), django-redis's ``ConnectionInterrupted`` (the cache), socket errors."""
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    return (RedisError, ConnectionInterrupted, OSError)


class Breaker:
    """Skips a dependency for ``open_seconds`` after a call to it failed; thread-safe, per process.

    The outage is logged as it starts (the exception's class only: messages may name hosts), then at
    most once per ``log_interval_seconds`` with the number of failed and skipped calls, and once
    when the dependency answers again, with how long it was away.
    """

    def __init__(
        self,
        name: str,
        errors: Callable[[], tuple[type[BaseException], ...]],
        *,
        open_seconds: float = OPEN_SECONDS,
        log_interval_seconds: float = LOG_INTERVAL_SECONDS,
    ) -> None:
        self.name = name
        self._errors = errors
        self.open_seconds = open_seconds
        self.log_interval_seconds = log_interval_seconds
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._down_since: float | None = None
        self._recovered_at = float("-inf")  # when the last outage ended (monotonic)
        self._logged_at = 0.0
        self._failed = 0  # calls that failed since the last log line
        self._skipped = 0  # calls that used the stand-in without trying, since the last log line

    @property
    def down(self) -> bool:
        """Whether the last call failed and none has succeeded since."""
        return self._down_since is not None

    def recovered_within(self, seconds: float) -> bool:
        """Whether the dependency came back from an outage less than ``seconds`` ago."""
        return time.monotonic() - self._recovered_at < seconds

    def available(self) -> bool:
        """False while the breaker is open (a call failed less than ``open_seconds`` ago)."""
        if time.monotonic() >= self._open_until:
            return True
        with self._lock:
            self._skipped += 1
        return False

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._open_until = now + self.open_seconds
            self._failed += 1
            if self._down_since is None:
                self._down_since = self._logged_at = now
                self._failed = self._skipped = 0
                line = (
                    "%s unavailable (%s): per-process stand-ins in use, retried every %.0f s",
                    self.name,
                    type(exc).__name__,
                    self.open_seconds,
                )
            elif now - self._logged_at >= self.log_interval_seconds:
                line = (
                    "%s still unavailable after %.0f s (%s): %d failed and %d skipped calls in the last %.0f s",
                    self.name,
                    now - self._down_since,
                    type(exc).__name__,
                    self._failed,
                    self._skipped,
                    now - self._logged_at,
                )
                self._logged_at, self._failed, self._skipped = now, 0, 0
            else:
                return
        logger.warning(*line)

    def succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            away = time.monotonic() - self._down_since
            failed, skipped = self._failed, self._skipped
            self._down_since, self._open_until, self._failed, self._skipped = None, 0.0, 0, 0
            self._recovered_at = time.monotonic()
        logger.warning(
            "%s available again after %.1f s (%d failed and %d skipped calls since the last line)",
            self.name,
            away,
            failed,
            skipped,
        )

    def call(self, operation: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``operation()``, or ``fallback()`` when the dependency is skipped or the call fails."""
        if not self.available():
            return fallback()
        try:
            result = operation()
        except self._errors() as exc:
            self.failed(exc)
            return fallback()
        self.succeeded()
        return result

    def reset(self) -> None:
        """Close the breaker and forget the outage (tests)."""
        with self._lock:
            self._down_since, self._open_until, self._failed, self._skipped = None, 0.0, 0, 0
            self._recovered_at = float("-inf")


redis_breaker = Breaker("Redis", redis_errors)


def redis_configured() -> bool:
    """Whether shared state lives in Redis (``REDIS_URL``) rather than in each process."""
    return bool(settings.REDIS_URL)


def process_count() -> int:
    """How many processes serve the app together: ``GUNICORN_WORKERS x APP_INSTANCES`` (at least 1)."""
    return max(1, settings.GUNICORN_WORKERS) * max(1, settings.APP_INSTANCES)


def process_share(limit: int, *, round_up: bool = True) -> int:
    """This process's share of a limit that Redis normally enforces for every process together:
    ``limit / process_count()``, at least 1, rounded up (a per-user rate limit: never stricter than
    needed) or down (the STS budget: never above it). Used while Redis is unreachable, so the
    processes together stay within ``limit`` (when APP_INSTANCES is right)."""
    processes = process_count()
    return max(1, math.ceil(limit / processes) if round_up else limit // processes)


# --- answers ------------------------------------------------------------------------------------

DATABASE_RETRY_AFTER_SECONDS = 5


class DependencyUnavailable(exceptions.APIException):
    """503 with a stable code and Retry-After: a dependency (the database, Redis) did not answer.

    An ``APIException``, so it may be raised where DRF only expects those (authentication) and DRF
    still treats the request as unauthenticated; ``wait`` becomes the Retry-After header.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "database_unavailable"
    default_detail = _("The database is unavailable; try again shortly.")

    def __init__(self, detail: Any = None, code: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, code)
        self.wait = retry_after


def database_unavailable() -> DependencyUnavailable:
    return DependencyUnavailable(retry_after=DATABASE_RETRY_AFTER_SECONDS)


# --- log lines ------------------------------------------------------------------------------------


def _dependency_errors() -> tuple[type[BaseException], ...]:
    return (DatabaseError, *redis_errors())


@dataclass
class _Kind:
    passed_at: float
    suppressed: int = 0


class OutageLogFilter(logging.Filter):
    """Lines about a dependency outage pass once per ``interval`` per kind, without a traceback.

    A kind is a logger and an exception class (a record whose exception is a database or Redis
    error), or a logger and status 503 (``django.request``'s line for each such answer). The first
    line of a kind passes, naming the exception's class (never its message, which may name hosts);
    the next ones within the interval are counted, and the count rides on the next line that passes.
    Other lines pass untouched. On the console handler, first (config/settings/base.py).
    """

    interval = LOG_INTERVAL_SECONDS

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, _dependency_errors()):
            kind = (record.name, type(exc).__name__)
        elif getattr(record, "status_code", None) == 503:
            kind = (record.name, "503")
        else:
            return True
        now = time.monotonic()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen.passed_at < self.interval:
                seen.suppressed += 1
                return False
            suppressed = seen.suppressed if seen is not None else 0
            if len(self._kinds) > 1000:
                self._kinds.clear()
            self._kinds[kind] = _Kind(passed_at=now)
        message = record.getMessage()
        if exc is not None:
            message += f" ({type(exc).__name__})"
        if suppressed:
            message += f" [{suppressed} more like it in the last {self.interval:.0f} s]"
        record.msg, record.args = message, ()
        record.exc_info, record.exc_text = None, None
        return True
