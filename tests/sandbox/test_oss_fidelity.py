"""Answers a developer learns from: the sandbox must give OSS's own code for each situation.

- An STS AccessKeyId without its security token: 403 InvalidAccessKeyId (V1 and V4 headers, presigned
  URLs, PostObject forms), as Alibaba's troubleshooting page for that message explains.
- ``x-oss-object-acl`` and ``x-oss-tagging`` on an upload need oss:PutObjectAcl / oss:PutObjectTagging.
- RequestTimeTooSkewed carries MaxAllowedSkewMilliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.storage import Storage
from tests.sandbox.conftest import _issuer, oss2_bucket, oss_error_code, v2_client
from tests.sandbox.test_oss_post_object import post, signed_form

NO_SUCH_KEY_ID = (403, "InvalidAccessKeyId")
MESSAGE = "The OSS Access Key Id you provided does not exist in our records."


# --- an STS key without its token ----------------------------------------------------------------


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_sts_key_without_token_in_headers_is_an_unknown_key(sandbox, bucket_name, user7, auth) -> None:
    cls = oss2.Auth if auth == "v1" else oss2.AuthV4
    bucket = oss2.Bucket(
        cls(user7.access_key_id, user7.access_key_secret),
        sandbox.oss_endpoint,
        bucket_name,
        region="cn-hangzhou",
    )
    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/no-token", b"x")
    assert (refused.value.status, refused.value.code) == NO_SUCH_KEY_ID
    assert refused.value.message == MESSAGE


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_sts_key_without_token_in_a_presigned_url_is_an_unknown_key(
    sandbox, bucket_name, user7, auth
) -> None:
    cls = oss2.Auth if auth == "v1" else oss2.AuthV4
    bucket = oss2.Bucket(
        cls(user7.access_key_id, user7.access_key_secret),
        sandbox.oss_endpoint,
        bucket_name,
        region="cn-hangzhou",
    )
    answer = requests.get(bucket.sign_url("GET", "user/7/anything", 60), timeout=5)
    assert answer.status_code == 403
    assert b"<Code>InvalidAccessKeyId</Code>" in answer.content and MESSAGE.encode() in answer.content


def test_v2_sdk_sts_key_without_token_is_an_unknown_key(sandbox, bucket_name, user7) -> None:
    from dataclasses import replace

    client = v2_client(sandbox.oss_endpoint, replace(user7, security_token=""))
    with pytest.raises(oss_v2.exceptions.OperationError) as refused:
        client.put_object(oss_v2.PutObjectRequest(bucket=bucket_name, key="user/7/no-token", body=b"x"))
    assert oss_error_code(refused.value) == NO_SUCH_KEY_ID


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sts_key_without_token_in_a_post_form_is_an_unknown_key(sandbox, bucket_name, user7, version) -> None:
    fields = signed_form(user7, "user/7/post-no-token", version=version)
    del fields["x-oss-security-token"]
    answer = post(sandbox.oss_endpoint, bucket_name, fields, b"jpeg")
    assert answer.status_code == 403
    assert b"<Code>InvalidAccessKeyId</Code>" in answer.content and MESSAGE.encode() in answer.content


# --- ACL and tags given at upload ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{"x-oss-object-acl": "public-read"}, {"x-oss-tagging": "a=1"}], ids=["acl", "tagging"]
)
@pytest.mark.parametrize("version", ["v1", "v4"])
def test_acl_or_tags_on_upload_need_their_own_permission(
    make_oss2, user7, sandbox, bucket_name, headers, version
):
    bucket = make_oss2(user7, version)
    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/acl-or-tags", b"x", headers=headers)
    assert (refused.value.status, refused.value.code) == (403, "AccessDenied")
    with pytest.raises(oss2.exceptions.OssError):
        bucket.init_multipart_upload("user/7/acl-or-tags", headers=headers)
    assert Storage(sandbox.config.data_dir).head(bucket_name, "user/7/acl-or-tags") is None


@pytest.fixture
def permissive_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A role that may also set object ACLs and tags."""
    config = SandboxConfig.from_settings(data_dir=tmp_path / "permissive")
    bucket = config.bucket
    config.role_policy = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["oss:*"], "Resource": [f"acs:oss:*:*:{bucket}/*"]}],
    }
    with Sandbox(config) as running:
        yield running


def test_acl_and_tags_are_kept_when_both_policies_grant_them(permissive_sandbox) -> None:
    config = permissive_sandbox.config
    actions = ["oss:PutObject", "oss:GetObject", "oss:PutObjectAcl", "oss:PutObjectTagging"]
    creds = _issuer(config)(7, actions=actions)
    bucket = oss2_bucket(permissive_sandbox.oss_endpoint, config.bucket, creds, version="v4")

    bucket.put_object(
        "user/7/tagged", b"x", headers={"x-oss-object-acl": "private", "x-oss-tagging": "team=a&stage=b%20c"}
    )

    stored = Storage(config.data_dir).head(config.bucket, "user/7/tagged")
    assert (stored.acl, stored.tags) == ("private", {"team": "a", "stage": "b c"})
    assert bucket.head_object("user/7/tagged").headers["x-oss-tagging-count"] == "2"
    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.put_object("user/7/bad-acl", b"x", headers={"x-oss-object-acl": "everyone"})
    assert (refused.value.status, refused.value.code) == (400, "InvalidArgument")


# --- clock skew ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signature_version", ["v1", "v4"])
def test_request_time_too_skewed_says_the_allowed_skew(
    sandbox, bucket_name, user7, signature_version
) -> None:
    """alibabacloud-oss-v2 signs with the time in a request's x-oss-date: 20 minutes slow here."""
    client = v2_client(sandbox.oss_endpoint, user7, signature_version=signature_version)
    slow = format_datetime(datetime.now(UTC) - timedelta(minutes=20), usegmt=True)
    with pytest.raises(oss_v2.exceptions.OperationError) as refused:
        client.put_object(
            oss_v2.PutObjectRequest(
                bucket=bucket_name, key="user/7/skew", body=b"x", headers={"x-oss-date": slow}
            )
        )
    error = refused.value.unwrap()
    assert (error.status_code, error.code) == (403, "RequestTimeTooSkewed")
    assert error.error_fileds["MaxAllowedSkewMilliseconds"] == "900000"
    assert "ServerTime" in error.error_fileds and "RequestTime" in error.error_fileds
    print(json.dumps(error.error_fileds))
