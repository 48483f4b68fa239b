"""The account's AssumeRole budget, shared by every instance: at most ``ALIYUN_STS_MAX_CALLS_PER_SECOND``
calls in any second, taken before each call (``sts_call_admit``).

Alibaba limits AssumeRole to 100 calls per second per account, all RAM users and roles together
(Alibaba's notice "Request Limit Upgrade of STS AssumeRole API", and RAM's "FAQ about RAM roles and
STS tokens"); past it STS answers ``Throttling.User``. Whether STS counts calendar seconds or any
sliding second is not documented, so the budget is a sliding log, the stricter reading: a call is
admitted only when fewer than N calls were admitted in the trailing window, so no second, however
it is cut, holds more than N. A token bucket would not do: a full bucket of N plus N refilled
within the next second is 2N in one sliding second. ``limits`` (the rate limiter the throttles use)
has no token bucket, and its moving window takes each client's clock and whole-second windows, so
the log here is a small Lua script on Redis's own clock (``TIME``): instances whose clocks differ
still share one timeline, and the window is a second plus ``GUARD_SECONDS`` for the time between
admitting a call and its arrival at STS.

Without Redis (the SQLite development set-up, or while Redis is down) each process keeps a log of
its own: the whole budget on the local-memory cache (one process), and its share
(``core.dependencies.process_share``) while a configured Redis is unreachable.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache

from core.dependencies import process_share, redis_breaker, redis_configured

WINDOW_SECONDS = 1.0
# How far apart the times from admission to arrival at STS may be (STS counts on arrival): with 0.1 s a
# saturated machine (the bench's cold-start herd on 2 cores) let the sandbox see 52-56 calls in one
# second for a budget of 50; 0.25 s costs a fifth of the budget's throughput (50 per 1.25 s).
GUARD_SECONDS = 0.25
BACKGROUND_SHARE = 0.8  # background refreshes leave this much of the budget's top to waiting users

# KEYS[1]: the log (a list, newest first, of admission times in microseconds of Redis's clock).
# ARGV[1]: how many calls this caller lets the window hold; ARGV[2]: the window (µs); ARGV[3]: how
# many entries to keep (the full budget). Returns 0 when admitted, else µs until a slot frees up.
_SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local nth = redis.call('LINDEX', KEYS[1], limit - 1)
if nth and now - tonumber(nth) < window then
  return tonumber(nth) + window - now
end
redis.call('LPUSH', KEYS[1], now)
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
"""


class _ProcessLog:
    """The same sliding log in this process's memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque()

    def admit(self, *, limit: int, keep: int, window: float) -> float:
        now = time.monotonic()
        with self._lock:
            while len(self._times) > keep:
                self._times.pop()
            if len(self._times) >= limit:
                nth = self._times[limit - 1]
                if now - nth < window:
                    return nth + window - now
            self._times.appendleft(now)
            while len(self._times) > keep:
                self._times.pop()
            return 0.0

    def clear(self) -> None:
        with self._lock:
            self._times.clear()


_process_log = _ProcessLog()


@cache
def _script(location: str) -> Any:
    from django_redis import get_redis_connection

    return get_redis_connection("default").register_script(_SLIDING_LOG)


def _shared_admit(*, limit: int, keep: int, window: float) -> float:
    waited_us = _script(settings.REDIS_URL)(
        keys=[shared_cache.make_key("uploads:sts-budget")],
        args=[limit, int(window * 1_000_000), keep],
    )
    return int(waited_us) / 1_000_000


def _admit_once(budget: int, share: float) -> float:
    """0 when a call is admitted now, else seconds until the log may have room."""
    window = WINDOW_SECONDS + GUARD_SECONDS
    if not redis_configured():
        return _process_log.admit(limit=max(1, int(budget * share)), keep=budget, window=window)

    def local() -> float:
        own = process_share(budget, round_up=False)
        return _process_log.admit(limit=max(1, int(own * share)), keep=own, window=window)

    return redis_breaker.call(
        lambda: _shared_admit(limit=max(1, int(budget * share)), keep=budget, window=window), local
    )


def sts_call_admit(*, deadline: float, background: bool = False) -> bool:
    """Take one AssumeRole call from the budget, waiting for a slot until ``deadline`` (a
    ``time.monotonic()`` value); False when none came in time (nothing was taken).

    ``background``: a refresh nobody waits for tries once, and only while the window is less than
    ``BACKGROUND_SHARE`` full, so users who hold nothing usable go first.
    """
    budget = settings.ALIYUN_STS_MAX_CALLS_PER_SECOND
    if budget <= 0:
        return True
    share = BACKGROUND_SHARE if background else 1.0
    while True:
        wait = _admit_once(budget, share)
        if wait <= 0:
            return True
        if background or time.monotonic() + wait > deadline:
            return False
        # Waiters wake at slightly different times, so they do not all ask for the same slot.
        time.sleep(wait + random.uniform(0, 0.02))


def sts_budget_clear() -> None:
    """Forget the calls counted so far (tests)."""
    _process_log.clear()
    if redis_configured():
        redis_breaker.call(lambda: shared_cache.delete("uploads:sts-budget"), lambda: None)
