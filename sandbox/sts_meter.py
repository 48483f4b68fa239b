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
        self._recent: deque[float] = deque()  # monotonic times of admitted calls, the last second
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

    def admit(self, caller_kind: str) -> bool:
        """Count one AssumeRole* call; False when it is past the budget (answer it `Throttling`)."""
        now, second = time.monotonic(), int(time.time())
        with self._lock:
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if not self._history or self._history[-1][0] != second:
                self._history.append([second, 0, 0])
            current = self._history[-1]
            limit = self.max_calls_per_second
            if self.window == "fixed":
                over = bool(limit) and current[1] >= limit
            else:
                over = bool(limit) and len(self._recent) >= limit
            if over:
                current[2] += 1
                self.throttled += 1
                return False
            self._recent.append(now)
            current[1] += 1
            self.admitted += 1
            self.by_caller[caller_kind] = self.by_caller.get(caller_kind, 0) + 1
            self.max_in_sliding_second = max(self.max_in_sliding_second, len(self._recent))
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
