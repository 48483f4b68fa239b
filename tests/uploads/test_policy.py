"""The session policy, evaluated with the sandbox's policy engine (the same one the OSS sandbox enforces)."""

import json

import pytest

from sandbox.policy import bucket_resource, is_allowed, object_resource, parse_policy
from uploads.policy import upload_policy, user_prefix

BUCKET = "avatars"


@pytest.fixture
def policy():
    return parse_policy(upload_policy(bucket=BUCKET, user_id=7))


def allowed(policy, action: str, key: str | None, bucket: str = BUCKET) -> bool:
    resource = object_resource(bucket, key) if key is not None else bucket_resource(bucket)
    return is_allowed([policy], action, resource)


@pytest.mark.parametrize(
    "action", ["oss:PutObject", "oss:GetObject", "oss:AbortMultipartUpload", "oss:ListParts"]
)
def test_allows_upload_actions_inside_own_prefix(policy, action):
    assert allowed(policy, action, "user/7/avatars/a.png")


@pytest.mark.parametrize(
    "key",
    [
        "user/70/a.png",
        "user/8/a.png",
        "user/7",
        "user/7x/a.png",
        "user7/a.png",
        "a.png",
        "user//7/a.png",
        "User/7/a.png",
    ],
)
def test_denies_writes_outside_own_prefix(policy, key):
    assert not allowed(policy, "oss:PutObject", key)


def test_denies_other_bucket(policy):
    assert not allowed(policy, "oss:PutObject", "user/7/a.png", bucket="other-bucket")


@pytest.mark.parametrize(
    "action",
    ["oss:ListObjects", "oss:PutBucketAcl", "oss:DeleteBucket", "oss:GetBucketAcl", "oss:PutBucketPolicy"],
)
def test_denies_bucket_level_actions(policy, action):
    assert not allowed(policy, action, None)


@pytest.mark.parametrize("action", ["oss:PutObjectAcl", "oss:DeleteObject", "oss:PutObjectTagging"])
def test_denies_acl_changes_and_deletes_even_in_own_prefix(policy, action):
    assert not allowed(policy, action, "user/7/a.png")


def test_no_wildcard_action_and_trailing_slash_resource():
    document = upload_policy(bucket=BUCKET, user_id=7)
    statement = document["Statement"][0]
    assert all("*" not in action for action in statement["Action"])
    assert statement["Resource"] == [f"acs:oss:*:*:{BUCKET}/user/7/*"]
    assert len(json.dumps(document, separators=(",", ":"))) <= 2048  # STS's Policy limit


@pytest.mark.parametrize("bad", [0, -1, True, "7", None])
def test_user_prefix_requires_a_positive_integer(bad):
    with pytest.raises(ValueError):
        user_prefix(bad)
