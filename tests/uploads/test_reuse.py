"""Token reuse: one AssumeRole call per user (across processes and instances), refreshed ahead in the
background, with bounded waiting on STS (the bulkhead) and the account's STS budget."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from aliyun import sts
from core.dependencies import OPEN_SECONDS, redis_breaker
from uploads.services import reuse, sts_budget
from uploads.services.reuse import session_policy_build


def _call(user_id: int, *, duration: int = 3600) -> reuse._Call:
    policy = session_policy_build(user_id=user_id)
    return reuse._Call(
        key=reuse._cache_key(user_id, policy, duration_seconds=duration),
        session_name=f"user-{user_id}",
        policy=policy,
        duration_seconds=duration,
    )


def _issued(sandbox) -> int:
    return sandbox.config.faults.snapshot()["issued"]


def test_concurrent_requests_of_one_user_share_one_sts_call(sandbox, settings):
    sandbox.config.faults.configure(latency_ms=300)  # every waiter arrives while the first call is in flight
    settings.ALIYUN_STS_WAITERS_PER_PROCESS = 8
    call = _call(42)
    before = _issued(sandbox)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: reuse._fresh_or_cached(call), range(8)))

    assert _issued(sandbox) - before == 1
    assert len({result.credentials.access_key_id for result in results}) == 1
    assert sorted(result.reused for result in results) == [False] + [True] * 7


def test_different_users_do_not_share_credentials(sandbox, settings):
    keys = {}
    for user_id in (1, 2):
        result = reuse._fresh_or_cached(_call(user_id))
        keys[user_id] = result.credentials.access_key_id
        assert not result.reused
    assert keys[1] != keys[2]


def test_cached_credentials_are_encrypted_at_rest(sandbox, settings):
    call = _call(5)
    credentials = reuse._fresh_or_cached(call).credentials
    blob = cache.get(call.key)
    assert credentials.access_key_secret.encode() not in blob
    assert credentials.security_token.encode() not in blob


def test_a_shorter_lifetime_has_keys_of_its_own_and_is_reused(sandbox, settings):
    short, default = _call(6, duration=900), _call(6)
    assert short.key != default.key and short.margin == 450
    first = reuse._fresh_or_cached(short)
    second = reuse._fresh_or_cached(short)
    assert (first.reused, second.reused) == (False, True)
    remaining = (first.credentials.expiration - datetime.now(UTC)).total_seconds()
    assert 850 < remaining <= 900


# --- the bulkhead -----------------------------------------------------------------------------------


def test_past_the_bulkhead_a_request_that_needs_sts_is_busy_at_once(sandbox, settings):
    """Two threads wait on a slow STS; a third user's request is answered sts_busy without waiting."""
    settings.ALIYUN_STS_WAITERS_PER_PROCESS = 2
    sandbox.config.faults.configure(latency_ms=800)
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = [pool.submit(reuse._fresh_or_cached, _call(user_id)) for user_id in (71, 72)]
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(sts.StsError) as refused:
            reuse._fresh_or_cached(_call(73))
        assert time.monotonic() - started < 0.1
        assert [future.result().reused for future in waiting] == [False, False]
    assert refused.value.code == "sts_busy" and refused.value.retry_after >= 1


def test_reused_hand_outs_never_queue_behind_a_slow_sts(sandbox, settings):
    """With every STS slot taken, users whose credentials are cached get them at once."""
    settings.ALIYUN_STS_WAITERS_PER_PROCESS = 1
    ready = reuse._fresh_or_cached(_call(81))
    sandbox.config.faults.configure(latency_ms=1000)
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(reuse._fresh_or_cached, _call(82))
        time.sleep(0.1)
        started = time.monotonic()
        again = reuse._fresh_or_cached(_call(81))
        assert time.monotonic() - started < 0.05
        slow.result()
    assert again.reused and again.credentials == ready.credentials


# --- refresh ahead and single flight --------------------------------------------------------------


def _due(call: reuse._Call, sandbox, settings) -> sts.StsCredentials:
    """Cache credentials for ``call`` that have 800 s left: under the 900 s margin, above the floor."""
    credentials = reuse._fresh_or_cached(call).credentials
    old = sts.StsCredentials(
        access_key_id="STS.old",
        access_key_secret=credentials.access_key_secret,
        security_token=credentials.security_token,
        expiration=datetime.now(UTC) + timedelta(seconds=800),
        request_id="old",
    )
    reuse.local_credentials_clear()
    cache.clear()
    reuse._cache_set(call.key, old)
    return old


def test_one_background_refresh_per_user_however_many_requests(sandbox, settings):
    call = _call(91)
    old = _due(call, sandbox, settings)
    sandbox.config.faults.configure(latency_ms=200)
    before = _issued(sandbox)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: reuse._fresh_or_cached(call), range(32)))
    reuse.refreshes_wait()

    assert {r.credentials.access_key_id for r in results} == {old.access_key_id}
    assert _issued(sandbox) - before == 1
    assert reuse._fresh_or_cached(call).credentials.access_key_id != old.access_key_id


