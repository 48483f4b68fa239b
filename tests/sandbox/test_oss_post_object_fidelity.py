"""PostObject as OSS answers it, through the form the product itself signs, and racing completes.

The form comes from ``aliyun.post_policy.post_object_form`` (V4, STS credentials, every field the
product pins), sent with ``requests`` as a browser would; an attacker holding that form may add
fields the policy does not mention. What the sandbox must do with them is what Alibaba documents:

- ``x-oss-object-acl`` / ``x-oss-tagging`` as form fields need ``oss:PutObjectAcl`` /
  ``oss:PutObjectTagging``, exactly as the same headers do on PutObject;
- ``x-oss-content-type`` takes precedence over the type given with the file ("PostObject" page), so a
  policy that pins only ``$content-type`` does not pin what is stored: the product's pins both;
- a policy document that is not a policy (deeply nested, or beyond the form limits) is a 400, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import oss2
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliyun.post_policy import post_object_form
from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.storage import Storage
from sandbox.tokens import IssuedCredentials, issue_credentials
from tests.sandbox.conftest import USER_ACTIONS, oss_error_code, user_session_policy

PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 200


def product_form(
    sandbox, creds: IssuedCredentials, key: str, content_type: str = "image/png"
) -> dict[str, str]:
    config = sandbox.config
    now = datetime.now(UTC)
    return post_object_form(
        bucket=config.bucket,
        region=config.region,
        key=key,
        content_type=content_type,
        max_bytes=1024,
        now=now,
        expiration=now + timedelta(minutes=5),
        access_key_id=creds.access_key_id,
        access_key_secret=creds.access_key_secret,
        security_token=creds.security_token,
    )


def send(
    sandbox, fields: dict[str, str], content: bytes = PNG, file_type: str = "image/png"
) -> requests.Response:
    return requests.post(
        f"{sandbox.oss_endpoint}/{sandbox.config.bucket}",
        data=fields,
        files={"file": ("upload.png", content, file_type)},
        timeout=10,
    )


def stored(sandbox, key: str):
    return Storage(sandbox.config.data_dir).head(sandbox.config.bucket, key)


@pytest.mark.parametrize(
    ("field", "value"), [("x-oss-object-acl", "public-read"), ("x-oss-tagging", "owner=mallory")]
)
def test_acl_and_tagging_fields_need_the_same_permission_as_on_put_object(
    sandbox, issue, make_oss2, field, value
) -> None:
    creds = issue(7)  # the product's actions: no oss:PutObjectAcl, no oss:PutObjectTagging
    key = f"user/7/fidelity/{field}.png"
    fields = {**product_form(sandbox, creds, key), field: value}

    answer = send(sandbox, fields)
    with pytest.raises(oss2.exceptions.OssError) as put:
        make_oss2(creds).put_object(key, PNG, headers={"Content-Type": "image/png", field: value})

    assert answer.status_code == 403, answer.text
    assert b"<Code>AccessDenied</Code>" in answer.content
    assert oss_error_code(put.value) == (403, "AccessDenied")
    assert stored(sandbox, key) is None


@pytest.fixture
def acl_sandbox(tmp_path) -> Iterator[Sandbox]:
    """A sandbox whose role may also set object ACLs and tags (the default role may not)."""
    config = SandboxConfig.from_settings(data_dir=tmp_path / "acl-sandbox")
    config.role_policy = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:*"], "Resource": [f"acs:oss:*:*:{config.bucket}/*"]}
        ],
    }
    with Sandbox(config) as running:
        yield running


def test_acl_and_tagging_fields_are_stored_when_allowed(acl_sandbox) -> None:
    creds = issue_credentials(
        acl_sandbox.config,
        role_session_name="user-7",
        session_policy=user_session_policy(
            acl_sandbox.config.bucket, 7, [*USER_ACTIONS, "oss:PutObjectAcl", "oss:PutObjectTagging"]
        ),
        duration_seconds=3600,
    )
    key = "user/7/fidelity/allowed.png"
    fields = {
        **product_form(acl_sandbox, creds, key),
        "x-oss-object-acl": "private",
        "x-oss-tagging": "a=1&b=2",
    }

    answer = send(acl_sandbox, fields)

    assert answer.status_code == 204, answer.text
    meta = stored(acl_sandbox, key)
    assert (meta.acl, meta.tags) == ("private", {"a": "1", "b": "2"})


def test_an_unknown_acl_in_a_form_is_invalid_argument(acl_sandbox) -> None:
    creds = issue_credentials(
        acl_sandbox.config,
        role_session_name="user-7",
        session_policy=user_session_policy(acl_sandbox.config.bucket, 7, [*USER_ACTIONS, "oss:PutObjectAcl"]),
        duration_seconds=3600,
    )
    key = "user/7/fidelity/bad-acl.png"

    answer = send(
        acl_sandbox, {**product_form(acl_sandbox, creds, key), "x-oss-object-acl": "world-writable"}
    )

    assert answer.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in answer.content
    assert stored(acl_sandbox, key) is None


def test_x_oss_content_type_cannot_change_what_a_product_form_stores(sandbox, issue, server_oss) -> None:
    """``x-oss-content-type`` beats ``Content-Type`` ("PostObject"); the product's form sends and pins
    both, so a holder of the form who changes either is refused and nothing is stored."""
    creds = issue(7)
    plain, overridden, retyped = (
        f"user/7/fidelity/{name}.png" for name in ("plain", "overridden", "retyped")
    )

    first = send(sandbox, product_form(sandbox, creds, plain), file_type="image/jpeg")
    second = send(
        sandbox,
        {**product_form(sandbox, creds, overridden), "x-oss-content-type": "text/html"},
        file_type="image/jpeg",
    )
    third = send(sandbox, {**product_form(sandbox, creds, retyped), "Content-Type": "text/html"})

    assert first.status_code == 204, first.text
    # The Content-Type field beats the file part's type.
    assert server_oss.head_object(plain).content_type == "image/png"
    for refused, key in ((second, overridden), (third, retyped)):
        assert refused.status_code == 403, refused.text
        assert "<Code>AccessDenied</Code>" in refused.text and "Invalid according to Policy" in refused.text
        assert stored(sandbox, key) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("Content-Disposition", "inline"), ("Content-Disposition", "attachment; filename=a.html")],
)
def test_content_disposition_is_pinned_by_a_product_form(sandbox, issue, field, value) -> None:
    creds = issue(7)
    key = "user/7/fidelity/disposition.png"
    answer = send(sandbox, {**product_form(sandbox, creds, key), field: value})
    assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text
    assert stored(sandbox, key) is None


def _signed_v1(creds: IssuedCredentials, key: str, policy_text: bytes) -> dict[str, str]:
    encoded = base64.b64encode(policy_text).decode()
    digest = hmac.new(creds.access_key_secret.encode(), encoded.encode(), hashlib.sha1).digest()
    return {
        "key": key,
        "policy": encoded,
        "OSSAccessKeyId": creds.access_key_id,
        "Signature": base64.b64encode(digest).decode(),
        "x-oss-security-token": creds.security_token,
    }


@pytest.mark.parametrize("depth", [5, 50, 5_000, 200_000])
def test_a_deeply_nested_policy_is_invalid_policy_document(sandbox, user7, depth) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    nested = "[" * depth + "]" * depth
    policy = f'{{"expiration": "{expiry}", "conditions": [["eq", "$key", {nested}]]}}'.encode()

    answer = send(sandbox, _signed_v1(user7, "user/7/fidelity/deep.png", policy))

    assert answer.status_code == 400, answer.text
    assert b"<Code>InvalidPolicyDocument</Code>" in answer.content


def test_a_policy_beyond_the_form_limit_is_malformed_post_request(sandbox, user7) -> None:
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    conditions = [["starts-with", "$key", "user/7/"]] * 120_000  # about 3 MB of base64
    policy = json.dumps({"expiration": expiry, "conditions": conditions}).encode()

    answer = send(sandbox, _signed_v1(user7, "user/7/fidelity/huge.png", policy))

    assert answer.status_code == 400, answer.text
    assert b"<Code>MalformedPOSTRequest</Code>" in answer.content


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(st.sampled_from(["expiration", "conditions", "x"]), _json, max_size=3))
def test_any_signed_policy_document_is_answered_without_a_server_error(sandbox, user7, document: Any) -> None:
    answer = send(sandbox, _signed_v1(user7, "user/7/fidelity/any.png", json.dumps(document).encode()))

    assert answer.status_code < 500, answer.text


def test_concurrent_completes_of_one_upload_one_wins_the_rest_no_such_upload(
    sandbox, issue, make_oss2
) -> None:
    bucket = make_oss2(issue(7))
    key = "user/7/fidelity/raced-multipart.bin"
    parts = [b"a" * (100 * 1024), b"b" * (100 * 1024), b"tail"]
    upload_id = bucket.init_multipart_upload(key).upload_id
    infos = [
        oss2.models.PartInfo(number, bucket.upload_part(key, upload_id, number, io.BytesIO(data)).etag)
        for number, data in enumerate(parts, start=1)
    ]
    start = threading.Barrier(8)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def complete() -> None:
        start.wait()
        try:
            result: Any = bucket.complete_multipart_upload(key, upload_id, infos).status
        except oss2.exceptions.OssError as exc:
            result = oss_error_code(exc)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=complete) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert Counter(outcomes) == {200: 1, (404, "NoSuchUpload"): 7}
    assert bucket.get_object(key).read() == b"".join(parts)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)


def test_a_failed_complete_leaves_the_upload_open(sandbox, issue, make_oss2) -> None:
    bucket = make_oss2(issue(7))
    key = "user/7/fidelity/retry-multipart.bin"
    upload_id = bucket.init_multipart_upload(key).upload_id
    etag = bucket.upload_part(key, upload_id, 1, io.BytesIO(b"only")).etag

    with pytest.raises(oss2.exceptions.OssError) as refused:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(2, etag)])
    assert oss_error_code(refused.value) == (400, "InvalidPart")
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, etag)])

    assert bucket.get_object(key).read() == b"only"
