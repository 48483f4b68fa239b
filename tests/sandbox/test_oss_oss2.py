"""The sandbox OSS driven by oss2 (V1 StsAuth and V4 ProviderAuthV4) over HTTP."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import crcmod
import oss2
import pytest
import requests

from sandbox.server import Sandbox
from tests.sandbox.conftest import oss2_bucket, stored_keys

VERSIONS = ["v1", "v4"]
PART = 100 * 1024  # OSS's minimum size for every part but the last

# CRC-64/XZ (ECMA-182, reflected): the check value of "123456789" is 0x995DC9BBDF1939FA.
crc64_xz = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)


def test_crc_definition_is_crc64_xz() -> None:
    assert crc64_xz(b"123456789") == 0x995DC9BBDF1939FA


@pytest.mark.parametrize("version", VERSIONS)
def test_put_get_head_round_trip(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    body = b"hello sandbox " * 100
    key = f"user/7/{version}/photo.png"

    put = bucket.put_object(key, body, headers={"Content-Type": "image/png", "x-oss-meta-origin": "test"})

    md5 = hashlib.md5(body).hexdigest().upper()
    assert put.status == 200
    assert put.etag == md5
    assert put.headers["x-oss-hash-crc64ecma"] == str(crc64_xz(body))
    assert put.headers["x-oss-request-id"]

    got = bucket.get_object(key)
    assert got.read() == body
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["ETag"] == f'"{md5}"'
    assert got.headers["x-oss-meta-origin"] == "test"
    assert got.headers["Last-Modified"]

    head = bucket.head_object(key)
    assert head.content_length == len(body)
    assert head.content_type == "image/png"
    assert head.etag == md5


def test_range_get(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    bucket.put_object("user/7/range.bin", bytes(range(256)))

    part = bucket.get_object("user/7/range.bin", byte_range=(10, 19))

    assert part.status == 206
    assert part.read() == bytes(range(10, 20))
    assert part.headers["Content-Range"] == "bytes 10-19/256"


def test_delete_needs_delete_in_the_session_policy(make_oss2, issue) -> None:
    writer = make_oss2(issue(7))
    writer.put_object("user/7/delete-me.txt", b"x")
    with pytest.raises(oss2.exceptions.AccessDenied):
        writer.delete_object("user/7/delete-me.txt")
    assert writer.object_exists("user/7/delete-me.txt")

    deleter = make_oss2(issue(7, actions=["oss:DeleteObject", "oss:GetObject"]), "v4")
    assert deleter.delete_object("user/7/delete-me.txt").status == 204
    with pytest.raises(oss2.exceptions.NoSuchKey):
        deleter.get_object("user/7/delete-me.txt")


def test_head_error_has_no_body_but_a_code(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    with pytest.raises(oss2.exceptions.NotFound) as missing:
        bucket.head_object("user/7/nothing-here")
    assert missing.value.status == 404
    assert missing.value.code == "NoSuchKey"  # read from x-oss-err, the body is empty


@pytest.mark.parametrize("version", VERSIONS)
def test_multipart_upload_of_several_parts(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    key = f"user/7/{version}/big.bin"
    chunks = [b"a" * PART, b"b" * PART, b"c" * 1234]
    upload_id = bucket.init_multipart_upload(key, headers={"Content-Type": "video/mp4"}).upload_id

    parts = []
    for number, chunk in enumerate(chunks, start=1):
        result = bucket.upload_part(key, upload_id, number, chunk)
        assert result.etag == hashlib.md5(chunk).hexdigest().upper()
        parts.append(oss2.models.PartInfo(number, result.etag))

    listed = bucket.list_parts(key, upload_id).parts
    assert [(p.part_number, p.size) for p in listed] == [(1, PART), (2, PART), (3, 1234)]

    complete = bucket.complete_multipart_upload(key, upload_id, parts)

    whole = b"".join(chunks)
    digests = b"".join(hashlib.md5(c).digest() for c in chunks)
    assert complete.etag == f"{hashlib.md5(digests).hexdigest().upper()}-3"
    assert complete.headers["x-oss-hash-crc64ecma"] == str(crc64_xz(whole))
    got = bucket.get_object(key)
    assert got.read() == whole
    assert got.headers["Content-Type"] == "video/mp4"
    assert got.headers["x-oss-object-type"] == "Multipart"
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)


def test_multipart_refuses_small_parts_and_bad_etags(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    key = "user/7/checked.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    first = bucket.upload_part(key, upload_id, 1, b"x" * 10).etag
    second = bucket.upload_part(key, upload_id, 2, b"y" * 10).etag

    def complete(parts):
        with pytest.raises(oss2.exceptions.OssError) as refused:
            bucket.complete_multipart_upload(key, upload_id, parts)
        return refused.value.status, refused.value.code

    assert complete([oss2.models.PartInfo(1, first), oss2.models.PartInfo(2, second)]) == (
        400,
        "EntityTooSmall",
    )
    assert complete([oss2.models.PartInfo(1, second)]) == (400, "InvalidPart")
    assert complete([oss2.models.PartInfo(3, first)]) == (400, "InvalidPart")
    assert not bucket.object_exists(key)


def test_abort_multipart_upload(make_oss2, user7) -> None:
    bucket = make_oss2(user7, "v4")
    key = "user/7/aborted.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"z" * 100)

    assert bucket.abort_multipart_upload(key, upload_id).status == 204

    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part(key, upload_id, 2, b"z")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload(key, upload_id)


def test_upload_id_is_bound_to_its_key(make_oss2, issue) -> None:
    """An upload started for user 7 cannot be completed under another key, and vice versa."""
    bucket = make_oss2(issue(7))
    upload_id = bucket.init_multipart_upload("user/7/a.bin").upload_id
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("user/7/b.bin", upload_id, 1, b"x")


@pytest.mark.parametrize("version", VERSIONS)
def test_presigned_get(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    bucket.put_object("user/7/shared.txt", b"presigned", headers={"Content-Type": "text/plain"})

    url = bucket.sign_url("GET", "user/7/shared.txt", 60)
    answer = requests.get(url, timeout=5)

    assert answer.status_code == 200
    assert answer.content == b"presigned"

    tampered = requests.get(url.replace("shared.txt", "shared.txT"), timeout=5)
    assert tampered.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in tampered.content

    other = bucket.sign_url("GET", "user/8/shared.txt", 60)
    refused = requests.get(other, timeout=5)
    assert refused.status_code == 403
    assert b"<Code>AccessDenied</Code>" in refused.content


def test_expired_presigned_url(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    bucket.put_object("user/7/old.txt", b"x")

    url = bucket.sign_url("GET", "user/7/old.txt", -10)
    answer = requests.get(url, timeout=5)

    assert answer.status_code == 403
    assert b"<Code>AccessDenied</Code>" in answer.content
    assert b"Request has expired" in answer.content


@pytest.mark.parametrize("version", VERSIONS)
def test_wrong_secret_is_signature_does_not_match(sandbox, bucket_name, user7, version) -> None:
    from dataclasses import replace

    last = user7.access_key_secret[-1]
    # Always a different last character: "x" alone left 1 secret in 64 unchanged, and the test failed.
    forged = replace(user7, access_key_secret=user7.access_key_secret[:-1] + ("y" if last == "x" else "x"))
    bucket = oss2_bucket(sandbox.oss_endpoint, bucket_name, forged, version=version)

    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/forged.txt", b"x")

    assert (refused.value.status, refused.value.code) == (403, "SignatureDoesNotMatch")


def test_unknown_key_and_bad_token(sandbox, bucket_name, user7) -> None:
    from dataclasses import replace

    unknown = oss2.Bucket(oss2.Auth("LTAI-nobody", "secret"), sandbox.oss_endpoint, bucket_name)
    with pytest.raises(oss2.exceptions.OssError) as refused:
        unknown.put_object("user/7/x", b"x")
    assert (refused.value.status, refused.value.code) == (403, "InvalidAccessKeyId")

    tampered = replace(user7, security_token=user7.security_token[:-4] + "AAAA")
    bucket = oss2_bucket(sandbox.oss_endpoint, bucket_name, tampered)
    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/x", b"x")
    assert (refused.value.status, refused.value.code) == (403, "InvalidSecurityToken")


@pytest.mark.parametrize("version", VERSIONS)
def test_expired_token(make_oss2, issue, version) -> None:
    expired = issue(7, duration_seconds=900, now=datetime.now(UTC) - timedelta(hours=1))
    bucket = make_oss2(expired, version)

    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/late.txt", b"x")

    assert (refused.value.status, refused.value.code) == (403, "SecurityTokenExpired")


def test_request_time_too_skewed(sandbox, bucket_name, user7) -> None:
    """The clock check comes before the signature: an hour-old Date is refused as skewed."""
    url = f"{sandbox.oss_endpoint}/{bucket_name}/user/7/skew.txt"
    headers = {
        "Authorization": f"OSS {user7.access_key_id}:not-a-real-signature",
        "x-oss-security-token": user7.security_token,
    }
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    fresh = format_datetime(datetime.now(UTC), usegmt=True)

    skewed = requests.put(url, data=b"x", headers={**headers, "Date": stale}, timeout=5)
    current = requests.put(url, data=b"x", headers={**headers, "Date": fresh}, timeout=5)

    assert skewed.status_code == 403
    assert b"<Code>RequestTimeTooSkewed</Code>" in skewed.content
    assert b"<ServerTime>" in skewed.content
    assert b"<Code>SignatureDoesNotMatch</Code>" in current.content


def test_anonymous_request_is_access_denied(sandbox, bucket_name) -> None:
    answer = requests.put(f"{sandbox.oss_endpoint}/{bucket_name}/user/7/anon.txt", data=b"x", timeout=5)

    assert answer.status_code == 403
    assert b"<Code>AccessDenied</Code>" in answer.content
    assert answer.headers["x-oss-request-id"]


def test_content_md5_is_checked(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()

    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/md5.txt", b"body", headers={"Content-MD5": wrong})

    assert (refused.value.status, refused.value.code) == (400, "InvalidDigest")
    assert not bucket.object_exists("user/7/md5.txt")


def test_objects_survive_a_restart(tmp_path, issue) -> None:
    from sandbox.config import SandboxConfig

    config = SandboxConfig.from_settings(data_dir=tmp_path / "restart")
    creds = issue(7)
    with Sandbox(config) as first:
        oss2_bucket(first.oss_endpoint, config.bucket, creds).put_object("user/7/kept.txt", b"still here")

    with Sandbox(config) as second:
        bucket = oss2_bucket(second.oss_endpoint, config.bucket, creds, version="v4")
        assert bucket.get_object("user/7/kept.txt").read() == b"still here"
    assert stored_keys(config) == ["user/7/kept.txt"]


def test_cors_preflight_and_exposed_headers(sandbox, bucket_name, make_oss2, user7, monkeypatch) -> None:
    origin = "http://localhost:8000"
    monkeypatch.setattr(sandbox.config, "cors_allowed_origins", [origin])  # SANDBOX_CORS_ALLOWED_ORIGINS
    preflight = requests.options(
        f"{sandbox.oss_endpoint}/{bucket_name}/user/7/browser.txt",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, x-oss-date, x-oss-security-token",
        },
        timeout=5,
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Headers"] == (
        "authorization, x-oss-date, x-oss-security-token"
    )
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Max-Age"]

    refused = requests.put(
        f"{sandbox.oss_endpoint}/{bucket_name}/user/7/browser.txt",
        data=b"x",
        headers={"Origin": origin},
        timeout=5,
    )
    assert refused.status_code == 403
    assert refused.headers["Access-Control-Allow-Origin"] == origin
    assert "ETag" in refused.headers["Access-Control-Expose-Headers"]
    assert "x-oss-request-id" in refused.headers["Access-Control-Expose-Headers"]