def test_a_refresh_another_instance_just_finished_is_not_repeated(sandbox, settings):
    """The lock is taken, then the cache read again: credentials stored meanwhile end the refresh."""
    call = _call(92)
    _due(call, sandbox, settings)
    fresh = reuse._fresh_or_cached(_call(93)).credentials  # any credentials with a full hour left
    before = _issued(sandbox)
    # As another instance: it held the lock, stored new credentials and let go, after this process
    # read the old ones.
    original = reuse._shared_lock_take

    def take_after_another_refreshed(key: str, owner: str):
        reuse._shared_set(call.key, reuse._fernet().encrypt(_blob(fresh)), 3000)
        return original(key, owner)

    reuse._shared_lock_take = take_after_another_refreshed
    try:
        reuse._refresh(call)
    finally:
        reuse._shared_lock_take = original
    assert _issued(sandbox) == before


def _blob(credentials: sts.StsCredentials) -> bytes:
    import json
    from dataclasses import asdict

    return json.dumps(asdict(credentials) | {"expiration": credentials.expiration.isoformat()}).encode()


def test_a_refresh_held_by_another_instance_is_left_to_it(sandbox, settings):
    call = _call(94)
    _due(call, sandbox, settings)
    before = _issued(sandbox)
    assert cache.add(f"{call.key}:lock", "another-instance", timeout=30)
    reuse._refresh(call)
    assert _issued(sandbox) == before


def test_the_cut_off_moving_drops_the_cached_credentials(sandbox, settings):
    policy = session_policy_build(user_id=95)
    before = reuse._cache_key(95, policy, cutoff=None)
    after = reuse._cache_key(95, policy, cutoff=datetime.now(UTC))
    assert before != after


# --- the STS budget --------------------------------------------------------------------------------


def test_the_budget_admits_at_most_n_calls_then_frees_a_slot_a_second_after_one_returned(settings):
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 5
    sts_budget.sts_budget_clear()
    now = time.monotonic()
    tickets = [sts_budget.sts_call_admit(deadline=now) for _ in range(8)]
    assert [bool(t) for t in tickets] == [True] * 5 + [False] * 3
    assert sts_budget.sts_call_admit(deadline=time.monotonic() + 0.3) is None  # all five still in flight
    for ticket in tickets[:5]:
        sts_budget.sts_call_done(ticket)
    started = time.monotonic()
    assert sts_budget.sts_call_admit(deadline=started + 2)  # a slot frees up a second after a return
    assert 0.8 < time.monotonic() - started < 1.5


def test_background_refreshes_leave_the_top_of_the_budget_to_waiting_users(settings):
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 10
    sts_budget.sts_budget_clear()
    now = time.monotonic()
    background = [sts_budget.sts_call_admit(deadline=now, background=True) for _ in range(10)]
    assert sum(1 for t in background if t) == 8
    assert [bool(sts_budget.sts_call_admit(deadline=now)) for _ in range(3)] == [True, True, False]


def test_a_budget_of_zero_admits_everything(settings):
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 0
    assert all(sts_budget.sts_call_admit(deadline=0) is not None for _ in range(500))


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(min_value=1, max_value=5),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400),  # ms until the next call is asked for
            st.integers(min_value=1, max_value=3000),  # ms the call takes
            st.floats(min_value=0, max_value=1),  # where in the call it reaches STS
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_however_late_calls_reach_sts_no_second_holds_more_than_n(limit, steps):
    """Calls arrive at STS anywhere between admission and return; no one-second window of arrivals,
    however it is cut, holds more than the budget."""
    log = sts_budget._ProcessLog()
    clock = [1000.0]
    original = sts_budget.time.monotonic
    sts_budget.time.monotonic = lambda: clock[0]
    arrivals: list[float] = []
    in_flight: list[tuple[float, str]] = []
    try:
        for index, (gap, duration, where) in enumerate(steps):
            now = clock[0] + gap / 1000
            for returned, ticket in sorted(in_flight):
                if returned <= now:
                    clock[0] = returned
                    log.done(ticket, window=1.0)
                    in_flight.remove((returned, ticket))
            clock[0] = now
            if log.admit(f"call-{index}", limit=limit, window=1.0, longest=10.0) == 0:
                returned = now + duration / 1000
                in_flight.append((returned, f"call-{index}"))
                arrivals.append(now + where * (returned - now))
    finally:
        sts_budget.time.monotonic = original
    for at in arrivals:
        assert sum(1 for other in arrivals if at <= other < at + 1.0) <= limit


