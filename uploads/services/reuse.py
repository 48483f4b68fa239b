"""A user's STS credentials: reused from the shared cache (encrypted at rest), refreshed ahead of
time in the background, and fetched while the user waits only when nothing usable is held.

A request for credentials ends in one of three ways, by what the shared cache holds for the user:

- more than ``ALIYUN_STS_REUSE_MARGIN_SECONDS`` left: handed out, nothing else happens;
- less, but more than ``ALIYUN_STS_STALE_IF_ERROR_SECONDS`` (default 300 s, the OSS mobile SDKs'
  own refresh margin): handed out at once, and one background refresh replaces them (one per user
  across every instance: a lock in the shared cache, and the cache read again once it is held, so
  a refresh that another instance just finished is not repeated). A failing STS is bridged the same
  way: those credentials keep being handed out while STS backs off;
- nothing usable: the request waits for one AssumeRole call per user (the others wait for its
  answer), within bounds: at most ``ALIYUN_STS_WAITERS_PER_PROCESS`` request threads per process
  wait on STS at once (a bulkhead: the rest of the threads keep serving reused hand-outs, profiles,
  logins and the admin), every call takes its turn in the account's budget (``sts_budget``) for at
  most ``ALIYUN_STS_QUEUE_SECONDS``, and past either bound the answer is 503 ``sts_busy`` with
  Retry-After at once.

After a transient STS failure (throttling, 5xx, timeouts, after the bounded retries) every
instance holds back from STS for a backoff that grows with consecutive failures (at least STS's
``x-acs-retry-after``): users with usable credentials get them (audited with the failure's code),
users without get 503 with the backoff's remaining time as Retry-After, without a call.

Redis down: the shared cache, locks and budget fall back to this process's own (``core.dependencies``).
"""

import base64
import hashlib
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from aliyun import sts
from aliyun.deadlines import sts_call_deadline_seconds
from aliyun.policy import bucket_owner_account_id, upload_policy
from core.dependencies import redis_breaker
from core.exceptions import ApplicationError
from core.requests import RequestContext

from ..models import TokenIssuance
from .audit import issuance_record, role_session_name
from .sts_budget import sts_call_admit, sts_call_done

logger = logging.getLogger(__name__)

_STS_ERROR_STATUS = {"sts_throttled": 503, "sts_unavailable": 503, "sts_busy": 503, "sts_rejected": 502}
_POLL_SECONDS = 0.05  # how often a request waiting for another instance's STS call looks for its answer
_REFRESH_RETRY_SECONDS = 1.0  # a process asks for a user's background refresh at most this often
_BACKOFF_KEY = "uploads:sts:backoff"
_BACKOFF_CAP_SECONDS = 30
_BACKOFF_MEMORY_SECONDS = 120  # consecutive failures count as one run while this close together
_RETRY_PERIOD_SECONDS = 0.1  # the first pause between attempts of one call is 0.1-0.2 s…
_RETRY_CAP_SECONDS = 1.0  # …and no pause is longer than 1 s


def _fernet() -> Fernet:
    return _fernet_for(settings.SECRET_KEY)


@lru_cache(maxsize=2)
def _fernet_for(secret_key: str) -> Fernet:
    """Derived once per process (and SECRET_KEY), not on every cache read and write."""
    key = hashlib.sha256(b"aliyun.sts-cache:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _cache_key(
    user_id: int,
    policy: dict[str, Any],
    *,
    cutoff: datetime | None = None,
    duration_seconds: int | None = None,
) -> str:
    """Changes whenever anything that shapes the token changes, so a config change never reuses, and
    whenever the user's sign-in cut-off moves (``cutoff``: ``User.tokens_valid_after``, moved by a
    logout, a password change, a deactivation or "sign out everywhere"), so credentials handed out
    before it are never handed out again: the next request gets a new key. A lifetime other than
    ``ALIYUN_STS_DURATION_SECONDS`` (``duration_seconds``) has keys of its own."""
    shape = [
        policy,
        settings.ALIYUN_STS_ROLE_ARN,
        settings.ALIYUN_ACCESS_KEY_ID,
        cutoff.isoformat() if cutoff else None,
    ]
    if duration_seconds is not None and duration_seconds != settings.ALIYUN_STS_DURATION_SECONDS:
        shape.append(duration_seconds)
    fingerprint = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
    return f"uploads:sts:{user_id}:{fingerprint}"


