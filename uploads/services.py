"""Writes for the uploads app: issuing upload credentials and auditing every attempt."""

import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun import oss, post_policy, sts
from aliyun.deadlines import sts_call_deadline_seconds
from aliyun.policy import bucket_owner_account_id, upload_policy, user_prefix
from core import compiled
from core.exceptions import ApplicationError
from core.redaction import CREDENTIAL_URL_SECRET_PREFIX
from core.text import storable_text

from . import purposes
from .models import CredentialUrl, TokenIssuance, UploadUsage
from .selectors import (
    CredentialUrlStatus,
    UsageSummary,
    credential_url_status,
    credential_urls_live,
    upload_usage_summary,
    usage_summary_of,
)

logger = logging.getLogger(__name__)

_STS_ERROR_STATUS = {"sts_throttled": 503, "sts_unavailable": 503, "sts_rejected": 502}
_LOCK_POLL_SECONDS = 0.05
_STS_FAILING_SECONDS = 5  # how long a transient STS failure sends a user's requests to the fallback


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and from where; filled in by the API view from the request."""

    auth_method: str
    client_ip: str | None
    user_agent: str
    request_id: str


@dataclass(frozen=True)
class UploadCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expiration: datetime
    bucket: str
    region: str
    endpoint: str
    prefix: str


def role_session_name(user_id: int) -> str:
    """Shows up in the assumed-role ARN and in ActionTrail, so it names the user."""
    return f"user-{user_id}"


def _audit(*, user: User, context: RequestContext, outcome: str, prefix: str, **fields: Any) -> None:
    """Every attempt leaves exactly one row; if the row cannot be written, nothing is handed out.

    The INSERT is the ORM's, compiled once per process (``core.compiled``): every hand-out writes one.
    """
    try:
        compiled.create(
            TokenIssuance,
            user=user,
            username=user.get_username(),
            outcome=outcome,
            prefix=prefix,
            auth_method=context.auth_method,
            client_ip=context.client_ip,
            user_agent=storable_text(context.user_agent, 512),
            request_id=context.request_id,
            **fields,
        )
    except DatabaseError:
        logger.exception("Could not write the token issuance audit row")
        raise ApplicationError(
            _("The audit log is unavailable; no credentials were issued."),
            code="audit_unavailable",
            status_code=503,
            retry_after=5,
        ) from None


# --- Reuse: still-valid credentials come from the shared cache, encrypted at rest ----------------


def _fernet() -> Fernet:
    return _fernet_for(settings.SECRET_KEY)


@lru_cache(maxsize=2)
def _fernet_for(secret_key: str) -> Fernet:
    """Derived once per process (and SECRET_KEY), not on every cache read and write."""
    key = hashlib.sha256(b"aliyun.sts-cache:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _cache_key(user_id: int, policy: dict[str, Any]) -> str:
    """Changes whenever anything that shapes the token changes, so a config change never reuses."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [policy, settings.ALIYUN_STS_ROLE_ARN, settings.ALIYUN_ACCESS_KEY_ID],
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


def _assume_role(*, session_name: str, policy: dict[str, Any]) -> sts.StsCredentials:
    return sts.assume_role(
        role_session_name=session_name, policy=policy, duration_seconds=settings.ALIYUN_STS_DURATION_SECONDS
    )


@dataclass(frozen=True)
class _Obtained:
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