def test_calls_beyond_the_budget_wait_their_turn_then_get_busy(sandbox, settings):
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 2
    settings.ALIYUN_STS_QUEUE_SECONDS = 0
    settings.ALIYUN_STS_WAITERS_PER_PROCESS = 8
    sts_budget.sts_budget_clear()
    outcomes = []
    for user_id in range(101, 105):
        try:
            reuse._fresh_or_cached(_call(user_id))
            outcomes.append("ok")
        except sts.StsError as exc:
            outcomes.append(exc.code)
    assert outcomes == ["ok", "ok", "sts_busy", "sts_busy"]


@pytest.mark.slow
def test_a_herd_of_new_users_stays_within_the_budget_at_the_sandbox(sandbox, settings):
    """60 new users at once, budget 20/s: the sandbox never sees more than 20 calls in a second and
    never answers Throttling; each user is served or told sts_busy with Retry-After."""
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 20
    settings.ALIYUN_STS_WAITERS_PER_PROCESS = 16
    settings.ALIYUN_STS_QUEUE_SECONDS = 2
    sts_budget.sts_budget_clear()
    faults = sandbox.config.faults
    faults.configure(sts_max_calls_per_second=100)
    faults.meter.reset()
    outcomes: list[str] = []
    lock = threading.Lock()

    def user(user_id: int) -> None:
        try:
            reuse._fresh_or_cached(_call(user_id))
            outcome = "ok"
        except sts.StsError as exc:
            assert exc.code == "sts_busy" and exc.retry_after >= 1
            outcome = "busy"
        with lock:
            outcomes.append(outcome)

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(user, range(1000, 1060)))
        figures = faults.snapshot()
    finally:
        faults.configure(sts_max_calls_per_second=0)
    assert figures["max_calls_in_one_second"] <= 20
    assert figures["rate_throttled"] == 0
    assert outcomes.count("ok") >= 40 and len(outcomes) == 60


# --- the STS budget when Redis goes and comes back ---------------------------------------------------

DEAD_REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port


def _redis_at(settings, url: str) -> None:
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


def test_a_process_that_finds_redis_gone_admits_nothing_for_a_window(settings):
    """Calls other processes admitted in Redis just before it went are unknown here: the first call
    after finding Redis gone waits LOSS_HOLD_SECONDS from that moment, however long ago this process
    used Redis."""
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 8
    _redis_at(settings, DEAD_REDIS_URL)
    sts_budget.sts_budget_clear()
    started = time.monotonic()

    ticket = sts_budget.sts_call_admit(deadline=started + 3)

    assert ticket
    assert time.monotonic() - started >= sts_budget.LOSS_HOLD_SECONDS - 0.1


def test_trying_redis_again_while_it_is_away_forgets_no_call_counted_alone(settings):
    """While Redis is away, the breaker tries it again every OPEN_SECONDS. A try that fails must leave
    this process's own log as it was: its share stays used by the calls still counting."""
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 8
    settings.GUNICORN_WORKERS, settings.APP_INSTANCES = 2, 2  # a share of 2
    _redis_at(settings, DEAD_REDIS_URL)
    sts_budget.sts_budget_clear()
    in_flight = [sts_budget.sts_call_admit(deadline=time.monotonic() + 4) for _ in range(2)]
    assert all(in_flight)

    time.sleep(OPEN_SECONDS + 0.1)  # the breaker lets the next call try Redis (and fail) again
    assert sts_budget.sts_call_admit(deadline=time.monotonic()) is None
    for ticket in in_flight:
        sts_budget.sts_call_done(ticket)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis of the PostgreSQL + Redis run")
def test_back_on_redis_a_process_leaves_room_for_those_still_counting_alone(settings):
    """4 processes (2 workers x 2 instances), budget 8: each may count 2 calls alone. The first back on
    Redis writes its own 2 there and marks the log recovering, so Redis admits nothing more until the
    others' shares could have stopped counting (RECOVERY_SECONDS); then the whole budget again."""
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 8
    settings.GUNICORN_WORKERS, settings.APP_INSTANCES = 2, 2
    live_url = os.environ["REDIS_URL"]
    _redis_at(settings, live_url)
    sts_budget.sts_budget_clear()
    assert sts_budget.recovering_limit(8) == 2

    _redis_at(settings, DEAD_REDIS_URL)  # Redis goes away
    alone = [sts_budget.sts_call_admit(deadline=time.monotonic() + 3) for _ in range(2)]
    assert all(alone)  # after a window, this process's share, counted alone
    for ticket in alone:
        sts_budget.sts_call_done(ticket)

    _redis_at(settings, live_url)  # Redis is back
    redis_breaker.reset()
    now = time.monotonic()
    assert [bool(sts_budget.sts_call_admit(deadline=now)) for _ in range(3)] == [False, False, False]

    time.sleep(sts_budget.RECOVERY_SECONDS + 0.2)
    now = time.monotonic()
    assert [bool(sts_budget.sts_call_admit(deadline=now)) for _ in range(9)] == [True] * 8 + [False]
    sts_budget.sts_budget_clear()