def _remaining_seconds(credentials: sts.StsCredentials) -> float:
    return (credentials.expiration - datetime.now(UTC)).total_seconds()


# --- the shared cache, through the Redis breaker -------------------------------------------------


def _shared_get(key: str) -> Any:
    """The shared cache's value, or None (missing, or the cache is unreachable)."""
    return redis_breaker.call(lambda: cache.get(key), lambda: None)


def _shared_set(key: str, value: Any, timeout: float) -> None:
    redis_breaker.call(lambda: cache.set(key, value, timeout=timeout), lambda: None)


def _shared_delete(key: str) -> None:
    redis_breaker.call(lambda: cache.delete(key), lambda: None)


# This process's copy of the credentials it last read from or wrote to the shared cache, by cache
# key, handed out from memory while they are reusable (more than the reuse margin left): a reuse then
# costs no Redis round trip and no decryption. It only ever holds what the shared cache held (or was
# given while the cache was unreachable), so reuse across workers is unchanged: the shared cache still
# decides, and is read again as soon as the copy is due for a refresh. With Redis down the copy
# stands in for it. Bounded: emptied when it reaches _LOCAL_MAX keys.
_local_credentials: dict[str, sts.StsCredentials] = {}
_LOCAL_MAX = 10_000


def local_credentials_clear() -> None:
    """Forget this process's copies, backoff and budget (after clearing the shared cache, e.g.
    between tests); waits for background refreshes in flight first."""
    refreshes_wait()
    _local_credentials.clear()
    _local_backoff.clear()
    redis_breaker.reset()
    from .sts_budget import sts_budget_clear

    sts_budget_clear()


def _local_keep(key: str, credentials: sts.StsCredentials) -> None:
    if len(_local_credentials) >= _LOCAL_MAX:
        _local_credentials.clear()
    _local_credentials[key] = credentials


def _cache_get(key: str, *, shared: bool = False) -> sts.StsCredentials | None:
    """The user's cached credentials while they are worth keeping (``_keep_seconds``): this
    process's copy while above the reuse margin (unless ``shared``: read the shared cache anyway),
    else the later-expiring of the shared cache's and this process's copy."""
    local = _local_credentials.get(key)
    margin = settings.ALIYUN_STS_REUSE_MARGIN_SECONDS
    if not shared and local is not None and _remaining_seconds(local) > margin:
        return local
    found = _decrypt(_shared_get(key))
    keep = _keep_seconds()
    candidates = [c for c in (found, local) if c is not None and _remaining_seconds(c) > keep]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: c.expiration)
    _local_keep(key, best)
    return best


def _decrypt(blob: Any) -> sts.StsCredentials | None:
    if blob is None:
        return None
    try:
        data = json.loads(_fernet().decrypt(blob))
        data["expiration"] = datetime.fromisoformat(data["expiration"])
        return sts.StsCredentials(**data)
    except (InvalidToken, ValueError, TypeError, KeyError):
        return None


def _keep_seconds() -> int:
    """How much lifetime cached credentials must have left to be kept at all.

    Reuse hands them out while more than the reuse margin is left; below that, while more than the
    refresh-ahead floor (``ALIYUN_STS_STALE_IF_ERROR_SECONDS``) is left, they are still handed out
    while a background refresh replaces them (0 turns that off).
    """
    margin = settings.ALIYUN_STS_REUSE_MARGIN_SECONDS
    floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    return min(margin, floor) if floor > 0 else margin


def _cache_set(key: str, credentials: sts.StsCredentials) -> None:
    timeout = int(_remaining_seconds(credentials) - _keep_seconds())
    if timeout <= 0:
        return
    data = asdict(credentials) | {"expiration": credentials.expiration.isoformat()}
    _shared_set(key, _fernet().encrypt(json.dumps(data).encode()), timeout)
    _local_keep(key, credentials)


