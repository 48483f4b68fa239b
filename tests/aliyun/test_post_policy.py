"""The PostObject policy builder and its V4 signature: pure functions, checked against Alibaba's SDK."""

import base64
import hashlib
import hmac
import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_oss_v2.signer.v4 import SignerV4
from hypothesis import assume, given
from hypothesis import strategies as st

from aliyun.post_policy import MAX_LIFETIME, post_object_form, v4_signing_key

NOW = datetime(2026, 11, 29, 17, 0, 0, tzinfo=UTC)


def form(**changes: object) -> dict[str, str]:
    arguments: dict = {
        "bucket": "demo-avatars",
        "region": "cn-hangzhou",
        "key": "user/7/avatars/abc.png",
        "content_type": "image/png",
        "max_bytes": 5242880,
        "now": NOW,
        "expiration": NOW + MAX_LIFETIME,
        "access_key_id": "STS.example",
        "access_key_secret": "the-secret",
        "security_token": "CAIS-token",
    }
    return post_object_form(**{**arguments, **changes})


def test_signature_is_alibabas_v4_chain_over_the_encoded_policy():
    fields = form()

    # alibabacloud-oss-v2's own V4 signer: the same key chain, applied to the base64 policy.
    expected = SignerV4()._calc_signature("the-secret", "20261129", "cn-hangzhou", "oss", fields["policy"])
    assert fields["x-oss-signature"] == expected
    assert fields["x-oss-credential"] == "STS.example/20261129/cn-hangzhou/oss/aliyun_v4_request"
    assert fields["x-oss-date"] == "20261129T170000Z"


def test_policy_pins_every_field_the_form_sends():
    fields = form()
    policy = json.loads(base64.b64decode(fields["policy"]))

    assert policy["expiration"] == "2026-11-29T17:10:00.000Z"
    assert policy["conditions"] == [
        {"bucket": "demo-avatars"},
        ["eq", "$key", "user/7/avatars/abc.png"],
        ["content-length-range", 1, 5242880],
        ["eq", "$content-type", "image/png"],
        ["eq", "$x-oss-content-type", "image/png"],
        ["eq", "$content-disposition", "attachment"],
        ["eq", "$success_action_status", "204"],
        ["eq", "$x-oss-forbid-overwrite", "true"],
        {"x-oss-signature-version": "OSS4-HMAC-SHA256"},
        {"x-oss-credential": "STS.example/20261129/cn-hangzhou/oss/aliyun_v4_request"},
        {"x-oss-date": "20261129T170000Z"},
        {"x-oss-security-token": "CAIS-token"},
    ]
    assert fields["Content-Type"] == fields["x-oss-content-type"] == "image/png"
    assert fields["Content-Disposition"] == "attachment"
    assert fields["x-oss-forbid-overwrite"] == "true"
    # every condition on a form field names a field the form carries (whatever OSS does with absent ones)
    sent = {name.lower() for name in fields}
    for condition in policy["conditions"]:
        if isinstance(condition, list) and condition[0] == "eq":
            assert condition[1].lstrip("$") in sent


@pytest.mark.parametrize("status", [200, 201, 204])
def test_the_success_status_is_the_purposes_and_pinned(status):
    fields = form(success_action_status=status)
    assert fields["success_action_status"] == str(status)
    assert ["eq", "$success_action_status", str(status)] in json.loads(base64.b64decode(fields["policy"]))[
        "conditions"
    ]


@pytest.mark.parametrize("status", [202, 303, 0])
def test_other_success_statuses_are_refused(status):
    with pytest.raises(ValueError, match="200, 201 or 204"):
        form(success_action_status=status)


@pytest.mark.parametrize(
    "expiration", [NOW, NOW - timedelta(seconds=1), NOW + MAX_LIFETIME + timedelta(seconds=1)]
)
def test_lifetime_is_bounded(expiration):
    with pytest.raises(ValueError):
        form(expiration=expiration)


def test_max_bytes_must_allow_a_file():
    with pytest.raises(ValueError):
        form(max_bytes=0)


@given(
    # As long as real STS secrets (about 30-44 characters): a shorter one can equal a field by chance
    # (Hypothesis once found "20261129T170000Z", the form's x-oss-date), which is no leak.
    secret=st.text(alphabet=string.ascii_letters + string.digits, min_size=30, max_size=60),
    key=st.text(min_size=1, max_size=200),
    content_type=st.text(min_size=1, max_size=60),
    max_bytes=st.integers(min_value=1, max_value=5 * 1024**3),
    seconds=st.integers(min_value=1, max_value=int(MAX_LIFETIME.total_seconds())),
)
def test_the_secret_never_travels_and_the_signature_covers_the_policy(
    secret, key, content_type, max_bytes, seconds
):
    assume(secret not in key and secret not in content_type)  # the caller's own values may be anything
    fields = form(
        access_key_secret=secret,
        key=key,
        content_type=content_type,
        max_bytes=max_bytes,
        expiration=NOW + timedelta(seconds=seconds),
    )

    assert not any(secret in value for value in fields.values())
    assert secret not in base64.b64decode(fields["policy"]).decode()
    policy = json.loads(base64.b64decode(fields["policy"]))
    assert ["eq", "$key", key] in policy["conditions"]
    assert ["content-length-range", 1, max_bytes] in policy["conditions"]
    signing_key = v4_signing_key(access_key_secret=secret, date="20261129", region="cn-hangzhou")
    assert hmac.compare_digest(
        fields["x-oss-signature"],
        hmac.new(signing_key, fields["policy"].encode(), hashlib.sha256).hexdigest(),
    )
