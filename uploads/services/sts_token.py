"""Upload credentials for ``POST /api/uploads/sts-token/`` and the stock-format endpoints."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from accounts.models import User
from aliyun.policy import user_prefix
from core.requests import RequestContext

from ..models import TokenIssuance
from .quota import quota_exceeded, refusal_record, usage_summary
from .reuse import credentials_obtain, handed_out_record, session_policy_for

SHORTEST_STS_DURATION_SECONDS = 900  # AssumeRole's DurationSeconds minimum ("AssumeRole" API reference)


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


def sts_token_issue(*, user: User, context: RequestContext) -> UploadCredentials:
    """Hand ``user`` credentials that can write only under ``user/<id>/``, auditing the attempt.

    Refused with 403 ``quota_exceeded`` (audited) while the ledger shows the user's folders at or over
    their quota: a token cannot cap what it writes, so none is handed out once nothing more fits. A
    user with less than ``UPLOAD_QUOTA_SHORT_CREDENTIALS_PERCENT`` % left gets credentials of the
    shortest lifetime STS allows (900 s, "AssumeRole" DurationSeconds), which bounds what one token
    can add past the quota to 900 s of uploading.
    """
    grant = TokenIssuance.Grant.STS_TOKEN
    summary = usage_summary(user)
    if summary.at_quota:
        raise refusal_record(user=user, context=context, grant=grant, error=quota_exceeded())
    duration = None
    if summary.near_quota(settings.UPLOAD_QUOTA_SHORT_CREDENTIALS_PERCENT):
        duration = min(SHORTEST_STS_DURATION_SECONDS, settings.ALIYUN_STS_DURATION_SECONDS)
    policy = session_policy_for(user=user, context=context, grant=grant)
    obtained = credentials_obtain(
        user=user, context=context, grant=grant, policy=policy, duration_seconds=duration
    )
    credentials = obtained.credentials
    handed_out_record(
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
