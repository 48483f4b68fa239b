"""One user's audit story: credential issuances and avatar changes on one timeline, for reviewers."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from avatars.models import AvatarChange
from ledger.models import ObjectEvent
from tests.audit.test_file_timeline import upload
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db


def timeline_url(username: str) -> str:
    return f"/admin/avatars/avatarchange/timeline/{username}/"


def reviewer_with(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user(username="reviewer", password="x", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def story(user, other_user):
    """alice: two issuances and two avatar changes, from two addresses; bob: one issuance."""
    now = timezone.now()

    def issuance(who, minutes, outcome, ip, error_code=""):
        return TokenIssuance.objects.create(
            user=who,
            username=who.username,
            outcome=outcome,
            auth_method="jwt",
            prefix=f"user/{who.pk}/",
            client_ip=ip,
            user_agent="okhttp/4.12.0",
            error_code=error_code,
            request_id=f"req-{who.username}-{minutes}",
            created_at=now - timedelta(minutes=minutes),
        )

    issuance(user, 30, "issued", "203.0.113.7")
    issuance(user, 20, "refused", "198.51.100.9", "throttled")
    issuance(other_user, 10, "issued", "192.0.2.1")
    AvatarChange.objects.create(
        user=user,
        username=user.username,
        kind="upload_key_granted",
        object_key=f"user/{user.pk}/avatars/a.png",
        client_ip="203.0.113.7",
        user_agent="Mozilla/5.0 Chrome",
        created_at=now - timedelta(minutes=25),
    )
    AvatarChange.objects.create(
        user=user,
        username=user.username,
        kind="confirmation_refused",
        reason="not_an_image",
        object_key=f"user/{user.pk}/avatars/a.png",
        etag='"0CC175B9C0F1B6A831C399E269772661"',
        client_ip="203.0.113.7",
        user_agent="Mozilla/5.0 Chrome",
        created_at=now - timedelta(minutes=5),
    )


def test_timeline_merges_both_logs_newest_first(client, django_user_model, story, user):
    client.force_login(reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange"))
    page = client.get(timeline_url(user.username))

    assert page.status_code == 200
    events = page.context["timeline"].events
    assert [(event.source, event.what) for event in events] == [
        ("avatar", "confirmation_refused"),
        ("issuance", "refused"),
        ("avatar", "upload_key_granted"),
        ("issuance", "issued"),
    ]
    html = page.content.decode()
    assert "not_an_image" in html and "0CC175B9C0F1B6A831C399E269772661" in html
    assert "198.51.100.9" in html and "okhttp/4.12.0" in html and "Mozilla/5.0 Chrome" in html
    assert "192.0.2.1" not in html  # bob's row
    assert dict(page.context["timeline"].addresses) == {"203.0.113.7": 3, "198.51.100.9": 1}


def test_timeline_shows_only_the_logs_the_reviewer_may_view(client, django_user_model, story, user):
    client.force_login(reviewer_with(django_user_model, "view_tokenissuance"))
    events = client.get(timeline_url(user.username)).context["timeline"].events
    assert {event.source for event in events} == {"issuance"}


def test_timeline_refuses_staff_without_either_permission_and_non_staff(
    client, django_user_model, story, user
):
    client.force_login(reviewer_with(django_user_model))
    assert client.get(timeline_url(user.username)).status_code == 403
    client.force_login(django_user_model.objects.create_user(username="plain", password="x"))
    assert client.get(timeline_url(user.username)).status_code == 302  # to the admin login
    client.logout()
    assert client.get(timeline_url(user.username)).status_code == 302


def test_timeline_pages_backwards(client, django_user_model, story, user, monkeypatch):
    monkeypatch.setattr("audit.admin.TIMELINE_PAGE", 3)
    client.force_login(reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange"))
    first = client.get(timeline_url(user.username))
    older = first.context["timeline"].older
    assert len(first.context["timeline"].events) == 3 and older is not None

    second = client.get(timeline_url(user.username), {"before": older.isoformat()})
    assert [event.what for event in second.context["timeline"].events] == ["issued"]
    assert second.context["timeline"].older is None
    assert client.get(timeline_url(user.username), {"before": "yesterday"}).status_code == 200


def test_a_deleted_users_story_is_kept_under_their_name(client, django_user_model, story, user):
    user.delete()
    client.force_login(reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange"))
    page = client.get(timeline_url("alice"))
    assert len(page.context["timeline"].events) == 4
    assert page.context["account"] is None


def test_reachable_from_the_audit_list_and_the_users_admin_page(admin_client, story, user):
    changelist = admin_client.get("/admin/uploads/tokenissuance/").content.decode()
    assert f'href="{timeline_url("alice")}"' in changelist
    avatar_list = admin_client.get("/admin/avatars/avatarchange/").content.decode()
    assert f'href="{timeline_url("alice")}"' in avatar_list
    user_page = admin_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert f'href="{timeline_url("alice")}"' in user_page


def test_account_facts_only_for_reviewers_who_may_view_users(client, django_user_model, story, user):
    reviewer = reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange")
    client.force_login(reviewer)
    page = client.get(timeline_url(user.username)).content.decode()
    assert "Account details are shown to reviewers who may view users." in page
    assert "last login" not in page and "joined" not in page

    reviewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(reviewer)
    page = client.get(timeline_url(user.username)).content.decode()
    assert "last login" in page and "joined" in page


def test_a_new_account_with_a_deleted_accounts_name_does_not_inherit_its_history(
    client, django_user_model, story, user
):
    reviewer = reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange", "view_user")
    client.force_login(reviewer)
    name, old_request = user.username, f"req-{user.username}-30"
    user.delete()
    newcomer = django_user_model.objects.create_user(username=name, password="x")
    TokenIssuance.objects.create(
        user=newcomer,
        username=name,
        outcome="issued",
        auth_method="jwt",
        prefix=f"user/{newcomer.pk}/",
        request_id="req-newcomer",
    )

    page = client.get(timeline_url(name)).content.decode()
    assert "req-newcomer" in page and old_request not in page
    assert "?deleted=1" in page  # the old rows are a link away, named as a deleted account's

    old = client.get(timeline_url(name) + "?deleted=1").content.decode()
    assert old_request in old and "req-newcomer" not in old
    assert "belong to deleted accounts" in old


def test_a_deleted_accounts_rows_keep_its_id_and_each_deleted_account_is_shown_apart(
    client, django_user_model
):
    """Two accounts named carol, each deleted in turn: every audit row keeps the id of its own account
    (issuances, avatar changes, file events), and the reviewer can read either account's story alone."""
    client.force_login(
        reviewer_with(django_user_model, "view_tokenissuance", "view_avatarchange", "view_user")
    )
    now = timezone.now()
    ids = []
    for turn in (1, 2):
        account = django_user_model.objects.create_user(username="carol", password="x")
        ids.append(account.pk)
        TokenIssuance.objects.create(
            user=account,
            username="carol",
            outcome="issued",
            auth_method="jwt",
            prefix=f"user/{account.pk}/",
            role_session_name=f"user-{account.pk}",
            request_id=f"req-carol-{turn}",
            created_at=now - timedelta(minutes=5),
            expiration=now + timedelta(minutes=55),
        )
        AvatarChange.objects.create(
            user=account, username="carol", kind="upload_key_granted", request_id=f"avatar-carol-{turn}"
        )
        upload(
            account, f"file-{turn}.png", f"300000000000000001:user-{account.pk}", now - timedelta(minutes=1)
        )
        account.delete()

    for model in (TokenIssuance, AvatarChange, ObjectEvent):
        kept = set(model.objects.values_list("user_id", "deleted_account_id"))
        assert kept == {(None, ids[0]), (None, ids[1])}, model

    both = client.get(timeline_url("carol")).content.decode()  # nobody is named carol now
    assert "req-carol-1" in both and "req-carol-2" in both
    assert (
        f'href="?deleted=1&amp;account={ids[0]}"' in both
        and f'href="?deleted=1&amp;account={ids[1]}"' in both
    )

    first = client.get(timeline_url("carol") + f"?deleted=1&account={ids[0]}")
    events = first.context["timeline"].events
    assert {event.request_id for event in events if event.source != "file"} == {
        "req-carol-1",
        "avatar-carol-1",
    }
    assert {event.deleted_account_id for event in events} == {ids[0]}
    files = [event for event in events if event.source == "file"]
    assert [event.key for event in files] == [f"user/{ids[0]}/file-1.png"]
    assert not files[0].flagged  # its upload matches the deleted account's own issuance


