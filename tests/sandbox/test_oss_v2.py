"""The sandbox OSS driven by alibabacloud-oss-v2 (V4 default, and V1) over HTTP."""

from __future__ import annotations

import hashlib

import alibabacloud_oss_v2 as oss
import pytest
import requests

from tests.sandbox.conftest import oss_error_code, stored_keys, v2_client
from tests.sandbox.test_oss_oss2 import PART, crc64_xz

VERSIONS = ["v4", "v1"]


@pytest.mark.parametrize("version", VERSIONS)
def test_put_get_head(make_v2, user7, bucket_name, version) -> None:
    client = make_v2(user7, version)
    body = b"v2 client body " * 50
    key = f"user/7/v2-{version}/doc.pdf"

    put = client.put_object(
        oss.PutObjectRequest(bucket=bucket_name, key=key, body=body, content_type="application/pdf")
    )

    assert put.status_code == 200
    assert put.etag == f'"{hashlib.md5(body).hexdigest().upper()}"'
    assert put.hash_crc64 == str(crc64_xz(body))

    got = client.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key))
    assert got.body.read() == body
    assert got.content_type == "application/pdf"

    head = client.head_object(oss.HeadObjectRequest(bucket=bucket_name, key=key))
    assert head.content_length == len(body)
    assert head.etag == put.etag


@pytest.mark.parametrize("version", VERSIONS)
def test_put_outside_prefix_is_access_denied(make_v2, user7, bucket_name, version) -> None:
    client = make_v2(user7, version)

    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.put_object(oss.PutObjectRequest(bucket=bucket_name, key="user/8/intrusion", body=b"x"))

    assert oss_error_code(refused.value) == (403, "AccessDenied")


@pytest.mark.parametrize("version", VERSIONS)
def test_multipart_with_v2(make_v2, user7, bucket_name, version) -> None:
    client = make_v2(user7, version)
    key = f"user/7/v2-{version}/video.mp4"
    chunks = [b"1" * PART, b"2" * PART, b"3" * 77]
    upload_id = client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bucket_name, key=key, content_type="video/mp4")
    ).upload_id

    parts = []
    for number, chunk in enumerate(chunks, start=1):
        result = client.upload_part(
            oss.UploadPartRequest(
                bucket=bucket_name, key=key, upload_id=upload_id, part_number=number, body=chunk
            )
        )
        assert result.hash_crc64 == str(crc64_xz(chunk))
        parts.append(oss.UploadPart(part_number=number, etag=result.etag))

    listed = client.list_parts(oss.ListPartsRequest(bucket=bucket_name, key=key, upload_id=upload_id))
    assert [p.part_number for p in listed.parts] == [1, 2, 3]

    done = client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=bucket_name,
            key=key,
            upload_id=upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts),
        )
    )

    assert done.key == key
    assert done.etag.endswith('-3"')
    got = client.get_object(oss.GetObjectRequest(bucket=bucket_name, key=key))
    assert got.body.read() == b"".join(chunks)


def test_complete_with_parts_out_of_order(make_v2, user7, bucket_name) -> None:
    """alibabacloud-oss-v2 sends the list as given (oss2 sorts it): OSS answers InvalidPartOrder."""
    client = make_v2(user7)
    key = "user/7/v2/order.bin"
    upload_id = client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bucket_name, key=key)
    ).upload_id
    etags = [
        client.upload_part(
            oss.UploadPartRequest(
                bucket=bucket_name, key=key, upload_id=upload_id, part_number=n, body=b"p" * PART
            )
        ).etag
        for n in (1, 2)
    ]

    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.complete_multipart_upload(
            oss.CompleteMultipartUploadRequest(
                bucket=bucket_name,
                key=key,
                upload_id=upload_id,
                complete_multipart_upload=oss.CompleteMultipartUpload(
                    parts=[
                        oss.UploadPart(part_number=2, etag=etags[1]),
                        oss.UploadPart(part_number=1, etag=etags[0]),
                    ]
                ),
            )
        )

    assert oss_error_code(refused.value) == (400, "InvalidPartOrder")


def test_abort_with_v2(make_v2, user7, bucket_name) -> None:
    client = make_v2(user7)
    key = "user/7/v2/abort.bin"
    upload_id = client.initiate_multipart_upload(
        oss.InitiateMultipartUploadRequest(bucket=bucket_name, key=key)
    ).upload_id

    aborted = client.abort_multipart_upload(
        oss.AbortMultipartUploadRequest(bucket=bucket_name, key=key, upload_id=upload_id)
    )

    assert aborted.status_code == 204
    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.list_parts(oss.ListPartsRequest(bucket=bucket_name, key=key, upload_id=upload_id))
    assert oss_error_code(refused.value) == (404, "NoSuchUpload")


@pytest.mark.parametrize("version", VERSIONS)
def test_presign_get_with_v2(make_v2, user7, bucket_name, version) -> None:
    client = make_v2(user7, version)
    client.put_object(oss.PutObjectRequest(bucket=bucket_name, key="user/7/v2/presigned.txt", body=b"v2 url"))

    presigned = client.presign(oss.GetObjectRequest(bucket=bucket_name, key="user/7/v2/presigned.txt"))
    answer = requests.get(presigned.url, timeout=5)

    assert answer.status_code == 200
    assert answer.content == b"v2 url"


def test_expired_token_with_v2(make_v2, issue, bucket_name) -> None:
    from datetime import UTC, datetime, timedelta

    expired = issue(7, duration_seconds=900, now=datetime.now(UTC) - timedelta(hours=2))
    client = make_v2(expired)

    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.put_object(oss.PutObjectRequest(bucket=bucket_name, key="user/7/v2/late", body=b"x"))

    assert oss_error_code(refused.value) == (403, "SecurityTokenExpired")


def test_cname_addressing_is_told_apart_by_the_signature(sandbox, bucket_name, user7, oss_config) -> None:
    """``use_cname`` sends ``/<key>``; a key that starts with the bucket name must not be read as path style."""
    endpoint = sandbox.oss_endpoint.replace("127.0.0.1", "localhost")
    client = v2_client(endpoint, user7)
    client_cname = v2_client(endpoint, user7, use_cname=True)
    ram_cname = oss.Client(cname_config(endpoint, oss_config.access_key_id, oss_config.access_key_secret))

    client_cname.put_object(oss.PutObjectRequest(bucket=bucket_name, key="user/7/cname.txt", body=b"cname"))
    ram_cname.put_object(
        oss.PutObjectRequest(bucket=bucket_name, key=f"{bucket_name}/user/7/odd", body=b"odd")
    )
    with pytest.raises(oss.exceptions.OperationError) as refused:
        client_cname.put_object(
            oss.PutObjectRequest(bucket=bucket_name, key=f"{bucket_name}/user/7/x", body=b"x")
        )

    assert oss_error_code(refused.value) == (403, "AccessDenied")
    assert stored_keys(oss_config).count(f"{bucket_name}/user/7/odd") == 1
    assert (
        client.get_object(oss.GetObjectRequest(bucket=bucket_name, key="user/7/cname.txt")).body.read()
        == b"cname"
    )


def cname_config(endpoint: str, access_key_id: str, secret: str) -> oss.config.Config:
    """The RAM user's long-term key, no token, cname addressing."""
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(access_key_id, secret)
    config.region = "cn-hangzhou"
    config.endpoint = endpoint
    config.use_cname = True
    config.retry_max_attempts = 1
    return config
