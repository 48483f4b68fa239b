"""Per-user quota: usage the server knows (the ledger, forms it signed, listings that correct it) and the refusals.

Objects get into the sandbox the way clients put them there (STS credentials from the API, or a form
from post-policy); counts go through the server's own key with ListObjectsV2.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO

import oss2
import pytest
import requests
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.throttling import rate_limits_clear
from ledger.models import FormReservation, UploadUsage
from ledger.services.usage import usage_reserve
from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from tests.pngs import png_bytes
from uploads.models import TokenIssuance

POLICY_URL = "/api/uploads/post-policy/"
STS_URL = "/api/uploads/sts-token/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh(settings, tmp_path) -> Iterator[Sandbox]:
    """A sandbox of its own: user ids repeat between tests, so the shared bucket holds others' objects."""
    with Sandbox(SandboxConfig.from_settings(data_dir=tmp_path / "sandbox")) as fresh:
        settings.ALIYUN_STS_ENDPOINT = fresh.sts_endpoint
        settings.ALIYUN_OSS_ENDPOINT = fresh.oss_endpoint
        yield fresh


def ask(client, size: int = 100, content_type: str = "image/png"):
    return client.post(POLICY_URL, {"contentType": content_type, "size": size}, format="json")


def send(form: dict, content: bytes) -> requests.Response:
    return requests.post(
        form["url"], data=list(form["fields"].items()), files={"file": ("f.png", content)}, timeout=10
    )


def put_with_token(client, key_suffix: str, data: bytes) -> str:
    body = client.post(STS_URL).json()
    bucket = oss2.Bucket(
        oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"]),
        body["endpoint"],
        body["bucket"],
    )
    key = body["prefix"] + key_suffix
    bucket.put_object(key, data)
    return key


def storage(client) -> dict:
    return client.get("/api/me/").json()["storage"]


def refusals() -> list[tuple[str, str, str]]:
    return list(
        TokenIssuance.objects.filter(outcome="refused")
        .order_by("id")
        .values_list("grant", "error_code", "username")
    )


def test_me_shows_usage_and_the_default_quota(jwt_client, settings):
    settings.UPLOAD_QUOTA_BYTES = 10_000
    settings.UPLOAD_QUOTA_OBJECTS = 5

    before = storage(jwt_client)
    assert ask(jwt_client, size=1234).status_code == 200
    after = storage(jwt_client)

    assert before == {
        "usedBytes": 0,
        "usedObjects": 0,
        "quotaBytes": 10_000,
        "quotaObjects": 5,
        "countedAt": None,
    }
    assert (after["usedBytes"], after["usedObjects"]) == (1234, 1)  # the declared size, until it is used


def test_per_user_override_and_zero_is_no_limit(jwt_client, user, settings):
    settings.UPLOAD_QUOTA_BYTES = 10_000
    UploadUsage.objects.create(user=user, quota_bytes=0, quota_objects=3)

    shown = storage(jwt_client)

    assert (shown["quotaBytes"], shown["quotaObjects"]) == (None, 3)


def test_over_quota_user_is_refused_by_both_endpoints_and_each_refusal_is_audited(jwt_client, user, settings):
    settings.UPLOAD_QUOTA_BYTES = 1000
    UploadUsage.objects.create(user=user, stored_bytes=1000, stored_objects=1)

    form = ask(jwt_client, size=1)
    token = jwt_client.post(STS_URL)

    for response in (form, token):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "quota_exceeded"
        assert "accessKeySecret" not in response.json()
    assert refusals() == [
        ("post_policy", "quota_exceeded", "alice"),
        ("sts_token", "quota_exceeded", "alice"),
    ]
    assert TokenIssuance.objects.filter(outcome__in=["issued", "reused"]).count() == 0


def test_a_form_that_would_not_fit_is_refused_but_a_smaller_one_is_signed(jwt_client, user, settings):
    settings.UPLOAD_QUOTA_BYTES = 1000
    UploadUsage.objects.create(user=user, stored_bytes=400, stored_objects=1)

    too_big = ask(jwt_client, size=601)
    fits = ask(jwt_client, size=600)

    assert too_big.status_code == 403 and too_big.json()["code"] == "quota_exceeded"
    assert fits.status_code == 200
    row = TokenIssuance.objects.get(outcome="refused")
    assert (row.grant, row.error_code) == ("post_policy", "quota_exceeded") and row.object_key
    # The form carries no more than the quota had left, so a client that lied about the size is stopped by OSS.
    assert fits.json()["maxBytes"] == 600
    assert send(fits.json(), b"\x89PNG" + b"x" * 597).status_code == 400  # 601 bytes: EntityTooLarge
    assert jwt_client.post(STS_URL).status_code == 403  # the reservation filled the quota


