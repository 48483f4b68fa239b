"""Malformed requests get an OSS error answer (4xx, XML, request id), never a 500 or a traceback."""

from __future__ import annotations

import pytest
import requests

CREDENTIAL = "STS.x%2F20260101%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
BAD_REQUESTS = [
    ("PUT", "/{b}/user/7/k", {"Authorization": "OSS"}, "InvalidArgument"),
    ("PUT", "/{b}/user/7/k", {"Authorization": "OSS a:b", "Date": "not a date"}, "AccessDenied"),
    (
        "PUT",
        "/{b}/user/7/k",
        {"Authorization": "OSS4-HMAC-SHA256 Credential=bad,Signature=x"},
        "InvalidArgument",
    ),
    ("PUT", "/{b}/user/7/k", {"Authorization": "Bearer token"}, "InvalidArgument"),
    ("GET", "/{b}/user/7/k?OSSAccessKeyId=a&Expires=soon&Signature=x", {}, "AccessDenied"),
    (
        "GET",
        "/{b}/user/7/k?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential="
        + CREDENTIAL
        + "&x-oss-date=20260101T000000Z&x-oss-expires=never&x-oss-signature=x",
        {},
        "InvalidArgument",
    ),
    ("GET", "/{b}/%ff%fe", {}, "AccessDenied"),
    ("POST", "/{b}", {"Content-Type": "multipart/form-data; boundary=xx"}, "InvalidArgument"),
    ("POST", "/{b}/not/a/bucket", {"Content-Type": "multipart/form-data; boundary=xx"}, "InvalidArgument"),
    (
        "OPTIONS",
        "/{b}/user/7/k",
        {"Origin": "http://x", "Access-Control-Request-Method": "PATCH"},
        "AccessForbidden",
    ),
]


@pytest.mark.parametrize(("method", "path", "headers", "code"), BAD_REQUESTS)
def test_bad_request_gets_oss_error(sandbox, bucket_name, method, path, headers, code) -> None:
    answer = requests.request(
        method,
        sandbox.oss_endpoint + path.format(b=bucket_name),
        headers=headers,
        data=b"body" if method in ("PUT", "POST") else None,
        timeout=5,
    )

    assert 400 <= answer.status_code < 500
    assert f"<Code>{code}</Code>".encode() in answer.content
    assert answer.headers["x-oss-request-id"] in answer.text
    assert b"Traceback" not in answer.content


def test_complete_with_garbage_xml_is_malformed(make_oss2, user7) -> None:
    bucket = make_oss2(user7)
    upload_id = bucket.init_multipart_upload("user/7/garbage.bin").upload_id
    url = bucket.sign_url("POST", "user/7/garbage.bin", 60, params={"uploadId": upload_id})

    for body in (b"<not-xml", b'<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>', b"<Other/>"):
        answer = requests.post(url, data=body, timeout=5)
        assert answer.status_code == 400
        assert b"<Code>MalformedXML</Code>" in answer.content
