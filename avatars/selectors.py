from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext, pgettext

from accounts.models import User
from aliyun import oss
from uploads.models import OUTCOME_BADGES, TokenIssuance

from .models import AvatarChange
from .services import avatar_content_disposition, avatar_served_type

# Long enough to render the page and load the image, short enough that a leaked URL soon dies.
AVATAR_URL_SECONDS = 600


def user_avatar_url(user: User) -> str | None:
    """A short-lived signed GET URL of the confirmed avatar: the bucket stays private."""
    if not user.avatar_key:
        return None
    content_type = avatar_served_type(user.avatar_key)
    return oss.signed_get_url(
        user.avatar_key,
        AVATAR_URL_SECONDS,
        content_type=content_type,
        content_disposition=avatar_content_disposition(content_type),
    )


# --- The audit story of one user, for reviewers (avatars/admin.py) --------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    """One audit row of either log, in the shape the timeline shows."""

    at: datetime
    source: str  # "issuance" (uploads.TokenIssuance) or "avatar" (avatars.AvatarChange)
    pk: int
    what: str  # the outcome or kind, e.g. "refused", "confirmation_accepted"
    label: str  # its human name
    badge: str  # what it says in a few words, e.g. "credentials refused"
    detail: str  # error code or reason, and the keys involved
    client_ip: str | None
    user_agent: str
    request_id: str


@dataclass(frozen=True)
class Timeline:
    events: list[TimelineEvent]
    older: datetime | None  # pass as ``before`` for the next page; None when this is the last
    addresses: list[tuple[str, int]]  # client IPs on this page, most frequent first, with counts
    user_agents: list[tuple[str, int]]


def user_audit_timeline(
    *,
    username: str,
    before: datetime | None = None,
    limit: int = 200,
    issuances: bool = True,
    avatar_changes: bool = True,
) -> Timeline:
    """The newest ``limit`` audit rows of ``username`` (the copied name, so deleted users keep their
    story) older than ``before``, credential issuances and avatar changes merged, newest first.

    Each log is read through its (username, created_at) index, ``limit`` rows at most; ``issuances``
    and ``avatar_changes`` leave a log out (a reviewer without its view permission).
    """
    events: list[TimelineEvent] = []
    if issuances:
        rows = TokenIssuance.objects.filter(username=username)
        if before is not None:
            rows = rows.filter(created_at__lt=before)
        for row in rows.order_by("-created_at")[:limit]:
            detail = " · ".join(part for part in (row.error_code, row.access_key_id) if part)
            outcome = OUTCOME_BADGES.get(row.outcome, row.outcome)
            events.append(
                TimelineEvent(
                    row.created_at,
                    "issuance",
                    row.pk,
                    row.outcome,
                    row.get_outcome_display(),
                    pgettext("timeline badge", "credentials %(outcome)s") % {"outcome": outcome},
                    detail,
                    row.client_ip,
                    row.user_agent,
                    row.request_id,
                )
            )
    if avatar_changes:
        changes = AvatarChange.objects.filter(username=username)
        if before is not None:
            changes = changes.filter(created_at__lt=before)
        for change in changes.order_by("-created_at")[:limit]:
            parts = (change.reason, change.object_key, change.etag and f"ETag {change.etag}")
            events.append(
                TimelineEvent(
                    change.created_at,
                    "avatar",
                    change.pk,
                    change.kind,
                    change.get_kind_display(),
                    change.get_kind_display().lower(),
                    " · ".join(part for part in parts if part),
                    change.client_ip,
                    change.user_agent,
                    change.request_id,
                )
            )
    events.sort(key=lambda event: event.at, reverse=True)
    page = events[:limit]
    older = page[-1].at if page and len(page) == limit else None
    return Timeline(
        events=page,
        older=older,
        addresses=Counter(event.client_ip or gettext("unknown") for event in page).most_common(),
        user_agents=Counter(event.user_agent or gettext("(none)") for event in page).most_common(),
    )
