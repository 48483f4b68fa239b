"""Server-signed PostObject forms: OSS itself then enforces the size, type and key of one upload."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from accounts.models import User
from aliyun import oss, post_policy
from aliyun.policy import user_prefix
from core.exceptions import ApplicationError
from core.requests import RequestContext

from .. import purposes
from ..models import TokenIssuance
from .quota import refusal_record, usage_release, usage_reserve
from .reuse import credentials_obtain, handed_out_record, session_policy_for

RESERVATION_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class PostPolicyGrant:
    """A signed PostObject form: POST ``fields`` then the file (as field ``file``, last) to ``url``."""

    url: str
    fields: dict[str, str]
    key: str
    max_bytes: int
    expiration: datetime


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

    Quota: the declared size and one object are reserved for the key (refused if they do not fit)
    until the form expires or its object is in the ledger, and storage refuses a file larger than
    declared, so what forms add to the folders never exceeds what they reserved. Raises ``ApplicationError``: 400 ``unknown_purpose``,
    ``unsupported_content_type``, ``object_too_large``; 403 ``quota_exceeded``; 502/503 as
    ``sts_token_issue``.
    """
    grant = TokenIssuance.Grant.POST_POLICY
    content_type = content_type.strip().lower()
    try:
        chosen = _purpose_for(purpose=purpose, content_type=content_type, size=size)
    except ApplicationError as exc:
        raise refusal_record(user=user, context=context, grant=grant, error=exc) from None
    extension = chosen.extension(content_type, filename)
    key = f"{user_prefix(user.pk)}{chosen.folder}{uuid.uuid4().hex}{extension}"
    # Reserved until the form can no longer be used (plus a minute for OSS's event to arrive), or
    # until its object is in the ledger: nothing else (a confirmation, a reconcile) drops it.
    reserved_until = datetime.now(UTC) + post_policy.MAX_LIFETIME + RESERVATION_GRACE
    try:
        usage_reserve(user=user, size=size, key=key, content_type=content_type, expires_at=reserved_until)
    except ApplicationError as exc:
        raise refusal_record(user=user, context=context, grant=grant, error=exc, object_key=key) from None
    # The form carries at most the size reserved for it (_purpose_for refused one above the purpose's
    # limit): more would let forms that declare one byte each fill the quota many times over.
    max_bytes = size
    try:
        policy = session_policy_for(user=user, context=context, grant=grant)
        obtained = credentials_obtain(user=user, context=context, grant=grant, policy=policy, object_key=key)
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
            success_action_status=chosen.success_action_status,
        )
        handed_out_record(
            user=user,
            context=context,
            grant=grant,
            policy=policy,
            obtained=obtained,
            expiration=expiration,
            object_key=key,
        )
    except BaseException:
        usage_release(user=user, key=key)  # nothing was handed out
        raise
    return PostPolicyGrant(
        url=oss.post_url(), fields=fields, key=key, max_bytes=max_bytes, expiration=expiration
    )
