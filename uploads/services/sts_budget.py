"""The account's AssumeRole budget, shared by every instance: at most ``ALIYUN_STS_MAX_CALLS_PER_SECOND``
calls reach STS in any second. Each call takes a slot before it is made (``sts_call_admit``) and gives it
back once it has returned (``sts_call_done``).

Alibaba limits AssumeRole to 100 calls per second per account, all RAM users and roles together
(Alibaba's notice "Request Limit Upgrade of STS AssumeRole API", and RAM's "FAQ about RAM roles and
STS tokens"); past it STS answers ``Throttling.User``. Whether STS counts calendar seconds or any
sliding second is not documented, so the budget holds for every second however it is cut, and it
holds for the time a call *arrives* at STS, which this server cannot see: it lies somewhere between
admitting the call and the call returning, and on a busy machine that gap is long (a thread admitted
now may send its request hundreds of milliseconds later). So a call counts from its admission, through
the whole call, until a second after it returned: a new call is admitted only while fewer than N calls
are in flight or returned less than a second ago. Then of the calls arriving within any one second,
the last one admitted saw all the others counted (each had been admitted before it and returned after
that second began), so there are at most N. A token bucket would not do (a full bucket of N plus N
refilled within the next second is 2N in one sliding second), nor would a window on admissions alone
(the arrivals of two admission windows can bunch into one second). ``limits`` (the rate limiter the
throttles use) has neither this nor a token bucket, so the log is a small Lua script on a Redis sorted
set, on Redis's own clock (``TIME``): instances whose clocks differ still share one timeline. A call's
entry is scored with when it stops counting: while it is in flight, its admission plus the longest a
call may take (so an instance that dies mid-call frees the slot in time), then its return plus a second.

Without Redis (the SQLite development set-up, or while Redis is down) each process keeps a log of
its own: the whole budget on the local-memory cache (one process), and its share
(``core.dependencies.process_share``) while a configured Redis is unreachable.

The two switches are where the processes disagree about which log counts, so each is covered:

- Losing Redis: calls admitted there by any process in the last second are unknown to the local
  logs, and some may still be on their way to STS, so a process that finds Redis gone admits nothing
  for ``LOSS_HOLD_SECONDS`` (two windows) from that moment.
- Getting Redis back: a process comes back when its breaker next lets it try (``OPEN_SECONDS``), so
  for a while some count in Redis and others still count alone, each up to its share. A process
  that was counting alone (or whose breaker saw the outage on any call) writes its calls into Redis
  and marks the log as recovering for
  ``RECOVERY_SECONDS``; meanwhile admissions through Redis leave room for every other process's
  share (``recovering_limit``), so the two kinds of log together never pass the budget.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import cache as shared_cache

from aliyun.deadlines import sts_call_deadline_seconds
from core.dependencies import OPEN_SECONDS, process_count, process_share, redis_breaker, redis_configured

WINDOW_SECONDS = 1.0
# After a process that counted alone is back on Redis, the others are back within their breaker's
# OPEN_SECONDS, and what they counted alone stops counting a window later; a second to spare.
RECOVERY_SECONDS = OPEN_SECONDS + WINDOW_SECONDS + 1.0
# After finding Redis gone: a window, plus a second for calls admitted there that are still on their way.
LOSS_HOLD_SECONDS = 2 * WINDOW_SECONDS
BACKGROUND_SHARE = 0.8  # background refreshes leave this much of the budget's top to waiting users
_POLL_SECONDS = 0.02  # how often a waiter looks again while every slot is held by a call in flight

# KEYS[1]: the sorted set of calls (member: a ticket; score: µs of Redis's clock until which it counts);
# KEYS[2]: present while the log is recovering (processes may still be counting alone).
# ARGV: 1 this caller's limit, 2 the window (µs), 3 the ticket, 4 how long a call may take (µs),
# 5 the limit while recovering, 6 "1" when the caller was counting alone (starts a recovery),
# 7 how long a recovery lasts (ms). Returns 0 when admitted, else µs to wait before asking again.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[6] == '1' then
  redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[7]))
end
local limit = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  limit = math.min(limit, tonumber(ARGV[5]))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[4]) + tonumber(ARGV[2])) / 1000) + 1000)
return 0
"""
# Calls this process counted on its own while Redis was away: ARGV pairs of ticket and µs still to count.
_SEED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[i + 1]), ARGV[i])
end
return 0
"""
# A call returned: it counts for one more window from now (only if its ticket is still there).
_DONE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 0
"""


class _ProcessLog:
    """The same log in this process's memory (monotonic clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def admit(self, ticket: str, *, limit: int, window: float, longest: float) -> float:
        now = time.monotonic()
        with self._lock:
            for name in [name for name, until in self._until.items() if until <= now]:
                del self._until[name]
            if len(self._until) >= limit:
                return min(self._until.values()) - now
            self._until[ticket] = now + longest
            return 0.0

    def done(self, ticket: str, *, window: float) -> None:
        with self._lock:
            if ticket in self._until:
                self._until[ticket] = time.monotonic() + window

    def entries(self) -> list[tuple[str, float]]:
        """Every entry that still counts, with the seconds it still counts for (the log keeps them)."""
        now = time.monotonic()
        with self._lock:
            return [(name, until - now) for name, until in self._until.items() if until > now]

    def forget(self, names: list[str]) -> None:
        """Drop these entries (they now count in Redis)."""
        with self._lock:
            for name in names:
                self._until.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


_process_log = _ProcessLog()
_KEY = "uploads:sts-budget"
_RECOVERING_KEY = "uploads:sts-budget:recovering"
# When this process last used the shared log, and when it last found Redis gone (monotonic clock).
_switch = {"shared_at": 0.0, "local_since": 0.0}


@cache
def _scripts(location: str) -> tuple[Any, Any, Any]:
    from django_redis import get_redis_connection

    connection = get_redis_connection("default")
    return (
        connection.register_script(_ADMIT),
        connection.register_script(_DONE),
        connection.register_script(_SEED),
    )


def _longest_call() -> float:
    """How long a call may count while in flight: the SDK's attempts at most, plus a second."""
    return sts_call_deadline_seconds() + 1.0