def _fresh_or_cached(key: str, *, session_name: str, policy: dict[str, Any]) -> _Obtained:
    """One request per user calls STS; concurrent ones wait for it and then reuse its answer.

    If that call fails transiently (after the SDK's retries), the user's previous credentials are
    handed out instead while more than the stale-if-error floor is left, so an STS blip does not
    stop uploads; only a user with no usable credentials gets the error. The failure is remembered
    for a few seconds, so the user's other requests go straight to those credentials instead of
    each calling a failing STS in turn.
    """
    if settings.ALIYUN_STS_REUSE_MARGIN_SECONDS >= settings.ALIYUN_STS_DURATION_SECONDS:
        # Reuse is switched off: nothing will be cached, so there is nothing to wait for.
        return _Obtained(_assume_role(session_name=session_name, policy=policy), reused=False)
    lock_key, lock_owner, failing_key = f"{key}:lock", uuid.uuid4().hex, f"{key}:sts-failing"
    deadline = time.monotonic() + sts_call_deadline_seconds()
    holds_lock = False
    while True:
        cached = _cache_get(key)
        if cached is not None and _remaining_seconds(cached) > settings.ALIYUN_STS_REUSE_MARGIN_SECONDS:
            return _Obtained(cached, reused=True)
        failing = cache.get(failing_key) if _stale_if_error(cached) else None
        if failing:
            code, upstream_code = failing
            error = sts.StsError(code, "STS failed moments ago.", upstream_code=upstream_code)
            return _Obtained(cached, reused=True, sts_error=error)
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
        return _Obtained(stale, reused=True, sts_error=exc)
    else:
        cache.delete(failing_key)
        _cache_set(key, credentials)
        return _Obtained(credentials, reused=False)
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


def _session_policy(*, user: User, context: RequestContext, grant: str) -> dict[str, Any]:
    """``session_policy_build`` for a request; an unknown bucket owner is audited and refused clearly."""
    try:
        return session_policy_build(user_id=user.pk)
    except ValueError:  # only in development: uploads.E004 stops a production start without a role ARN
        _attempt_audit(
            user=user,
            context=context,
            outcome=TokenIssuance.Outcome.FAILED,
            reason="no_bucket_owner",
            grant=grant,
        )
        raise ApplicationError(
            "The server does not know the bucket owner's account (set ALIYUN_STS_ROLE_ARN).",
            code="sts_rejected",
            status_code=502,
        ) from None


