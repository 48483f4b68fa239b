"""The OSS event receiver, fed by the sandbox's real MNS-style pushes (and by pushes shaped here,
signed with the sandbox's key, for what a test must control): every failure mode of issue 22.

The live server runs the product; objects go into the sandbox through oss2 with STS credentials
from ``POST /api/uploads/sts-token/``; the sandbox pushes each write and delete to the receiver.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import oss2
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import OperationalError
from werkzeug.http import http_date

from ledger.models import ObjectEvent, ReceivedMessage, StoredObject, UploadUsage
from tests.ledger.conftest import event, wait_until, xml_body

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    token = session.post(
        f"{base_url}/api/auth/token/", json={"username": username, "password": password}, timeout=10
    )
    assert token.status_code == 200, token.text
    session.headers["Authorization"] = f"Bearer {token.json()['access']}"
    return session


def token_bucket(session: requests.Session, base_url: str) -> tuple[oss2.Bucket, str]:
    body = session.post(f"{base_url}/api/uploads/sts-token/", timeout=10).json()
    auth = oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])
    return oss2.Bucket(auth, body["endpoint"], body["bucket"]), body["prefix"]


def usage(user) -> tuple[int, int]:
    row = UploadUsage.objects.filter(user=user).first()
    return (row.stored_bytes, row.stored_objects) if row else (0, 0)


def test_uploads_appear_within_seconds_and_deletes_disappear(events_to, user, password):
    api = sign_in(events_to.base_url, user.username, password)
    bucket, prefix = token_bucket(api, events_to.base_url)
    started = time.monotonic()
    bucket.put_object(f"{prefix}a.txt", b"a" * 300)
    bucket.put_object(f"{prefix}b.txt", b"b" * 200)

    def two_listed() -> list | None:
        answer = api.get(f"{events_to.base_url}/api/uploads/objects/", timeout=10)
        if answer.status_code != 200:  # SQLite's in-memory test database may be locked a moment
            return None
        results = answer.json()["results"]
        return results if len(results) == 2 else None

    listed = wait_until(two_listed)
    seen_after = time.monotonic() - started
    storage = api.get(f"{events_to.base_url}/api/me/", timeout=10).json()["storage"]
    deleted = api.delete(
        f"{events_to.base_url}/api/uploads/objects/", params={"key": f"{prefix}a.txt"}, timeout=10
    )

    assert seen_after < 5
    assert [item["key"] for item in listed] == [f"{prefix}b.txt", f"{prefix}a.txt"]  # newest first
    assert (storage["usedBytes"], storage["usedObjects"]) == (500, 2)
    assert deleted.status_code == 200 and deleted.json() == {"key": f"{prefix}a.txt", "deleted": True}
    assert usage(user) == (200, 1)
    server = oss2.Bucket(
        oss2.Auth("test-ram-user-key", "test-ram-user-secret"), events_to.sandbox.oss_endpoint, "avatars-test"
    )
    assert not server.object_exists(f"{prefix}a.txt")
    events_to.idle()
    row = StoredObject.objects.get(key=f"{prefix}b.txt")
    assert (row.size, row.principal_id.endswith(f":user-{user.pk}"), row.source_ip) == (
        200,
        True,
        "127.0.0.1",
    )
    assert ObjectEvent.objects.filter(source="user", kind="removed").count() == 1


def test_duplicate_pushes_change_nothing(events_to, user, password):
    events_to.sandbox.events.configure(duplicate=True)
    api = sign_in(events_to.base_url, user.username, password)
    bucket, prefix = token_bucket(api, events_to.base_url)
    for index in range(3):
        bucket.put_object(f"{prefix}{index}.bin", b"x" * 100)
    events_to.idle()

    outcomes = [
        (p["event"]["oss"]["object"]["key"], p["history"]) for p in events_to.sandbox.events.recent(6)
    ]
    assert usage(user) == (300, 3), outcomes
    assert ObjectEvent.objects.filter(source="event").count() == 3
    assert ReceivedMessage.objects.count() == 3


def test_reordered_pushes_of_many_overwrites_end_in_what_oss_holds(events_to, user, password, server_oss):
    events_to.sandbox.events.configure(max_delay_ms=300)
    api = sign_in(events_to.base_url, user.username, password)
    bucket, prefix = token_bucket(api, events_to.base_url)
    for size in (10, 20, 30, 40, 50):
        bucket.put_object(f"{prefix}same.bin", b"y" * size)
        time.sleep(0.005)  # eventTime has millisecond resolution
    bucket.put_object(f"{prefix}gone.bin", b"z" * 7)
    server_oss.delete_object(f"{prefix}gone.bin")  # a user's token is write-only
    events_to.idle()

    assert StoredObject.objects.get(key=f"{prefix}same.bin").size == 50
    assert not StoredObject.objects.get(key=f"{prefix}gone.bin").present
    assert usage(user) == (50, 1)


def test_a_delete_before_its_create_and_two_overwrites_reversed(push, user):
    key = f"user/{user.pk}/late.bin"
    t0 = datetime.now(UTC)
    created = event(key, size=40, when=t0)
    removed = event(key, name="ObjectRemoved:DeleteObject", when=t0 + timedelta(seconds=1))
    first = event(f"user/{user.pk}/twice.bin", size=5, when=t0)
    second = event(f"user/{user.pk}/twice.bin", size=9, when=t0 + timedelta(milliseconds=1))

    answers = [push(xml_body([e])).status_code for e in (removed, created, second, first)]

    assert answers == [204, 204, 204, 204]
    assert not StoredObject.objects.get(key=key).present
    assert StoredObject.objects.get(key=f"user/{user.pk}/twice.bin").size == 9
    assert usage(user) == (9, 1)
    assert list(ObjectEvent.objects.filter(key=key).order_by("id").values_list("kind", "applied")) == [
        ("removed", True),
        ("created", False),
    ]


def test_a_push_for_an_object_already_deleted(push, user):
    answer = push(xml_body([event(f"user/{user.pk}/never.bin", name="ObjectRemoved:DeleteObject")]))

    assert answer.status_code == 204
    assert usage(user) == (0, 0)


def test_a_replayed_push_and_the_same_oss_request_in_another_message(push, user):
    one = event(f"user/{user.pk}/r.bin", size=11, request_id="REQ1")
    body = xml_body([one], message_id="MSG-1")

    answers = [push(body).status_code, push(body).status_code, push(xml_body([one])).status_code]

    assert answers == [204, 204, 204]
    assert usage(user) == (11, 1)
    assert ObjectEvent.objects.filter(key=f"user/{user.pk}/r.bin").count() == 1


def test_forged_and_altered_pushes_are_refused_and_change_nothing(push, user, settings):
    body = xml_body([event(f"user/{user.pk}/f.bin", size=99)])
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def forged(text: str) -> str:
        return base64.b64encode(forger.sign(text.encode(), padding.PKCS1v15(), hashes.SHA1())).decode()

    answers = {
        "forged": push(body, sign=forged),
        "altered": push(body, tamper=lambda b: b.replace(b"uploads-server", b"uploads-servex")),
        "unsigned": push(body, sign=lambda text: ""),
        "old date": push(body, date=http_date(datetime.now(UTC) - timedelta(minutes=16))),
        "other topic": push(xml_body([event(f"user/{user.pk}/f.bin")], topic="someone-elses")),
        "other owner": push(xml_body([event(f"user/{user.pk}/f.bin")], owner="999")),
        "other bucket": push(xml_body([event(f"user/{user.pk}/f.bin", bucket="another")])),
        "simplified": push(base64.b64encode(b'{"events": []}'), content_type="text/plain;charset=utf-8"),
    }

    assert {name: (r.status_code, r.json()["code"]) for name, r in answers.items()} == {
        "forged": (403, "bad_signature"),
        "altered": (403, "bad_signature"),
        "unsigned": (403, "bad_signature"),
        "old date": (403, "bad_date"),
        "other topic": (403, "wrong_topic"),
        "other owner": (403, "wrong_topic"),
        "other bucket": (403, "wrong_bucket"),
        "simplified": (415, "unsupported_format"),
    }
    assert not StoredObject.objects.exists() and usage(user) == (0, 0)


def test_certificate_urls_outside_the_prefixes_and_unreachable(push, user, settings, sandbox):
    body = xml_body([event(f"user/{user.pk}/c.bin")])
    closed = "http://127.0.0.1:9/__sandbox__/"  # the discard port: nothing listens
    settings.OSS_EVENTS_CERT_URL_PREFIXES = [*settings.OSS_EVENTS_CERT_URL_PREFIXES, closed]

    outside = push(body, cert_url="https://attacker.example/cert.pem")
    lookalike = push(body, cert_url=f"{sandbox.oss_endpoint}/__sandbox__/../x.pem")
    started = time.monotonic()
    unreachable = push(body, cert_url=f"{closed}mns-signing-cert.pem")
    took = time.monotonic() - started

    assert (outside.status_code, outside.json()["code"]) == (403, "cert_url_refused")
    assert (lookalike.status_code, lookalike.json()["code"]) == (403, "cert_url_refused")
    assert (unreachable.status_code, unreachable.json()["code"]) == (503, "cert_unavailable")
    assert unreachable.headers["Retry-After"] == "5" and took < 3
    assert not StoredObject.objects.exists()


def test_the_database_down_during_a_push_answers_503_and_mns_retries_until_it_lands(
    events_to, user, password, monkeypatch
):
    from ledger.services import receiver

    real, failures = receiver.change_apply, []

    def down_twice(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(receiver, "change_apply", down_twice)
    api = sign_in(events_to.base_url, user.username, password)
    bucket, prefix = token_bucket(api, events_to.base_url)
    bucket.put_object(f"{prefix}kept.bin", b"k" * 64)
    events_to.idle()

    history = events_to.sandbox.events.recent(1)[0]["history"]
    # Two 503s from the outage (SQLite's table locks may add more), then MNS's retry lands.
    assert history[-1] == "204" and history.count("503") >= 2
    assert usage(user) == (64, 1)
    assert ReceivedMessage.objects.count() == 1


def test_a_huge_body_and_too_many_events_get_a_clear_answer(push, user, settings, events_to):
    settings.OSS_EVENTS_MAX_EVENTS = 100
    many = xml_body([event(f"user/{user.pk}/{i}.bin") for i in range(101)])
    huge = requests.post(
        f"{events_to.base_url}/api/uploads/oss-events/", data=b"<" + b"x" * (300 * 1024), timeout=10
    )

    too_many = push(many)

    assert (huge.status_code, huge.json()["code"]) == (413, "request_too_large")
    assert (too_many.status_code, too_many.json()["code"]) == (413, "too_many_events")
    assert not StoredObject.objects.exists()


@pytest.mark.slow
def test_a_flood_of_pushes(push, user, events_to):
    """200 forged pushes and 200 real events at once: every forged one is refused, every real one lands."""
    forged_body = xml_body([event(f"user/{user.pk}/forged.bin", size=1)])
    api_user = user
    started = time.monotonic()
    forged = [push(forged_body, sign=lambda text: "AAAA").status_code for _ in range(200)]
    forged_seconds = time.monotonic() - started
    bodies = [xml_body([event(f"user/{api_user.pk}/{i}.bin", size=1)]) for i in range(200)]
    started = time.monotonic()
    real = [push(body).status_code for body in bodies]
    real_seconds = time.monotonic() - started

    assert set(forged) == {403} and set(real) == {204}
    assert usage(user) == (200, 200)
    print(f"flood: 200 forged in {forged_seconds:.2f} s, 200 real in {real_seconds:.2f} s")
