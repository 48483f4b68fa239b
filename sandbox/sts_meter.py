"""The account's AssumeRole budget, as STS enforces it, and the per-second counts that prove a client kept to it.

Alibaba limits AssumeRole to 100 calls per second per account, all RAM users and roles together
(Alibaba's notice "Request Limit Upgrade of STS AssumeRole API", September 2022; RAM's "FAQ about
RAM roles and STS tokens"). Whether STS counts a calendar second or any sliding second is not
documented, so the meter can do either: ``"sliding"`` (the default) refuses a call when N calls
were admitted in the second before it, the stricter reading, so a client that never trips it
stays under the limit under both readings; ``"fixed"`` counts per wall-clock second.

Both figures are kept whatever the mode: the most calls admitted within any sliding second and
within any calendar second, plus a short per-second history, so a benchmark can show its rate.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from typing import Any, Literal

__all__ = ["CALLER_KINDS", "RateWindow", "StsCallMeter"]

RateWindow = Literal["sliding", "fixed"]
# Who signed an STS call: a RAM user's long-term AccessKey, an `STS.` key with its security token,
# or nobody (AssumeRoleWithOIDC is unsigned; the OIDC token is the proof).
CALLER_KINDS = ("long-term", "sts", "oidc")
HISTORY_SECONDS = 300


class StsCallMeter:
    """Admits AssumeRole* calls against a per-second budget and counts them; thread-safe.

    ``max_calls_per_second`` 0 means unlimited (the calls are still counted).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.max_calls_per_second = 0
        self.window: RateWindow = "sliding"
        # Arrival times (monotonic) of admitted calls, sorted: calls may finish their processing, and so
        # be counted, in another order than they arrived.
        self._recent: list[float] = []
        self._history: deque[list[int]] = deque(maxlen=HISTORY_SECONDS)  # [epoch second, admitted, throttled]
        self.reset()

    def reset(self) -> None:
        """Forget counts and history (the limit and window stay)."""
        with self._lock:
            self._recent.clear()
            self._history.clear()
            self.admitted = 0
            self.throttled = 0
            self.max_in_sliding_second = 0
            self.max_in_calendar_second = 0
            self.by_caller = dict.fromkeys(CALLER_KINDS, 0)

    def configure(self, *, max_calls_per_second: int | None = None, window: str | None = None) -> None:
        """Change the limit (>= 0; 0 unlimited) or the window ("sliding" or "fixed"); None keeps it."""
        if max_calls_per_second is not None and max_calls_per_second < 0:
            raise ValueError(f"sts_max_calls_per_second must be >= 0, got {max_calls_per_second}")
        if window is not None and window not in ("sliding", "fixed"):
            raise ValueError(f"sts_rate_window must be 'sliding' or 'fixed', got {window!r}")
        with self._lock:
            if max_calls_per_second is not None:
                self.max_calls_per_second = int(max_calls_per_second)
            if window is not None:
                self.window = window  # type: ignore[assignment]

    def admit(self, caller_kind: str, *, arrived: float | None = None) -> bool:
        """Count one AssumeRole* call that arrived at ``arrived`` (``time.monotonic()``; default now);
        False when it is past the budget (answer it `Throttling`)."""
        now = time.monotonic()
        if arrived is not None:
            now = min(now, arrived)
        second = int(time.time() - (time.monotonic() - now))
        with self._lock:
            newest = max(now, self._recent[-1]) if self._recent else now
            del self._recent[: bisect.bisect_right(self._recent, newest - 2.0)]  # two seconds are enough
            current = next((row for row in reversed(self._history) if row[0] == second), None)
            if current is None:
                current = [second, 0, 0]
                self._history.append(current)
            limit = self.max_calls_per_second
            if self.window == "fixed":
                over = bool(limit) and current[1] >= limit
            else:  # the calls that arrived within the second before this one
                earlier = bisect.bisect_right(self._recent, now) - bisect.bisect_right(
                    self._recent, now - 1.0
                )
                over = bool(limit) and earlier >= limit
            if over:
                current[2] += 1
                self.throttled += 1
                return False
            bisect.insort(self._recent, now)
            current[1] += 1
            self.admitted += 1
            self.by_caller[caller_kind] = self.by_caller.get(caller_kind, 0) + 1
            # The busiest second that holds this arrival: each [start, start + 1) with start in (now - 1, now].
            window = self._recent[
                bisect.bisect_right(self._recent, now - 1.0) : bisect.bisect_left(self._recent, now + 1.0)
            ]
            busiest = max(
                bisect.bisect_left(window, start + 1.0) - i for i, start in enumerate(window) if start <= now
            )
            self.max_in_sliding_second = max(self.max_in_sliding_second, busiest)
            self.max_in_calendar_second = max(self.max_in_calendar_second, current[1])
            return True

    def snapshot(self) -> dict[str, Any]:
        """The figures for `/__sandbox__/stats` (JSON-ready)."""
        with self._lock:
            return {
                "sts_max_calls_per_second": self.max_calls_per_second,
                "sts_rate_window": self.window,
                "assume_role_calls": self.admitted,
                "rate_throttled": self.throttled,
                "max_calls_in_one_second": self.max_in_sliding_second,
                "max_calls_in_a_calendar_second": self.max_in_calendar_second,
                "calls_by_caller": dict(self.by_caller),
                # [epoch second, admitted, throttled] for the seconds that saw a call, oldest first.
                "calls_per_second": [list(row) for row in self._history],
            }