@pytest.mark.parametrize("account", ["0", "-1", "abc", "9" * 40, "\uff11"])
def test_an_account_id_that_is_no_id_shows_every_deleted_account(client, django_user_model, account):
    client.force_login(reviewer_with(django_user_model, "view_tokenissuance"))
    page = client.get(timeline_url("nobody") + f"?deleted=1&account={account}")
    assert page.status_code == 200 and page.context["deleted_id"] is None


@hypothesis_settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(account=st.text(max_size=40), deleted=st.sampled_from(["1", "0", ""]), before=st.text(max_size=40))
def test_any_query_string_gives_a_timeline_page(client, django_user_model, account, deleted, before):
    """Whatever a reviewer's browser sends as ``account``, ``deleted`` or ``before``: a page, never a 500."""
    reviewer = django_user_model.objects.get_or_create(username="reviewer", defaults={"is_staff": True})[0]
    reviewer.user_permissions.add(Permission.objects.get(codename="view_tokenissuance"))
    client.force_login(reviewer)
    page = client.get(timeline_url("nobody"), {"account": account, "deleted": deleted, "before": before})
    assert page.status_code == 200
    deleted_id = page.context["deleted_id"]
    assert deleted_id is None or (account.isascii() and account.isdigit() and deleted_id == int(account) > 0)
