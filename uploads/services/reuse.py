"""A user's STS credentials: reused from the shared cache (encrypted at rest) while enough of their
lifetime is left, else fetched with one AssumeRole call per user that concurrent requests wait for,
and handed out stale while STS fails transiently (stale-if-error)."""

import base64
import hashlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from aliyun import sts
from aliyun.deadlines import sts_call_deadline_seconds
from aliyun.policy import bucket_owner_account_id, upload_policy
from core.exceptions import ApplicationError
from core.requests import RequestContext

from ..models import TokenIssuance
from .audit import issuance_record, role_session_name

logger = logging.getLogger(__name__)

_STS_ERROR_STATUS = {"sts_throttled": 503, "sts_unavailable": 503, "sts_rejected": 502}
_LOCK_POLL_SECONDS = 0.05
_STS_FAILING_SECONDS = 5  # how long a transient STS failure sends a user's requests to the fallback


def _fernet() -> Fernet:
    return _fernet_for(settings.SECRET_KEY)


@lru_cache(maxsize=2)
def _fernet_for(secret_key: str) -> Fernet:
    """Derived once per process (and SECRET_KEY), not on every cache read and write."""
    key = hashlib.sha256(b"aliyun.sts-cache:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _cache_key(user_id: int, policy: dict[str, Any], *, cutoff: datetime | None = None) -> str:
    """Changes whenever anything that shapes the token changes, so a config change never reuses, and
    whenever the user's sign-in cut-off moves (``cutoff``: ``User.tokens_valid_after``, moved by a
    logout, a password change, a deactivation or "sign out everywhere"), so credentials handed out
    before it are never handed out again: the next request gets a new key."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                policy,
                settings.ALIYUN_STS_ROLE_ARN,
                settings.ALIYUN_ACCESS_KEY_ID,
                cutoff.isoformat() if cutoff else None,
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    return f"uploads:sts:{user_id}:{fingerprint}"


def _remaining_seconds(credentials: sts.StsCredentials) -> float:
    return (credentials.expiration - datetime.now(UTC)).total_seconds()


# This process's copy of the credentials it last read from or wrote to the shared cache, by cache
# key, handed out from memory while they are reusable (more than the reuse margin left): a reuse then
# costs no Redis round trip and no decryption. It only ever holds what the shared cache held, so
# reuse across workers is unchanged: the shared cache still decides, and is read again as soon as
# the copy is due for a refresh. Bounded: emptied when it reaches _LOCAL_MAX keys.
_local_credentials: dict[str, sts.StsCredentials] = {}
_LOCAL_MAX = 10_000


def local_credentials_clear() -> None:
    """Forget this process's copies (after clearing the shared cache, e.g. between tests)."""
    _local_credentials.clear()


def _local_keep(key: str, credentials: sts.StsCredentials) -> None:
    if len(_local_credentials) >= _LOCAL_MAX:
        _local_credentials.clear()
    _local_credentials[key] = credentials


def _cache_get(key: str) -> sts.StsCredentials | None:
    """The user's cached credentials while they still have the fallback floor left (see below)."""
    local = _local_credentials.get(key)
    if local is not None and _remaining_seconds(local) > settings.ALIYUN_STS_REUSE_MARGIN_SECONDS:
        return local
    blob = cache.get(key)
    if blob is None:
        return None
    try:
        data = json.loads(_fernet().decrypt(blob))
    except (InvalidToken, ValueError, TypeError):
        return None
    data["expiration"] = datetime.fromisoformat(data["expiration"])
    credentials = sts.StsCredentials(**data)
    if _remaining_seconds(credentials) <= _keep_seconds():
        return None
    _local_keep(key, credentials)
    return credentials


def _keep_seconds() -> int:
    """How much lifetime cached credentials must have left to be kept at all.

    Reuse hands them out while more than the reuse margin is left; below that a fresh AssumeRole
    call is made, and if it fails they are still handed out while more than the stale-if-error
    floor is left (0 turns that fallback off).
    """
    margin = settings.ALIYUN_STS_REUSE_MARGIN_SECONDS
    floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    return min(margin, floor) if floor > 0 else margin


def _cache_set(key: str, credentials: sts.StsCredentials) -> None:
    timeout = int(_remaining_seconds(credentials) - _keep_seconds())
    if timeout <= 0:
        return
    data = asdict(credentials) | {"expiration": credentials.expiration.isoformat()}
    cache.set(key, _fernet().encrypt(json.dumps(data).encode()), timeout=timeout)
    _local_keep(key, credentials)


def _assume_role(
    *, session_name: str, policy: dict[str, Any], duration_seconds: int | None = None
) -> sts.StsCredentials:
    return sts.assume_role(
        role_session_name=session_name,
        policy=policy,
        duration_seconds=duration_seconds or settings.ALIYUN_STS_DURATION_SECONDS,
    )


@dataclass(frozen=True)
class Obtained:
    credentials: sts.StsCredentials
    reused: bool
    sts_error: sts.StsError | None = None  # set when STS failed and still-valid credentials stood in


# STS faults that a user's still-valid credentials may stand in for. Not ``sts_rejected``: that is
# our configuration (or a revoked AssumeRole right), and it must stop hand-outs and show as failed.
_TRANSIENT_STS_ERRORS = {"sts_throttled", "sts_unavailable"}


def _stale_if_error(cached: sts.StsCredentials | None) -> sts.StsCredentials | None:
    """``cached`` if it may stand in for a failed STS call now: enough lifetime left, fallback on."""
    floor = settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS
    if cached is None or floor <= 0 or _remaining_seconds(cached) <= floor:
        return None
    return cached


def _fresh_or_cached(key: str, *, session_name: str, policy: dict[str, Any]) -> Obtained:
    """One request per user calls STS; concurrent ones wait for it and then reuse its answer.

    If that call fails transiently (after the SDK's retries), the user's previous credentials are
    handed out instead while more than the stale-if-error floor is left, so an STS blip does not
    stop uploads; only a user with no usable credentials gets the error. The failure is remembered
    for a few seconds, so the user's other requests go straight to those credentials instead of
    each calling a failing STS in turn.
    """
    if settings.ALIYUN_STS_REUSE_MARGIN_SECONDS >= settings.ALIYUN_STS_DURATION_SECONDS:
        # Reuse is switched off: nothing will be cached, so there is nothing to wait for.
        return Obtained(_assume_role(session_name=session_name, policy=policy), reused=False)
    lock_key, lock_owner, failing_key = f"{key}:lock", uuid.uuid4().hex, f"{key}:sts-failing"
    deadline = time.monotonic() + sts_call_deadline_seconds()
    holds_lock = False
    while True:
        cached = _cache_get(key)
        if cached is not None and _remaining_seconds(cached) > settings.ALIYUN_STS_REUSE_MARGIN_SECONDS:
            return Obtained(cached, reused=True)
        failing = cache.get(failing_key) if _stale_if_error(cached) else None
        if failing:
            code, upstream_code = failing
            error = sts.StsError(code, "STS failed moments ago.", upstream_code=upstream_code)
            return Obtained(cached, reused=True, sts_error=error)
        added = cache.add(lock_key, lock_owner, timeout=int(sts_call_deadline_seconds()) + 1)
        holds_lock = added is True
        # None: the cache is down (django-redis ignores its errors), so nobody can hold the lock.
        # Past the deadline the holder is presumed dead.
        if holds_lock or added is None or time.monotonic() >= deadline:
            break
        time.sleep(_LOCK_POLL_SECONDS)
    try:
        credentials = _assume_role(session_name=session_name, policy=policy)
    except sts.StsError as exc:
        if exc.code not in _TRANSIENT_STS_ERRORS:
            raise
        cache.set(failing_key, (exc.code, exc.upstream_code), timeout=exc.retry_after or _STS_FAILING_SECONDS)
        stale = _stale_if_error(_cache_get(key))  # checked again: the failed call took time
        if stale is None:
            raise
        logger.warning(
            "STS failed (%s); handing out the user's still-valid credentials instead",
            exc.upstream_code or exc.code,
        )
        return Obtained(stale, reused=True, sts_error=exc)
    else:
        cache.delete(failing_key)
        _cache_set(key, credentials)
        return Obtained(credentials, reused=False)
    finally:
        if holds_lock and cache.get(lock_key) == lock_owner:  # never release a lock that expired and moved on
            cache.delete(lock_key)


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

    ``duration_seconds`` (None: ``ALIYUN_STS_DURATION_SECONDS``) asks STS for another lifetime (the
    ledger's near-quota rule asks for 900 s); credentials of one lifetime are never reused for another.
    """
    session_name = role_session_name(user.pk)
    try:
        if duration_seconds is not None and duration_seconds != settings.ALIYUN_STS_DURATION_SECONDS:
            return _shortened(session_name=session_name, policy=policy, duration_seconds=duration_seconds)
        key = _cache_key(user.pk, policy, cutoff=user.tokens_valid_after)
        return _fresh_or_cached(key, session_name=session_name, policy=policy)
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


def _shortened(*, session_name: str, policy: dict[str, Any], duration_seconds: int) -> Obtained:
    """Fresh credentials of ``duration_seconds`` (the ledger's near-quota rule asks for 900 s), never
    cached: below the reuse margin (900 s by default) they could not be reused anyway. Kept apart
    from the shared reuse path on purpose, so the change there stays one parameter."""
    credentials = _assume_role(session_name=session_name, policy=policy, duration_seconds=duration_seconds)
    return Obtained(credentials, reused=False)


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