def _obtain(
    *, user: User, context: RequestContext, grant: str, policy: dict[str, Any], **audit_fields: Any
) -> _Obtained:
    """The user's scoped credentials through the shared reuse path; a failure is audited and raised."""
    session_name = role_session_name(user.pk)
    try:
        return _fresh_or_cached(_cache_key(user.pk, policy), session_name=session_name, policy=policy)
    except sts.StsError as exc:
        _attempt_audit(
            user=user,
            context=context,
            outcome=TokenIssuance.Outcome.FAILED,
            reason=exc.upstream_code or exc.code,
            grant=grant,
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


def _audit_handed_out(
    *,
    user: User,
    context: RequestContext,
    grant: str,
    policy: dict[str, Any],
    obtained: _Obtained,
    expiration: datetime,
    **audit_fields: Any,
) -> None:
    credentials, sts_error = obtained.credentials, obtained.sts_error
    _audit(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REUSED if obtained.reused else TokenIssuance.Outcome.ISSUED,
        prefix=user_prefix(user.pk),
        grant=grant,
        role_session_name=role_session_name(user.pk),
        policy=policy,
        access_key_id=credentials.access_key_id,
        expiration=expiration,
        # A stale-if-error hand-out names the failed STS call; a plain reuse the one that issued.
        sts_request_id=sts_error.request_id if sts_error else credentials.request_id,
        error_code=(sts_error.upstream_code or sts_error.code) if sts_error else "",
        **audit_fields,
    )


def sts_token_issue(*, user: User, context: RequestContext) -> UploadCredentials:
    """Hand ``user`` credentials that can write only under ``user/<id>/``, auditing the attempt.

    Refused with 403 ``quota_exceeded`` (audited) while the user's folders are at or over their quota:
    a token cannot cap what it writes, so none is handed out once nothing more fits.
    """
    grant = TokenIssuance.Grant.STS_TOKEN
    if _usage_summary(user).at_quota:
        raise _refuse(user=user, context=context, grant=grant, error=_quota_exceeded())
    policy = _session_policy(user=user, context=context, grant=grant)
    obtained = _obtain(user=user, context=context, grant=grant, policy=policy)
    credentials = obtained.credentials
    _audit_handed_out(
        user=user,
        context=context,
        grant=grant,
        policy=policy,
        obtained=obtained,
        expiration=credentials.expiration,
    )
    return UploadCredentials(
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.access_key_secret,
        security_token=credentials.security_token,
        expiration=credentials.expiration,
        bucket=settings.ALIYUN_OSS_BUCKET,
        region=settings.ALIYUN_OSS_REGION,
        endpoint=settings.ALIYUN_OSS_ENDPOINT,
        prefix=user_prefix(user.pk),
    )


def sts_token_refuse(
    *,
    user: User,
    context: RequestContext,
    reason: str,
    grant: str = TokenIssuance.Grant.STS_TOKEN,
    window_seconds: int | None = None,
) -> None:
    """Audit an issuance the server refused before calling STS (rate limited, invalid, over quota).

    With ``window_seconds`` (the throttle's window, for refusals of a rate limit) the refusals of one
    user for one grant and reason share a row while it is younger than the window: its ``attempts`` counts
    them and ``last_attempt_at`` is the latest. A flood therefore costs one row per user per window,
    not one per request, and a reviewer still sees how many and when. Raises ApplicationError
    ``audit_unavailable`` (503) if the row cannot be written.
    """
    if window_seconds:
        now = timezone.now()
        try:
            with transaction.atomic():
                # One refusal of a user at a time: PostgreSQL locks the user's row; SQLite's
                # transactions take the database's write lock as they begin (config/settings.py).
                list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
                counted = TokenIssuance.objects.filter(
                    pk__in=TokenIssuance.objects.filter(
                        user=user,
                        grant=grant,
                        outcome=TokenIssuance.Outcome.REFUSED,
                        error_code=reason,
                        created_at__gt=now - timedelta(seconds=window_seconds),
                    ).values("pk")[:1]
                ).update(attempts=F("attempts") + 1, last_attempt_at=now)
                if counted:
                    return
                _refusal_audit(user=user, context=context, reason=reason, grant=grant, created_at=now)
        except DatabaseError:
            logger.exception("Could not count a refusal in the token issuance audit log")
            raise ApplicationError(
                "The audit log is unavailable; no credentials were issued.",
                code="audit_unavailable",
                status_code=503,
                retry_after=5,
            ) from None
        return
    _refusal_audit(user=user, context=context, reason=reason, grant=grant)


def _refusal_audit(*, user: User, context: RequestContext, reason: str, grant: str, **fields: Any) -> None:
    _attempt_audit(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REFUSED,
        reason=reason,
        grant=grant,
        **fields,
    )


def _attempt_audit(
    *, user: User, context: RequestContext, outcome: str, reason: str, grant: str, **fields: Any
) -> None:
    """The row of an attempt that handed nothing out (refused or failed): ``reason`` is its error code."""
    _audit(
        user=user,
        context=context,
        outcome=outcome,
        prefix=user_prefix(user.pk),
        grant=grant,
        role_session_name=role_session_name(user.pk),
        error_code=reason,
        **fields,
    )


# --- Server-signed form uploads (PostObject) ---------------------------------------------------


@dataclass(frozen=True)
class PostPolicyGrant:
    """A signed PostObject form: POST ``fields`` then the file (as field ``file``, last) to ``url``."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expiration: datetime


def _refuse(
    *, user: User, context: RequestContext, grant: str, error: ApplicationError, **audit_fields: Any
) -> ApplicationError:
    _audit(
        user=user,
        context=context,
        outcome=TokenIssuance.Outcome.REFUSED,
        prefix=user_prefix(user.pk),
        grant=grant,
        role_session_name=role_session_name(user.pk),
        error_code=error.code,
        **audit_fields,
    )
    return error


def _purpose_for(*, purpose: str, content_type: str, size: int) -> purposes.UploadPurpose:
    """The registered purpose, if it accepts this type and size; else an ``ApplicationError`` (400)."""
    found = purposes.upload_purpose_get(purpose)
    if found is None:
        names = ", ".join(purposes.upload_purpose_names()) or "none"
        raise ApplicationError(
            _("Unknown purpose %(purpose)r; known: %(names)s.") % {"purpose": purpose, "names": names},
            code="unknown_purpose",
        )
    if content_type not in found.content_types:
        accepted = ", ".join(found.content_types)
        raise ApplicationError(
            _("Files for %(purpose)s must be one of: %(types)s.")
            % {"purpose": found.name, "types": accepted},
            code="unsupported_content_type",
        )
    if size > found.max_bytes():
        raise ApplicationError(
            _("The file is %(size)d bytes; %(purpose)s uploads may be at most %(max)d bytes.")
            % {"size": size, "purpose": found.name, "max": found.max_bytes()},
            code="object_too_large",
        )
    return found


def post_policy_issue(
    *,
    user: User,
    context: RequestContext,
    content_type: str,
    size: int,
    filename: str = "",
    purpose: str,
) -> PostPolicyGrant:
    """A PostObject form that lets ``user`` upload one file, as declared, to a fresh key of theirs.

    ``content_type`` must be one the purpose accepts and ``size`` (bytes, what the client declares)
    at most its limit; the form lets OSS accept 1 to ``max_bytes`` (= ``size``) bytes of exactly that
    type at exactly that key, once (forbid-overwrite), until ``expiration`` (at most 10 minutes). It is
    signed with the user's own scoped STS credentials, obtained and reused as for ``sts_token_issue``;
    the AccessKey secret stays here. Every attempt is audited with grant ``post_policy``.

    Quota: the declared size and one object are added to the user's pending usage (refused if they do
    not fit), and storage refuses a file larger than declared, so what forms add to the folders never
    exceeds what they reserved. Raises ``ApplicationError``: 400 ``unknown_purpose``,
    ``unsupported_content_type``, ``object_too_large``; 403 ``quota_exceeded``; 502/503 as
    ``sts_token_issue``.
    """
    grant = TokenIssuance.Grant.POST_POLICY
    content_type = content_type.strip().lower()
    try:
        chosen = _purpose_for(purpose=purpose, content_type=content_type, size=size)
    except ApplicationError as exc:
        raise _refuse(user=user, context=context, grant=grant, error=exc) from None
    extension = chosen.extension(content_type, filename)
    key = f"{user_prefix(user.pk)}{chosen.folder}{uuid.uuid4().hex}{extension}"
    try:
        _usage_reserve(user=user, size=size)
    except ApplicationError as exc:
        raise _refuse(user=user, context=context, grant=grant, error=exc, object_key=key) from None
    # The form carries at most the size reserved for it (_purpose_for refused one above the purpose's
    # limit): more would let forms that declare one byte each fill the quota many times over.
    max_bytes = size
    try:
        policy = _session_policy(user=user, context=context, grant=grant)
        obtained = _obtain(user=user, context=context, grant=grant, policy=policy, object_key=key)
        credentials = obtained.credentials
        now = datetime.now(UTC).replace(microsecond=0)
        expiration = min(now + post_policy.MAX_LIFETIME, credentials.expiration)
        fields = post_policy.post_object_form(
            bucket=settings.ALIYUN_OSS_BUCKET,
            region=settings.ALIYUN_OSS_REGION,
            key=key,
            content_type=content_type,
            max_bytes=max_bytes,
            now=now,
            expiration=expiration,
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
        )
        _audit_handed_out(
            user=user,
            context=context,
            grant=grant,
            policy=policy,
            obtained=obtained,
            expiration=expiration,
            object_key=key,
        )
    except BaseException:
        _usage_release(user=user, size=size)  # nothing was handed out
        raise
    return PostPolicyGrant(
        url=oss.post_url(), fields=fields, key=key, max_bytes=max_bytes, expiration=expiration
    )


# --- Credential URLs: a secret URL that a stock mobile credential provider can GET ------------------


@dataclass(frozen=True)
class NewCredentialUrl:
    secret: str  # shown once, to its creator; only its SHA-256 is stored
    expires_at: datetime


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def credential_url_create(*, user: User, context: RequestContext) -> NewCredentialUrl:
    """A new credential URL secret for ``user``, valid for CREDENTIAL_URL_LIFETIME_MINUTES.

    The secret is ``osscu_`` + 43 URL-safe characters (256 random bits); the prefix lets the log
    filter in ``core/redaction.py`` cut it out of every log line. The user's expired URLs are
    deleted on the way, so rows do not pile up.
    """
    now = timezone.now()
    secret = CREDENTIAL_URL_SECRET_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(minutes=settings.CREDENTIAL_URL_LIFETIME_MINUTES)
    CredentialUrl.objects.filter(user=user, expires_at__lte=now).delete()
    CredentialUrl.objects.create(
        user=user,
        secret_hash=_sha256(secret),
        created_at=now,
        expires_at=expires_at,
        auth_method=context.auth_method,
        client_ip=context.client_ip,
        user_agent=storable_text(context.user_agent, 512),
        request_id=context.request_id,
    )
    return NewCredentialUrl(secret=secret, expires_at=expires_at)


def _credential_url_refused(code: str, detail: str) -> ApplicationError:
    return ApplicationError(detail, code=code, status_code=401)


def credential_url_user(*, secret: str) -> User:
    """The user a credential URL secret belongs to, if the URL still works.

    Raises ``ApplicationError`` (401) with code ``credential_url_invalid`` (no such URL),
    ``credential_url_expired`` (past its lifetime: make a new one) or ``credential_url_revoked``
    (ended by logout, a password change, deactivation or "sign out everywhere": sign in again).
    """
    row = (
        CredentialUrl.objects.select_related("user").filter(secret_hash=_sha256(secret)).first()
        if secret.startswith(CREDENTIAL_URL_SECRET_PREFIX)
        else None
    )
    if row is None:
        raise _credential_url_refused("credential_url_invalid", _("This credential URL does not exist."))
    # The user's sign-in cut-off (password change, deactivation, "sign out everywhere" in the
    # admin) ends credential URLs made before it, as it ends their JWTs: both answer "revoked".
    status = credential_url_status(row)
    if status in (CredentialUrlStatus.REVOKED, CredentialUrlStatus.CUT_OFF):
        raise _credential_url_refused(
            "credential_url_revoked", _("This credential URL was ended by a sign-out or a password change.")
        )
    if status == CredentialUrlStatus.EXPIRED:
        raise _credential_url_refused(
            "credential_url_expired", _("This credential URL has expired; ask the API for a new one.")
        )
    return row.user


def credential_urls_revoke(*, user: User) -> int:
    """End every live credential URL of ``user`` (on logout); returns how many were ended."""
    return CredentialUrl.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).update(revoked_at=timezone.now())


def credential_urls_end(*, ids: Iterable[int]) -> list[int]:
    """End the credential URLs among ``ids`` that still work (a reviewer's admin action); returns the
    ids of those it ended.

    Expired URLs and URLs already ended keep their ``revoked_at`` (or none), so their status still
    says why they stopped. The rows are locked first (PostgreSQL), so two reviewers ending the same
    URL at once do not both count it.
    """
    now = timezone.now()
    with transaction.atomic():
        candidates = CredentialUrl.objects.filter(pk__in=list(ids))
        ended = list(
            credential_urls_live(candidates, now=now)
            .select_for_update(of=("self",))
            .values_list("pk", flat=True)
        )
        CredentialUrl.objects.filter(pk__in=ended).update(revoked_at=now)
    return ended


# --- Per-user quota: usage as far as the server knows it -----------------------------------------


def _quota_exceeded() -> ApplicationError:
    return ApplicationError(
        _("Your storage quota is used up; delete files or ask for a larger quota."),
        code="quota_exceeded",
        status_code=403,
    )


def _usage_unavailable() -> ApplicationError:
    logger.exception("Could not read or write the upload usage")
    return ApplicationError(
        _("The database is unavailable; nothing was handed out."),
        code="audit_unavailable",
        status_code=503,
        retry_after=5,
    )


def _usage_summary(user: User) -> UsageSummary:
    """``upload_usage_summary``, with a database failure answered as ``audit_unavailable`` (503)."""
    try:
        return upload_usage_summary(user=user)
    except DatabaseError:
        raise _usage_unavailable() from None


def _usage_reserve(*, user: User, size: int) -> None:
    """Count a form upload of ``size`` bytes as pending, if it fits.

    Under a row lock, so two concurrent requests cannot both take the last bytes. Raises 403
    ``quota_exceeded`` if one more object, or ``size`` more bytes, would not fit.
    """
    try:
        with transaction.atomic():
            UploadUsage.objects.get_or_create(user=user)
            row = UploadUsage.objects.select_for_update().get(pk=user.pk)
            summary = usage_summary_of(row)
            if summary.quota_objects is not None and summary.used_objects + 1 > summary.quota_objects:
                raise _quota_exceeded()
            if summary.quota_bytes is not None and summary.used_bytes + size > summary.quota_bytes:
                raise _quota_exceeded()
            UploadUsage.objects.filter(pk=user.pk).update(
                pending_bytes=F("pending_bytes") + size, pending_objects=F("pending_objects") + 1
            )
    except DatabaseError:
        raise _usage_unavailable() from None


def _usage_release(*, user: User, size: int) -> None:
    """Undo a reservation whose form was never handed out (never below zero: a count may have run)."""
    try:
        UploadUsage.objects.filter(pk=user.pk).update(
            pending_bytes=Greatest(F("pending_bytes") - size, 0),
            pending_objects=Greatest(F("pending_objects") - 1, 0),
        )
    except DatabaseError:
        logger.exception("Could not release a quota reservation of user %s", user.pk)


@dataclass(frozen=True)
class UsageCount:
    """What one count found: users whose usage was stored, and the objects and bytes they hold."""

    users: int
    objects: int
    bytes: int
    unowned: int = 0  # objects under a usage root whose owner is no user (e.g. deleted)


def _store_count(*, user_id: int, objects: int, size: int, counted_at: datetime) -> None:
    """Replace the user's stored usage with a count, dropping reservations (their uploads are in it or unused)."""
    with transaction.atomic():
        UploadUsage.objects.get_or_create(user_id=user_id)
        UploadUsage.objects.filter(pk=user_id).update(
            stored_bytes=size,
            stored_objects=objects,
            pending_bytes=0,
            pending_objects=0,
            counted_at=counted_at,
        )


def upload_usage_recount(*, user: User) -> UsageCount:
    """List ``user``'s folders (``user/<id>/`` and registered roots, e.g. ``avatars/<id>/``) with the
    server's key, and store what they hold as the user's usage. Raises ``oss.OssError``.

    Reservations for forms not used yet are dropped with the count: their uploads, if they come, are
    still capped by the form's own size range and show at the next count.
    """
    counted_at = timezone.now()
    objects = size = 0
    for prefix in purposes.usage_prefixes(user.pk):
        for item in oss.list_objects(prefix):
            objects, size = objects + 1, size + item.size
    _store_count(user_id=user.pk, objects=objects, size=size, counted_at=counted_at)
    return UsageCount(users=1, objects=objects, bytes=size)


def upload_usage_refresh(*, user: User) -> None:
    """``upload_usage_recount`` after the server itself changed the user's folders (a confirmed avatar);
    never raises: a failed count leaves the previous figures until the next one."""
    try:
        upload_usage_recount(user=user)
    except (oss.OssError, DatabaseError) as exc:
        logger.warning("Could not count user %s's upload usage: %s", user.pk, getattr(exc, "code", exc))


def upload_usage_reconcile() -> UsageCount:
    """Count every user's folders in one listing per root (``user/``, ``avatars/``…) and store the result.

    Users with a usage row and nothing stored go back to zero. Raises ``oss.OssError`` before anything
    is stored.
    """
    counted_at = timezone.now()
    totals: dict[int, list[int]] = {}
    unowned = 0
    for root in purposes.usage_roots():
        for item in oss.list_objects(root):
            owner = purposes.usage_owner(root, item.key)
            if owner is None:
                unowned += 1
                continue
            entry = totals.setdefault(owner, [0, 0])
            entry[0] += 1
            entry[1] += item.size
    known = set(User.objects.filter(pk__in=list(totals)).values_list("pk", flat=True))
    unowned += sum(objects for owner, (objects, _) in totals.items() if owner not in known)
    for user_id in set(UploadUsage.objects.values_list("pk", flat=True)) | known:
        objects, size = totals.get(user_id, (0, 0))
        _store_count(user_id=user_id, objects=objects, size=size, counted_at=counted_at)
    return UsageCount(
        users=len(known),
        objects=sum(totals[u][0] for u in known),
        bytes=sum(totals[u][1] for u in known),
        unowned=unowned,
    )