@dataclass(frozen=True)
class _Call:
    """What one AssumeRole call for a user needs."""

    key: str
    session_name: str
    policy: dict[str, Any]
    duration_seconds: int

    @property
    def margin(self) -> int:
        """The reuse margin for credentials of this lifetime: ALIYUN_STS_REUSE_MARGIN_SECONDS, or for a
        shorter lifetime asked for explicitly, at most half of it (so they are reused at all)."""
        margin = settings.ALIYUN_STS_REUSE_MARGIN_SECONDS
        if self.duration_seconds == settings.ALIYUN_STS_DURATION_SECONDS:
            return margin
        return min(margin, self.duration_seconds // 2)


def _assume_role(call: _Call) -> sts.StsCredentials:
    return sts.assume_role(
        role_session_name=call.session_name, policy=call.policy, duration_seconds=call.duration_seconds
    )


@dataclass(frozen=True)
class Obtained:
    credentials: sts.StsCredentials
    reused: bool
    sts_error: sts.StsError | None = None  # set when STS is failing and still-valid credentials stood in


# STS faults that a user's still-valid credentials may stand in for. Not ``sts_rejected``: that is
# our configuration (or a revoked AssumeRole right), and it must stop hand-outs and show as failed.
_TRANSIENT_STS_ERRORS = {"sts_throttled", "sts_unavailable"}


def _usable(credentials: sts.StsCredentials | None) -> bool:
    """Whether ``credentials`` may be handed out while a refresh runs (or STS fails): more than the
    refresh-ahead floor left, the floor not switched off (0)."""
    floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    return credentials is not None and floor > 0 and _remaining_seconds(credentials) > floor


# --- backoff after a transient STS failure, shared by every instance -------------------------------

_local_backoff: dict[str, dict[str, Any]] = {}


def _backoff_state() -> dict[str, Any] | None:
    state = _shared_get(_BACKOFF_KEY)
    if not isinstance(state, dict):
        state = _local_backoff.get(_BACKOFF_KEY)
    return state


def _backoff_current() -> sts.StsError | None:
    """The failure STS is being left alone for, with the seconds still to wait as ``retry_after``;
    None when STS may be called."""
    state = _backoff_state()
    if state is None:
        return None
    left = state["until"] - time.time()
    if left <= 0:
        return None
    return sts.StsError(
        state["code"],
        str(_("Alibaba Cloud STS failed moments ago; the server is waiting before it calls again.")),
        upstream_code=state["upstream_code"],
        request_id=state["request_id"],
        retry_after=max(1, math.ceil(left)),
    )


def _backoff_record(exc: sts.StsError) -> None:
    """Hold back from STS for ``max(retry_after, 2^(n-1))`` s, at most 30 s, after the n-th failure in
    a row (failures more than two minutes apart start a new run). Failures while a backoff is still
    running (calls that began before it, on any instance) count once: the run doubles at most once
    per backoff, however many callers tried when the previous one ended."""
    previous = _backoff_state()
    if previous is not None and previous["until"] > time.time():
        return
    failures = (previous or {}).get("failures", 0) + 1
    hold = min(_BACKOFF_CAP_SECONDS, max(exc.retry_after or 1, 2 ** (failures - 1)))
    state = {
        "code": exc.code,
        "upstream_code": exc.upstream_code,
        "request_id": exc.request_id,
        "until": time.time() + hold,
        "failures": failures,
    }
    _local_backoff[_BACKOFF_KEY] = state
    _shared_set(_BACKOFF_KEY, state, hold + _BACKOFF_MEMORY_SECONDS)
    logger.warning(
        "STS failed (%s, %d in a row): no AssumeRole call for %d s",
        exc.upstream_code or exc.code,
        failures,
        hold,
    )


def _backoff_clear() -> None:
    _local_backoff.pop(_BACKOFF_KEY, None)
    _shared_delete(_BACKOFF_KEY)


# --- single flight: one AssumeRole call per user at a time -----------------------------------------

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextmanager
def _process_flight(key: str, timeout: float) -> Iterator[bool]:
    """This process's lock for ``key``: True once held (within ``timeout`` seconds), else False."""
    with _process_locks_guard:
        lock = _process_locks.get(key)
        if lock is None:
            if len(_process_locks) >= _LOCAL_MAX:
                for name in [name for name, held in _process_locks.items() if not held.locked()]:
                    del _process_locks[name]
            lock = _process_locks[key] = threading.Lock()
    held = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()


def _lock_timeout() -> int:
    return int(settings.ALIYUN_STS_QUEUE_SECONDS + sts_call_deadline_seconds()) + 1


def _shared_lock_take(key: str, owner: str) -> bool | None:
    """The user's lock across instances: True taken, False held by another, None the cache is
    unreachable (this process's lock, already held, stands in)."""

    def take() -> bool | None:
        added = cache.add(f"{key}:lock", owner, timeout=_lock_timeout())
        return None if added is None else bool(added)  # None: a cache that ignores its errors failed

    return redis_breaker.call(take, lambda: None)


def _shared_lock_release(key: str, owner: str) -> None:
    def release() -> None:
        if cache.get(f"{key}:lock") == owner:  # never release a lock that expired and moved on
            cache.delete(f"{key}:lock")

    redis_breaker.call(release, lambda: None)


# --- the bulkhead: request threads waiting on STS --------------------------------------------------

_waiting = 0
_waiting_guard = threading.Lock()


def _waiters_allowed() -> int:
    configured = settings.ALIYUN_STS_WAITERS_PER_PROCESS
    return configured if configured > 0 else max(1, settings.GUNICORN_THREADS // 2)


def _busy(*, retry_after: float | None = None) -> sts.StsError:
    """503 ``sts_busy``: too many requests wait on STS already (or the budget had no turn in time)."""
    seconds = retry_after if retry_after is not None else max(1, settings.ALIYUN_STS_QUEUE_SECONDS // 2)
    return sts.StsError(
        "sts_busy",
        str(_("Too many requests are waiting for Alibaba Cloud STS; try again shortly.")),
        retry_after=max(1, math.ceil(seconds)),
    )


@contextmanager
def _sts_wait_slot() -> Iterator[None]:
    """One of this process's slots for a request thread that waits on STS, or ``sts_busy`` at once."""
    global _waiting
    with _waiting_guard:
        if _waiting >= _waiters_allowed():
            raise _busy(retry_after=1)
        _waiting += 1
    try:
        yield
    finally:
        with _waiting_guard:
            _waiting -= 1


# --- calling STS ----------------------------------------------------------------------------------


def _retry_pause(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential with equal jitter, from
    0.1 s and at most 1 s (what the STS SDK's own retries did, darabonba's ExponentialWithEqualJitter)."""
    ceiling = min(_RETRY_CAP_SECONDS, _RETRY_PERIOD_SECONDS * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _call_sts(call: _Call, *, deadline: float, background: bool = False) -> sts.StsCredentials | None:
    """Budgeted AssumeRole calls for ``call``; caches the answer.

    Up to ``ALIYUN_STS_MAX_ATTEMPTS`` attempts (a background refresh: one), only after an answer STS
    itself marks transient (``StsError.retryable``: throttling, 5xx), with ``_retry_pause`` between
    them. Each attempt is admitted by the shared budget on its own, so a retry counts against Alibaba's
    per-account quota like a first call (the SDK's own retries are off: ``aliyun/sts.py``). Attempts stop at ``deadline``
    (a ``time.monotonic()`` value). Returns None when the budget had no turn for the first attempt by
    then; raises the last attempt's ``StsError`` when none succeeded (a transient one starts the
    backoff).
    """
    attempts = 1 if background else max(1, settings.ALIYUN_STS_MAX_ATTEMPTS)
    failure: sts.StsError | None = None
    for attempt in range(1, attempts + 1):
        ticket = sts_call_admit(deadline=deadline, background=background)
        if ticket is None:
            break
        try:
            credentials = _assume_role(call)
        except sts.StsError as exc:
            if exc.code not in _TRANSIENT_STS_ERRORS:
                raise
            failure = exc
            if not exc.retryable:
                break
        else:
            _backoff_clear()
            if call.margin < call.duration_seconds:
                _cache_set(call.key, credentials)
            return credentials
        finally:
            sts_call_done(ticket)
        pause = _retry_pause(attempt)
        if attempt == attempts or time.monotonic() + pause >= deadline:
            break
        time.sleep(pause)
    if failure is None:
        return None
    _backoff_record(failure)
    raise failure


def _fetch_waiting(call: _Call) -> Obtained:
    """For a user with nothing usable: one AssumeRole call per user (across instances), which the
    user's other requests wait for, all within ``ALIYUN_STS_QUEUE_SECONDS`` (then ``sts_busy``)."""
    deadline = time.monotonic() + settings.ALIYUN_STS_QUEUE_SECONDS
    with _process_flight(call.key, timeout=deadline - time.monotonic()) as mine:
        if not mine:
            raise _busy()
        cached = _cache_get(call.key)  # another thread of this process may have fetched meanwhile
        if _usable(cached) or (cached is not None and _remaining_seconds(cached) > call.margin):
            return Obtained(cached, reused=True)
        owner = uuid.uuid4().hex
        while (held := _shared_lock_take(call.key, owner)) is False:
            # Another instance is calling STS for this user: wait for its answer (or for its lock to go).
            if time.monotonic() >= deadline:
                raise _busy()
            time.sleep(_POLL_SECONDS)
            cached = _cache_get(call.key, shared=True)
            if _usable(cached) or (cached is not None and _remaining_seconds(cached) > call.margin):
                return Obtained(cached, reused=True)
        try:
            # Read again now that the lock is held: an instance that held it before may have just
            # stored fresh credentials, and calling STS again would be a duplicate.
            cached = _cache_get(call.key, shared=True)
            if cached is not None and _remaining_seconds(cached) > call.margin:
                return Obtained(cached, reused=True)
            credentials = _call_sts(call, deadline=deadline)
            if credentials is None:
                raise _busy()
            return Obtained(credentials, reused=False)
        finally:
            if held:
                _shared_lock_release(call.key, owner)


# --- background refreshes ---------------------------------------------------------------------------

_refresh_asked: dict[str, float] = {}  # key -> when this process last asked for its refresh
_refresh_guard = threading.Lock()
_refresh_pool: ThreadPoolExecutor | None = None
_refresh_pool_pid = 0
_refresh_futures: set[Future] = set()


def _pool() -> ThreadPoolExecutor:
    """The process's refresh threads, made on first use (after gunicorn forked the worker)."""
    global _refresh_pool, _refresh_pool_pid
    import os

    if _refresh_pool is None or _refresh_pool_pid != os.getpid():
        _refresh_pool = ThreadPoolExecutor(
            max_workers=max(1, settings.ALIYUN_STS_REFRESH_THREADS), thread_name_prefix="sts-refresh"
        )
        _refresh_pool_pid = os.getpid()
    return _refresh_pool


def _refresh_ahead(call: _Call) -> None:
    """Ask for one background refresh of ``call.key``, unless this process asked less than a second ago."""
    now = time.monotonic()
    with _refresh_guard:
        asked = _refresh_asked.get(call.key)
        if asked is not None and now - asked < _REFRESH_RETRY_SECONDS:
            return
        if len(_refresh_asked) >= _LOCAL_MAX:
            _refresh_asked.clear()
        _refresh_asked[call.key] = now
        future = _pool().submit(_refresh, call)
        _refresh_futures.add(future)
    future.add_done_callback(_refresh_futures.discard)


def _refresh(call: _Call) -> None:
    """Replace the user's credentials that are due for a refresh: one call across every instance."""
    try:
        if _backoff_current() is not None:
            return
        with _process_flight(call.key, timeout=0) as mine:
            if not mine:
                return
            owner = uuid.uuid4().hex
            held = _shared_lock_take(call.key, owner)
            if held is False:  # another instance refreshes them
                return
            try:
                cached = _cache_get(call.key, shared=True)  # read again under the lock (no duplicate call)
                if cached is not None and _remaining_seconds(cached) > call.margin:
                    return
                _call_sts(call, deadline=time.monotonic(), background=True)
            finally:
                if held:
                    _shared_lock_release(call.key, owner)
    except sts.StsError as exc:
        if exc.code not in _TRANSIENT_STS_ERRORS:
            logger.error("Background STS refresh refused: %s", exc.upstream_code or exc.code)
    except Exception:
        logger.exception("Background STS refresh failed")


def refreshes_wait(timeout: float = 30.0) -> None:
    """Wait until the background refreshes asked for so far have ended (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while True:
        with _refresh_guard:
            pending = list(_refresh_futures)
            if not pending:
                _refresh_asked.clear()
                return
        for future in pending:
            future.exception(timeout=max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            return


# --- the whole path ---------------------------------------------------------------------------------


def _fresh_or_cached(call: _Call) -> Obtained:
    """The user's credentials as the module docstring says; raises ``StsError`` (``sts_busy`` too)."""
    if call.margin >= call.duration_seconds:
        # Reuse is switched off: nothing is cached, so nothing is shared or waited for but the budget.
        backoff = _backoff_current()
        if backoff is not None:
            raise backoff
        with _sts_wait_slot():
            credentials = _call_sts(call, deadline=time.monotonic() + settings.ALIYUN_STS_QUEUE_SECONDS)
        if credentials is None:
            raise _busy()
        return Obtained(credentials, reused=False)
    cached = _cache_get(call.key)
    if cached is not None and _remaining_seconds(cached) > call.margin:
        return Obtained(cached, reused=True)
    backoff = _backoff_current()
    if _usable(cached):
        if backoff is None:
            _refresh_ahead(call)
        return Obtained(cached, reused=True, sts_error=backoff)
    if backoff is not None:
        raise backoff
    with _sts_wait_slot():
        return _fetch_waiting(call)


def session_policy_build(*, user_id: int) -> dict[str, Any]:
    """The session policy for ``user_id`` in this deployment: its bucket, region and bucket owner.

    Raises ``ValueError`` when no owner account is known (no role ARN and no override).
    """
    return upload_policy(
        bucket=settings.ALIYUN_OSS_BUCKET,
        user_id=user_id,
        region=settings.ALIYUN_OSS_REGION,
        owner_account_id=bucket_owner_account_id(
            role_arn=settings.ALIYUN_STS_ROLE_ARN, override=settings.ALIYUN_OSS_OWNER_ACCOUNT_ID
        ),
    )


def session_policy_for(*, user: User, context: RequestContext, grant: str) -> dict[str, Any]:
    """``session_policy_build`` for a request; an unknown bucket owner is audited and refused clearly."""
    try:
        return session_policy_build(user_id=user.pk)
    except ValueError:  # only in development: uploads.E004 stops a production start without a role ARN
        issuance_record(
            user=user,
            context=context,
            outcome=TokenIssuance.Outcome.FAILED,
            grant=grant,
            error_code="no_bucket_owner",
        )
        raise ApplicationError(
            "The server does not know the bucket owner's account (set ALIYUN_STS_ROLE_ARN).",
            code="sts_rejected",
            status_code=502,
        ) from None


def credentials_obtain(
    *,
    user: User,
    context: RequestContext,
    grant: str,
    policy: dict[str, Any],
    duration_seconds: int | None = None,
    **audit_fields: Any,
) -> Obtained:
    """The user's scoped credentials through the shared reuse path; a failure is audited and raised.

    ``duration_seconds``: the credentials' lifetime (900..3600 for a role; default
    ``ALIYUN_STS_DURATION_SECONDS``); a shorter one is cached under keys of its own and refreshed
    once half of it is gone (or at the reuse margin, if smaller). ``audit_fields`` go to the audit
    row of a failure. Raises ``ApplicationError``: 502 ``sts_rejected``, 503 ``sts_throttled``,
    ``sts_unavailable``, ``sts_busy`` (with Retry-After).
    """
    duration = duration_seconds or settings.ALIYUN_STS_DURATION_SECONDS
    call = _Call(
        key=_cache_key(user.pk, policy, cutoff=user.tokens_valid_after, duration_seconds=duration),
        session_name=role_session_name(user.pk),
        policy=policy,
        duration_seconds=duration,
    )
    try:
        return _fresh_or_cached(call)
    except sts.StsError as exc:
        issuance_record(
            user=user,
            context=context,
            outcome=TokenIssuance.Outcome.FAILED,
            grant=grant,
            error_code=exc.upstream_code or exc.code,
            policy=policy,
            sts_request_id=exc.request_id,
            **audit_fields,
        )
        raise ApplicationError(
            str(exc),
            code=exc.code,
            status_code=_STS_ERROR_STATUS[exc.code],
            retry_after=exc.retry_after,
        ) from None


def handed_out_record(
    *,
    user: User,
    context: RequestContext,
    grant: str,
    policy: dict[str, Any],
    obtained: Obtained,
    expiration: datetime,
    **audit_fields: Any,
) -> None:
    """The audit row of credentials handed out: ``issued`` or ``reused`` (stale-if-error included)."""
    credentials, sts_error = obtained.credentials, obtained.sts_error
    issuance_record(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REUSED if obtained.reused else TokenIssuance.Outcome.ISSUED,
        grant=grant,
        policy=policy,
        access_key_id=credentials.access_key_id,
        expiration=expiration,
        # A stale-if-error hand-out names the failed STS call; a plain reuse the one that issued.
        sts_request_id=sts_error.request_id if sts_error else credentials.request_id,
        error_code=(sts_error.upstream_code or sts_error.code) if sts_error else "",
        **audit_fields,
    )