def _admit_once(ticket: str, budget: int, share: float) -> float:
    """0 when the call is admitted now, else seconds until asking again may succeed."""
    longest = _longest_call()
    if not redis_configured():
        return _process_log.admit(
            ticket, limit=max(1, int(budget * share)), window=WINDOW_SECONDS, longest=longest
        )

    def shared() -> float:
        admit, _done, seed = _scripts(settings.REDIS_URL)
        key = shared_cache.make_key(_KEY)
        # Back from an outage (this process counted alone, or saw Redis fail or come back moments ago,
        # even on other calls): the others may still count alone, so the log is recovering.
        was_alone = (
            _switch["local_since"] > _switch["shared_at"]
            or redis_breaker.down
            or redis_breaker.recovered_within(RECOVERY_SECONDS)
        )
        own = _process_log.entries()
        if own:  # back from an outage: the calls counted here count there too, and only there
            seed(keys=[key], args=[value for name, left in own for value in (name, int(left * 1e6))])
            # Forgotten here only once Redis has them: while it is still away this try fails, and
            # the calls go on counting in this process's log.
            _process_log.forget([name for name, _left in own])
        waited_us = admit(
            keys=[key, shared_cache.make_key(_RECOVERING_KEY)],
            args=[
                max(1, int(budget * share)),
                int(WINDOW_SECONDS * 1e6),
                ticket,
                int(longest * 1e6),
                max(1, int(recovering_limit(budget) * share)),
                "1" if was_alone or own else "0",
                int(RECOVERY_SECONDS * 1000),
            ],
        )
        _switch["shared_at"] = time.monotonic()
        return int(waited_us) / 1e6

    def local() -> float:
        now = time.monotonic()
        if _switch["local_since"] <= _switch["shared_at"]:  # Redis just went away: from now on, alone
            _switch["local_since"] = now
        # Calls admitted in Redis until it went away are unknown here, and some are still on their way
        # to STS (a call counts until a window after it returns): none for LOSS_HOLD_SECONDS.
        hold = _switch["local_since"] + LOSS_HOLD_SECONDS - now
        if hold > 0:
            return hold
        own = process_share(budget, round_up=False)
        return _process_log.admit(
            ticket, limit=max(1, int(own * share)), window=WINDOW_SECONDS, longest=longest
        )

    return redis_breaker.call(shared, local)


def recovering_limit(budget: int) -> int:
    """How many calls may count in Redis while the log is recovering: the budget less every other
    process's share (each may still be counting alone), at least 1."""
    return max(1, budget - (process_count() - 1) * process_share(budget, round_up=False))


def sts_call_admit(*, deadline: float, background: bool = False) -> str | None:
    """A slot for one AssumeRole call, waiting for one until ``deadline`` (a ``time.monotonic()``
    value): its ticket, to hand to ``sts_call_done`` once the call has returned (whatever its
    outcome), or None when no slot came in time (nothing was taken).

    ``background``: a refresh nobody waits for tries once, and only while the budget is less than
    ``BACKGROUND_SHARE`` used, so users who hold nothing usable go first.
    """
    budget = settings.ALIYUN_STS_MAX_CALLS_PER_SECOND
    if budget <= 0:
        return ""
    ticket = uuid.uuid4().hex
    share = BACKGROUND_SHARE if background else 1.0
    while True:
        wait = _admit_once(ticket, budget, share)
        if wait <= 0:
            return ticket
        if background or time.monotonic() + min(wait, _POLL_SECONDS) > deadline:
            return None
        # Waiters wake at slightly different times, so they do not all ask for the same slot.
        time.sleep(min(wait, 0.25) + random.uniform(0, _POLL_SECONDS))


def sts_call_done(ticket: str | None) -> None:
    """The call admitted with ``ticket`` has returned: it counts for one more second, then frees its slot."""
    if not ticket:
        return
    if not redis_configured():
        _process_log.done(ticket, window=WINDOW_SECONDS)
        return

    def shared() -> None:
        _admit, done, _seed = _scripts(settings.REDIS_URL)
        done(keys=[shared_cache.make_key(_KEY)], args=[ticket, int(WINDOW_SECONDS * 1e6)])

    # Redis down: the process's own entry (if the ticket was taken there) is updated; a shared entry
    # keeps counting until its in-flight score runs out, which only errs on the safe side.
    _process_log.done(ticket, window=WINDOW_SECONDS)
    redis_breaker.call(shared, lambda: None)


def sts_budget_clear() -> None:
    """Forget the calls counted so far (tests)."""
    _process_log.clear()
    _switch["shared_at"] = _switch["local_since"] = 0.0
    if redis_configured():
        redis_breaker.call(lambda: shared_cache.delete_many([_KEY, _RECOVERING_KEY]), lambda: None)
