"""PostObject (browser form upload) with V1 and V4 signed policies, built as the OSS docs describe.

oss2 has no PostObject helper, so the form is built here with ``requests`` and signed with the
documented algorithm (independent of the sandbox's own code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from sandbox.tokens import IssuedCredentials, issue_credentials
from tests.sandbox.conftest import stored_keys, user_session_policy
from tests.sandbox.test_oss_oss2 import crc64_xz

LIMIT = 1024


def signed_form(
    creds: IssuedCredentials,
    key: str,
    *,
    version: str = "v1",
    conditions: list[Any] | None = None,
    expires_in: timedelta = timedelta(minutes=10),
    region: str = "cn-hangzhou",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    now = datetime.now(UTC)
    fields: dict[str, str] = {"key": key, "x-oss-security-token": creds.security_token, **(extra or {})}
    base = conditions if conditions is not None else [["starts-with", "$key", "user/7/"]]
    base = [*base, ["content-length-range", 1, LIMIT]]
    if version == "v4":
        date = now.strftime("%Y%m%d")
        fields["x-oss-signature-version"] = "OSS4-HMAC-SHA256"
        fields["x-oss-credential"] = f"{creds.access_key_id}/{date}/{region}/oss/aliyun_v4_request"
        fields["x-oss-date"] = now.strftime("%Y%m%dT%H%M%SZ")
        base += [
            {name: fields[name]} for name in ("x-oss-signature-version", "x-oss-credential", "x-oss-date")
        ]
    policy = {"expiration": (now + expires_in).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "conditions": base}
    encoded = base64.b64encode(json.dumps(policy).encode()).decode()
    fields["policy"] = encoded
    if version == "v4":
        signing_key = ("aliyun_v4" + creds.access_key_secret).encode()
        for part in (now.strftime("%Y%m%d"), region, "oss", "aliyun_v4_request"):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        fields["x-oss-signature"] = hmac.new(signing_key, encoded.encode(), hashlib.sha256).hexdigest()
    else:
        fields["OSSAccessKeyId"] = creds.access_key_id
        digest = hmac.new(creds.access_key_secret.encode(), encoded.encode(), hashlib.sha1).digest()
        fields["Signature"] = base64.b64encode(digest).decode()
    return fields


def post(endpoint: str, bucket: str, fields: dict[str, str], content: bytes) -> requests.Response:
    return requests.post(
        f"{endpoint}/{bucket}",
        data=fields,
        files={"file": ("upload.jpg", content, "image/jpeg")},
        timeout=5,
    )


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_post_object_within_limit(sandbox, bucket_name, user7, make_oss2, version) -> None:
    key = f"user/7/post-{version}.jpg"
    fields = signed_form(user7, key, version=version, extra={"success_action_status": "201"})

    answer = post(sandbox.oss_endpoint, bucket_name, fields, b"j" * 500)

    assert answer.status_code == 201, answer.text
    assert f"<Key>{key}</Key>".encode() in answer.content
    assert answer.headers["ETag"] == f'"{hashlib.md5(b"j" * 500).hexdigest().upper()}"'
    assert answer.headers["x-oss-hash-crc64ecma"] == str(crc64_xz(b"j" * 500))
    got = make_oss2(user7).get_object(key)
    assert got.read() == b"j" * 500
    assert got.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_post_object_beyond_limit(sandbox, bucket_name, user7, make_oss2, version) -> None:
    key = f"user/7/too-big-{version}.jpg"

    too_big = post(
        sandbox.oss_endpoint, bucket_name, signed_form(user7, key, version=version), b"x" * (LIMIT + 1)
    )
    empty = post(sandbox.oss_endpoint, bucket_name, signed_form(user7, key, version=version), b"")

    assert too_big.status_code == 400
    assert b"<Code>EntityTooLarge</Code>" in too_big.content
    assert empty.status_code == 400
    assert b"<Code>EntityTooSmall</Code>" in empty.content
    assert not make_oss2(user7).object_exists(key)


def test_post_object_default_status_is_204(sandbox, bucket_name, user7) -> None:
    answer = post(sandbox.oss_endpoint, bucket_name, signed_form(user7, "user/7/plain.jpg"), b"abc")

    assert answer.status_code == 204
    assert answer.content == b""


def test_post_object_conditions(sandbox, bucket_name, user7) -> None:
    conditions = [
        ["starts-with", "$key", "user/7/"],
        ["eq", "$content-type", "image/png"],
        {"bucket": bucket_name},
    ]
    wrong_type = signed_form(
        user7, "user/7/c.png", conditions=conditions, extra={"Content-Type": "text/html"}
    )
    right_type = signed_form(
        user7, "user/7/c.png", conditions=conditions, extra={"Content-Type": "image/png"}
    )

    refused = post(sandbox.oss_endpoint, bucket_name, wrong_type, b"png")
    accepted = post(sandbox.oss_endpoint, bucket_name, right_type, b"png")

    assert refused.status_code == 403
    assert b"<Code>AccessDenied</Code>" in refused.content
    assert b"Policy Condition failed" in refused.content
    assert accepted.status_code == 204


def test_post_object_key_outside_policy_prefix(sandbox, bucket_name, user7) -> None:
    fields = signed_form(user7, "user/8/evil.jpg", conditions=[["starts-with", "$key", "user/7/"]])

    answer = post(sandbox.oss_endpoint, bucket_name, fields, b"x")

    assert answer.status_code == 403
    assert b"<Code>AccessDenied</Code>" in answer.content


def test_post_object_expired_policy_and_bad_signature(sandbox, bucket_name, user7) -> None:
    expired = signed_form(user7, "user/7/late.jpg", expires_in=timedelta(minutes=-1))
    tampered = signed_form(user7, "user/7/forged.jpg")
    tampered["Signature"] = base64.b64encode(b"0" * 20).decode()
    swapped = signed_form(user7, "user/7/swapped.jpg")
    swapped["key"] = "user/7/other-name.jpg"  # not signed itself, but must still satisfy the policy

    late = post(sandbox.oss_endpoint, bucket_name, expired, b"x")
    forged = post(sandbox.oss_endpoint, bucket_name, tampered, b"x")
    renamed = post(sandbox.oss_endpoint, bucket_name, swapped, b"x")

    assert late.status_code == 403
    assert b"Policy expired" in late.content
    assert forged.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in forged.content
    assert renamed.status_code == 204  # the policy only pins the prefix


def test_post_object_malformed_policy(sandbox, bucket_name, user7) -> None:
    fields = signed_form(user7, "user/7/bad-policy.jpg")
    fields["policy"] = base64.b64encode(b"not json").decode()
    digest = hmac.new(user7.access_key_secret.encode(), fields["policy"].encode(), hashlib.sha1).digest()
    fields["Signature"] = base64.b64encode(digest).decode()

    answer = post(sandbox.oss_endpoint, bucket_name, fields, b"x")

    assert answer.status_code == 400
    assert b"<Code>InvalidPolicyDocument</Code>" in answer.content


def test_post_object_without_policy_is_anonymous(private_sandbox) -> None:
    config = private_sandbox.config
    answer = requests.post(
        f"{private_sandbox.oss_endpoint}/{config.bucket}",
        data={"key": "user/7/anon.jpg"},
        files={"file": ("a.jpg", b"x", "image/jpeg")},
        timeout=5,
    )

    assert answer.status_code == 403
    assert b"<Code>AccessDenied</Code>" in answer.content
    assert stored_keys(config) == []


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_post_object_forbid_overwrite(sandbox, bucket_name, user7, make_oss2, version) -> None:
    key = f"user/7/once-{version}.jpg"
    conditions = [["eq", "$key", key], ["eq", "$x-oss-forbid-overwrite", "true"]]
    form = signed_form(
        user7, key, version=version, conditions=conditions, extra={"x-oss-forbid-overwrite": "true"}
    )

    first = post(sandbox.oss_endpoint, bucket_name, form, b"first")
    second = post(sandbox.oss_endpoint, bucket_name, form, b"second")

    assert first.status_code == 204
    assert second.status_code == 409
    assert b"<Code>FileAlreadyExists</Code>" in second.content
    assert make_oss2(user7).get_object(key).read() == b"first"


def test_post_object_content_type_starts_with(private_sandbox) -> None:
    config = private_sandbox.config
    creds = issue_credentials(
        config,
        role_session_name="user-7",
        session_policy=user_session_policy(config.bucket, 7),
        duration_seconds=3600,
    )
    conditions = [["starts-with", "$key", "user/7/"], ["starts-with", "$Content-Type", "image/"]]

    def attempt(content_type: str) -> requests.Response:
        form = signed_form(creds, "user/7/typed", conditions=conditions, extra={"Content-Type": content_type})
        return post(private_sandbox.oss_endpoint, config.bucket, form, b"data")

    refused = attempt("text/html")
    assert refused.status_code == 403
    assert b"Invalid according to Policy: Policy Condition failed" in refused.content
    assert stored_keys(config) == []  # nothing stored when refused
    assert attempt("image/webp").status_code == 204
    assert stored_keys(config) == ["user/7/typed"]


def test_post_object_too_large_leaves_nothing_behind(private_sandbox) -> None:
    config = private_sandbox.config
    creds = issue_credentials(
        config,
        role_session_name="user-7",
        session_policy=user_session_policy(config.bucket, 7),
        duration_seconds=3600,
    )
    form = signed_form(creds, "user/7/big.jpg", version="v4")

    answer = post(private_sandbox.oss_endpoint, config.bucket, form, b"x" * (LIMIT + 1))

    assert answer.status_code == 400
    assert b"<Code>EntityTooLarge</Code>" in answer.content
    assert stored_keys(config) == []
    assert list((config.data_dir / "oss" / "tmp").iterdir()) == []


def test_post_object_bucket_condition(sandbox, bucket_name, user7) -> None:
    form = signed_form(user7, "user/7/b.jpg", conditions=[{"bucket": "another-bucket"}])

    answer = post(sandbox.oss_endpoint, bucket_name, form, b"x")

    assert answer.status_code == 403
    assert b"Invalid according to Policy: Policy Condition failed" in answer.content