def test_object_quota(jwt_client, settings):
    settings.UPLOAD_QUOTA_OBJECTS = 2

    statuses = [ask(jwt_client).status_code for _ in range(3)]

    assert statuses == [200, 200, 403]
    assert jwt_client.post(STS_URL).json()["code"] == "quota_exceeded"


def test_a_failed_sts_call_gives_the_reservation_back(jwt_client, fresh, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    fresh.config.faults.configure(fail_every=1)

    assert ask(jwt_client, size=500).status_code == 503

    assert (storage(jwt_client)["usedBytes"], storage(jwt_client)["usedObjects"]) == (0, 0)


def test_reconcile_counts_what_the_folders_hold(jwt_client, user, other_user, password):
    put_with_token(jwt_client, "notes/a.txt", b"a" * 300)
    put_with_token(jwt_client, "notes/b.txt", b"b" * 200)
    image = png_bytes(3, 3)
    form = ask(jwt_client, size=999_999).json()  # declares far more than it sends
    assert send(form, image).status_code == 204
    bob = APIClient()
    other = bob.post("/api/auth/token/", {"username": "bob", "password": password}, format="json")
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {other.json()['access']}")
    put_with_token(bob, "x.bin", b"x" * 50)
    assert storage(jwt_client)["usedBytes"] == 999_999

    call_command("reconcile_upload_usage", stdout=StringIO())

    mine = UploadUsage.objects.get(user=user)
    # The form's object is in the ledger now, so its reservation is gone with it.
    assert (mine.stored_bytes, mine.stored_objects, mine.pending_bytes, mine.pending_objects) == (
        500 + len(image),
        3,
        0,
        0,
    )
    assert not FormReservation.objects.exists()
    assert mine.counted_at is not None
    theirs = UploadUsage.objects.get(user=other_user)
    assert (theirs.stored_bytes, theirs.stored_objects) == (50, 1)
    assert storage(jwt_client)["usedBytes"] == 500 + len(image)


def test_reconcile_one_user_and_unknown_users(jwt_client, user, capsys):
    put_with_token(jwt_client, "only.txt", b"z" * 70)

    call_command("reconcile_upload_usage", "--user", "alice")
    with pytest.raises(CommandError, match="nobody"):
        call_command("reconcile_upload_usage", "--user", "nobody")

    assert "Counted 1 user(s): 1 object(s)" in capsys.readouterr().out
    assert UploadUsage.objects.get(user=user).stored_bytes == 70


def test_a_confirmed_avatar_is_counted_where_it_now_lives(jwt_client, user):
    image = png_bytes(5, 5)
    form = ask(jwt_client, size=len(image) + 1000).json()
    assert send(form, image).status_code == 204

    assert jwt_client.post("/api/me/avatar/", {"key": form["key"]}, format="json").status_code == 200

    usage = UploadUsage.objects.get(user=user)
    # The upload was copied to avatars/<id>/ and removed from user/<id>/: one object, its real size.
    assert (usage.stored_bytes, usage.stored_objects, usage.pending_bytes) == (len(image), 1, 0)


def test_a_confirmation_keeps_the_reservations_of_unused_forms(jwt_client, user, settings):
    """The reset the issue found: a confirmation recounted the folders and zeroed every reservation,
    so the next forms reserved the whole quota again. Now only the form whose object appeared is off."""
    settings.UPLOAD_QUOTA_BYTES, settings.UPLOAD_QUOTA_OBJECTS = 20_000, 0
    image = png_bytes(5, 5)
    used = ask(jwt_client, size=len(image)).json()
    unused = [ask(jwt_client, size=5000) for _ in range(3)]
    assert all(answer.status_code == 200 for answer in unused)
    assert send(used, image).status_code == 204
    assert jwt_client.post("/api/me/avatar/", {"key": used["key"]}, format="json").status_code == 200

    assert storage(jwt_client)["usedBytes"] == len(image) + 15_000
    refused = ask(jwt_client, size=5000)
    assert refused.status_code == 403 and refused.json()["code"] == "quota_exceeded"


def test_reconcile_fails_cleanly_when_oss_refuses(jwt_client, settings):
    settings.ALIYUN_ACCESS_KEY_SECRET = "not-the-secret"
    with pytest.raises(CommandError, match="SignatureDoesNotMatch"):
        call_command("reconcile_upload_usage")


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    quota=st.integers(min_value=1, max_value=10_000),
    sizes=st.lists(st.integers(min_value=1, max_value=4_000), min_size=1, max_size=8),
)
def test_reservations_never_exceed_the_quota(user, settings, quota, sizes):
    settings.UPLOAD_QUOTA_BYTES = quota
    settings.UPLOAD_QUOTA_OBJECTS = 0
    UploadUsage.objects.filter(user=user).delete()
    FormReservation.objects.filter(user=user).delete()
    granted = 0
    for size in sizes:
        try:
            usage_reserve(
                user=user,
                size=size,
                key=f"user/{user.pk}/avatars/{uuid.uuid4().hex}.png",
                content_type="image/png",
                expires_at=datetime.now(UTC) + timedelta(minutes=10),
            )
        except Exception as exc:
            assert getattr(exc, "code", "") == "quota_exceeded"
            assert granted + size > quota
            continue
        granted += size
    row = UploadUsage.objects.filter(user=user).first()
    assert (row.pending_bytes if row else 0) == granted <= quota


