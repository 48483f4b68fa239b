"""Rate limits counted by `limits` (one atomic round trip) decide exactly as DRF's own throttle did."""

import itertools
from types import SimpleNamespace
from unittest import mock

from django.core.cache.backends.locmem import LocMemCache
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rest_framework import throttling

from accounts import throttling as ours

_keys = itertools.count()


class _Fixed:
    """A throttle for one caller (the key), at a given rate."""

    def __init__(self, rate: str, key: str) -> None:
        self.rate, self._key = rate, key
        self.num_requests, self.duration = self.parse_rate(rate)

    def get_cache_key(self, request: object, view: object) -> str:
        return self._key


class Reference(_Fixed, throttling.SimpleRateThrottle):
    """DRF's implementation: a list of timestamps in the cache, read and rewritten."""


class Ours(_Fixed, ours.SimpleRateThrottle):
    pass


@settings(max_examples=60, deadline=None)
@given(
    num_requests=st.integers(min_value=1, max_value=4),
    unit=st.sampled_from(["s", "m"]),
    gaps=st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=30),
)
def test_same_answers_and_retry_after_as_drfs_throttle(num_requests, unit, gaps):
    rate = f"{num_requests}/{unit}"
    duration = 1 if unit == "s" else 60
    times = list(itertools.accumulate(gap / 1000 for gap in gaps))
    # DRF forgets a request exactly `duration` later, `limits` a moment after: no such ties here.
    assume(all(abs((b - a) - duration) > 1e-6 for a, b in itertools.combinations(times, 2)))
    key = f"test-{next(_keys)}"
    reference, candidate = Reference(rate, key), Ours(rate, key)
    reference.cache = LocMemCache(key, {})
    clock = SimpleNamespace(now=1_800_000_000.0)
    fake_time = SimpleNamespace(time=lambda: clock.now)
    reference.timer = fake_time.time
    with (
        mock.patch("limits.storage.memory.time", fake_time),  # the default test run: in process
        mock.patch("limits.storage.redis.time", fake_time),  # with REDIS_URL: the Lua scripts
        mock.patch.object(ours, "time", fake_time),
    ):
        for at in times:
            clock.now = 1_800_000_000.0 + at
            allowed = reference.allow_request(None, None)
            assert candidate.allow_request(None, None) == allowed, f"at {at} s"
            if not allowed:
                assert abs(candidate.wait() - reference.wait()) < 1e-6


def test_a_redis_outage_falls_back_to_this_processs_share_never_unlimited(settings, caplog):
    """Redis unreachable: each process counts on its own, to limit / (workers x instances)."""
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    settings.GUNICORN_WORKERS, settings.APP_INSTANCES = 2, 2
    key = f"test-{next(_keys)}"
    answers = [Ours("8/m", key).allow_request(None, None) for _ in range(10)]
    assert answers == [True, True] + [False] * 8  # 8 / (2 x 2)
    throttle = Ours("8/m", key)
    assert throttle.allow_request(None, None) is False and 0 < throttle.wait() <= 60
    outage_lines = [r for r in caplog.records if r.name == "core.dependencies"]
    assert len(outage_lines) == 1 and outage_lines[0].exc_info is None


def test_concurrent_requests_never_get_past_the_limit():
    """DRF's read-then-rewrite let racing requests overwrite each other's entry; one script cannot."""
    from concurrent.futures import ThreadPoolExecutor

    key = f"test-{next(_keys)}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: Ours("5/m", key).allow_request(None, None), range(40)))
    assert answers.count(True) == 5
