"""Object headers as OSS keeps them: standard headers from upload, CopyObject COPY/REPLACE, conditional GETs.

Each case goes through a real SDK (oss2, alibabacloud-oss-v2) or a PostObject form, then reads the object
back with HEAD and GET.
"""

from __future__ import annotations

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests

from tests.sandbox.test_oss_post_object import post, signed_form

STANDARD = {
    "Content-Disposition": 'attachment; filename="report.pdf"',
    "Cache-Control": "no-cache",
    "Content-Encoding": "identity",
    "Content-Language": "zh-CN",
    "Expires": "Wed, 21 Oct 2015 07:28:00 GMT",
}


def assert_kept(headers, expected: dict[str, str]) -> None:
    for name, value in expected.items():
        assert headers.get(name) == value, (name, dict(headers))


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_put_object_keeps_standard_headers(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    bucket.put_object("user/7/h/put", b"data", headers={"Content-Type": "application/pdf", **STANDARD})

    assert_kept(bucket.head_object("user/7/h/put").headers, {"Content-Type": "application/pdf", **STANDARD})
    assert_kept(bucket.get_object("user/7/h/put").headers, STANDARD)


def test_v2_put_object_keeps_standard_headers(make_v2, user7, bucket_name) -> None:
    client = make_v2(user7)
    client.put_object(
        oss_v2.PutObjectRequest(
            bucket=bucket_name,
            key="user/7/h/v2",
            body=b"data",
            content_disposition=STANDARD["Content-Disposition"],
            cache_control=STANDARD["Cache-Control"],
            content_encoding=STANDARD["Content-Encoding"],
            expires=STANDARD["Expires"],
        )
    )
    head = client.head_object(oss_v2.HeadObjectRequest(bucket=bucket_name, key="user/7/h/v2"))
    assert head.content_disposition == STANDARD["Content-Disposition"]
    assert head.cache_control == STANDARD["Cache-Control"]
    assert head.content_encoding == STANDARD["Content-Encoding"]
    assert head.expires == STANDARD["Expires"]


def test_multipart_keeps_the_headers_given_at_initiation(make_oss2, user7) -> None:
    bucket = make_oss2(user7, "v4")
    key = "user/7/h/multipart"
    upload_id = bucket.init_multipart_upload(key, headers=STANDARD).upload_id
    part = bucket.upload_part(key, upload_id, 1, b"part")
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, part.etag)])

    assert_kept(bucket.head_object(key).headers, STANDARD)


def test_copy_object_copies_headers_by_default_and_replaces_them_on_request(make_oss2, user7, bucket_name):
    bucket = make_oss2(user7)
    bucket.put_object(
        "user/7/h/src", b"data", headers={"Content-Type": "text/plain", **STANDARD, "x-oss-meta-a": "1"}
    )

    bucket.copy_object(bucket_name, "user/7/h/src", "user/7/h/copy")
    copied = bucket.head_object("user/7/h/copy").headers
    assert_kept(copied, {"Content-Type": "text/plain", **STANDARD, "x-oss-meta-a": "1"})

    bucket.copy_object(
        bucket_name,
        "user/7/h/src",
        "user/7/h/replaced",
        headers={
            "x-oss-metadata-directive": "REPLACE",
            "Content-Type": "image/png",
            "Content-Disposition": 'inline; filename="avatar.png"',
        },
    )
    replaced = bucket.head_object("user/7/h/replaced").headers
    assert replaced["Content-Type"] == "image/png"
    assert replaced["Content-Disposition"] == 'inline; filename="avatar.png"'
    for dropped in ("Cache-Control", "Content-Encoding", "Content-Language", "Expires", "x-oss-meta-a"):
        assert dropped not in replaced


def test_post_object_keeps_standard_form_fields(sandbox, bucket_name, user7, make_oss2) -> None:
    fields = signed_form(
        user7, "user/7/h/post", extra={"Content-Disposition": STANDARD["Content-Disposition"]}
    )
    answer = post(sandbox.oss_endpoint, bucket_name, {**fields, "Cache-Control": "no-cache"}, b"jpeg")
    assert answer.status_code == 204, answer.text

    assert_kept(
        make_oss2(user7).head_object("user/7/h/post").headers,
        {"Content-Disposition": STANDARD["Content-Disposition"], "Cache-Control": "no-cache"},
    )


# --- conditional reads ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_if_match_binds_a_read_to_the_etag(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    etag = bucket.put_object("user/7/h/cond", b"0123456789").etag

    ranged = bucket.get_object("user/7/h/cond", byte_range=(0, 3), headers={"If-Match": f'"{etag}"'})
    assert ranged.read() == b"0123"
    with pytest.raises(oss2.exceptions.PreconditionFailed) as refused:
        bucket.get_object("user/7/h/cond", headers={"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    assert refused.value.code == "PreconditionFailed"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.head_object("user/7/h/cond", headers={"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})


def test_if_none_match_answers_304(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    etag = bucket.put_object("user/7/h/etag", b"x").etag
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("user/7/h/etag", headers={"If-None-Match": f'"{etag}"'})
    assert bucket.get_object("user/7/h/etag", headers={"If-None-Match": '"other"'}).read() == b"x"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_presigned_url_pins_response_headers(make_oss2, user7, version) -> None:
    bucket = make_oss2(user7, version)
    bucket.put_object("user/7/h/served", b"<html>", headers={"Content-Type": "text/html"})
    params = {"response-content-type": "image/png", "response-content-disposition": "attachment"}

    answer = requests.get(bucket.sign_url("GET", "user/7/h/served", 60, params=params), timeout=5)

    assert answer.status_code == 200
    assert (answer.headers["Content-Type"], answer.headers["Content-Disposition"]) == (
        "image/png",
        "attachment",
    )
