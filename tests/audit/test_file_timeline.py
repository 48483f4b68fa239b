"""Reviewers see use, not only issuance: uploads and deletes in the user's timeline, an upload whose
principal matches no issuance flagged, and the bytes and objects written per day in the overview."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.selectors import issuance_overview, user_audit_timeline
from ledger.models import ObjectEvent
from ledger.services.events import ObjectChange, change_apply
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db


def upload(user, name: str, principal: str, when: datetime, size: int = 10) -> None:
    change_apply(
        ObjectChange(
            key=f"user/{user.pk}/{name}",
            removed=False,
            size=size,
            event_time=when,
            event_name="ObjectCreated:PutObject",
            request_id=name,
            principal_id=principal,
        ),
        source=ObjectEvent.Source.EVENT,
    )


def test_uploads_and_deletes_sit_beside_issuances_and_strangers_are_flagged(user, client, django_user_model):
    now = datetime.now(UTC)
    TokenIssuance.objects.create(
        user=user,
        username=user.username,
        outcome="issued",
        auth_method="jwt",
        prefix=f"user/{user.pk}/",
        role_session_name=f"user-{user.pk}",
        created_at=now - timedelta(minutes=5),
        expiration=now + timedelta(minutes=55),
    )
    upload(user, "mine.png", f"300000000000000001:user-{user.pk}", now - timedelta(minutes=1), size=1000)
    upload(user, "stranger.png", "300000000000000001:user-999", now - timedelta(seconds=30), size=24)
    upload(user, "late.png", f"300000000000000001:user-{user.pk}", now + timedelta(hours=2))

    events = user_audit_timeline(username=user.username, account_id=user.pk, limit=50).events
    files = {event.key.rsplit("/", 1)[-1]: event.flagged for event in events if event.source == "file"}
    overview = issuance_overview(days=1)

    assert files == {"mine.png": False, "stranger.png": True, "late.png": True}
    assert any(event.source == "issuance" for event in events)
    assert (overview.written[-1].objects, overview.written[-1].bytes) in {(2, 1024), (3, 1034)}
    staff = django_user_model.objects.create_superuser(username="root", password="pw-not-used")
    client.force_login(staff)
    page = client.get(f"/admin/avatars/avatarchange/timeline/{user.username}/")
    overview_page = client.get("/admin/uploads/tokenissuance/overview/")
    assert page.status_code == 200
    assert page.content.count(b'data-testid="timeline-flagged"') == 2
    assert b"stranger.png" in page.content
    assert overview_page.status_code == 200 and b'data-testid="overview-written"' in overview_page.content