def test_staff_set_a_users_quota_in_the_admin_and_recount(client, django_user_model, jwt_client, user):
    staff = django_user_model.objects.create_superuser(username="root", password="pw-not-used-here")
    client.force_login(staff)
    put_with_token(jwt_client, "a.txt", b"a" * 40)
    usage = UploadUsage.objects.create(user=user, stored_bytes=5)

    listing = client.get("/admin/ledger/uploadusage/")
    changed = client.post(
        f"/admin/ledger/uploadusage/{user.pk}/change/",
        {"quota_bytes": "2048", "quota_objects": ""},
    )
    usage.refresh_from_db()
    assert (usage.quota_bytes, usage.quota_objects, usage.stored_bytes) == (2048, None, 5)
    recounted = client.post(
        "/admin/ledger/uploadusage/",
        {"action": "recount", "_selected_action": [str(user.pk)]},
    )

    assert listing.status_code == 200 and b"alice" in listing.content
    assert changed.status_code == 302
    assert recounted.status_code == 302
    usage.refresh_from_db()
    assert (usage.stored_bytes, usage.stored_objects) == (40, 1)
    assert storage(jwt_client)["quotaBytes"] == 2048


def test_reconcile_reports_objects_of_no_user(jwt_client, user, capsys):
    put_with_token(jwt_client, "kept.txt", b"k" * 10)
    user_id = user.pk
    user.delete()

    call_command("reconcile_upload_usage")

    assert "1 object(s) belong to no user" in capsys.readouterr().out
    assert not UploadUsage.objects.filter(pk=user_id).exists()


def test_the_stock_mobile_format_is_refused_over_quota_too(jwt_client, user, settings):
    settings.UPLOAD_QUOTA_OBJECTS = 1
    UploadUsage.objects.create(user=user, stored_objects=1)

    response = jwt_client.get("/api/uploads/sts-server/")

    assert response.status_code == 403
    assert response.json()["ErrorCode"] == "quota_exceeded"
    assert "AccessKeySecret" not in response.json()
    assert refusals() == [("sts_token", "quota_exceeded", "alice")]


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    uploads=st.lists(
        st.tuples(st.integers(min_value=1, max_value=900), st.integers(min_value=1, max_value=1500)),
        min_size=1,
        max_size=5,
    )
)
def test_forms_never_store_more_than_the_quota_whatever_size_they_declare(
    jwt_client, user, settings, fresh, uploads
):
    """Each client declares one size and sends another: storage keeps what the forms carried within the
    quota, because a form carries at most the size it reserved."""
    settings.UPLOAD_QUOTA_BYTES, settings.UPLOAD_QUOTA_OBJECTS = 2000, 0
    server = oss2.Bucket(
        oss2.Auth(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET),
        fresh.oss_endpoint,
        settings.ALIYUN_OSS_BUCKET,
    )
    prefix = f"user/{user.pk}/"
    for listed in oss2.ObjectIterator(server, prefix=prefix):
        server.delete_object(listed.key)
    UploadUsage.objects.filter(user=user).delete()
    rate_limits_clear()

    for declared, sent in uploads:
        answer = ask(jwt_client, size=declared)
        if answer.status_code != 200:
            assert answer.json()["code"] == "quota_exceeded"
            continue
        stored = send(answer.json(), (b"\x89PNG" + b"x" * sent)[:sent])
        assert stored.status_code == (204 if sent <= declared else 400), (declared, sent, stored.text)

    assert sum(listed.size for listed in oss2.ObjectIterator(server, prefix=prefix)) <= 2000
