"""The session policy, evaluated under both readings of ``*`` (per ARN segment, and across colons).

The across-colons reading is the sandbox's engine (the one its OSS enforces); the per-segment one is
``tests.isolation``. Properties are checked over generated keys, user ids and bucket names.
"""

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aliyun.policy import (
    UPLOAD_ACTIONS,
    bucket_owner_account_id,
    region_spellings,
    role_arn_account_id,
    upload_policy,
    user_prefix,
)
from operators.provisioning import role_permission_policy
from sandbox.config import default_role_policy
from tests.isolation import (
    BUCKETS,
    READINGS,
    REPORT,
    USER_IDS,
    colon_tricks,
    keys_for,
    legit,
    object_arn,
)

BUCKET = "avatars"
OWNER = "1234567890123456"
REGION = "cn-hangzhou"
ALL_ACTIONS = (*UPLOAD_ACTIONS, "oss:DeleteObject", "oss:PutObjectAcl", "oss:PutObjectTagging")


def product_policy(bucket: str = BUCKET, user_id: int = 7) -> dict:
    return upload_policy(bucket=bucket, user_id=user_id, region=REGION, owner_account_id=OWNER)


def wildcard_role_policy(bucket: str) -> dict:
    """A hand-written role policy with both wildcards, as the console how-to shows it."""
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": list(UPLOAD_ACTIONS), "Resource": [f"acs:oss:*:*:{bucket}/user/*"]}
        ],
    }


def setup_role_policy(bucket: str) -> dict:
    """The role policy `manage.py aliyun_setup` prints and applies (README, real bucket set-up)."""
    return role_permission_policy(bucket=bucket, region=REGION, owner=OWNER)


def allowed_under(reading: str, documents: list[dict], action: str, key: str, **where: str) -> bool:
    arn = object_arn(where.get("bucket", BUCKET), key, region=where.get("region", REGION), owner=OWNER)
    return READINGS[reading](documents, action, arn)


# --- properties over generated input -----------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, int, str, str]:
    bucket = draw(st.sampled_from(BUCKETS))
    user_id = draw(st.sampled_from(USER_IDS))
    return bucket, user_id, draw(keys_for(bucket, user_id)), draw(st.sampled_from(region_spellings(REGION)))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_allowed_exactly_inside_the_prefix_and_colon_free_under_both_readings(case) -> None:
    """Each generated key is tried as every user id's token (one of them usually its owner)."""
    bucket, _, key, region = case
    arn = object_arn(bucket, key, region=region, owner=OWNER)
    for user_id in USER_IDS:
        policy = product_policy(bucket, user_id)
        expected = legit(key, user_id)
        for reading in READINGS:
            for action in UPLOAD_ACTIONS:
                assert READINGS[reading]([policy], action, arn) is expected, (reading, action, user_id, key)
                REPORT["policy cases"] += 1
        REPORT["policy cases allowed"] += expected * len(READINGS) * len(UPLOAD_ACTIONS)
    REPORT["policy keys"] += 1
    REPORT["policy keys with ':'"] += ":" in key


@settings(max_examples=200, deadline=None)
@given(cases(), st.sampled_from([default_role_policy, wildcard_role_policy, setup_role_policy]))
def test_role_policy_intersection_keeps_the_same_answer(case, role_policy) -> None:
    """The sandbox's default role policy, a wildcard one and aliyun_setup's all leave the session policy in charge."""
    bucket, user_id, key, region = case
    documents = [role_policy(bucket), product_policy(bucket, user_id)]
    arn = object_arn(bucket, key, region=region, owner=OWNER)
    for reading in READINGS:
        assert READINGS[reading](documents, "oss:PutObject", arn) is legit(key, user_id), (reading, key)
        REPORT["policy cases"] += 1


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(BUCKETS),
    st.sampled_from(USER_IDS),
    st.sampled_from(USER_IDS),
    st.sampled_from(["000000000000", OWNER, "9876543210"]),
    st.sampled_from(["cn-hangzhou", "oss-cn-hangzhou", "*", "cn-beijing", ""]),
)
def test_every_colon_trick_is_denied_under_both_readings(bucket, victim, attacker, owner, region) -> None:
    assume(victim != attacker)
    policy = product_policy(bucket, attacker)
    for key in colon_tricks(bucket, victim, attacker, owner, region):
        for reading in READINGS:
            for action in ALL_ACTIONS:
                arn = object_arn(bucket, key, region=REGION, owner=OWNER)
                assert not READINGS[reading]([policy], action, arn), (reading, action, key)
                REPORT["colon-trick cases"] += 1


# --- concrete cases ------------------------------------------------------------------------------


LEGIT_KEYS = [
    "user/7/avatars/a.png",
    "user/7/",
    "user/7/deep/er/a.png",
    "user/7/头像 照片.png",
    "user/7/my file (1).jpg",
    "user/7/a+b#c%d&e=f.png",
    "user/7/😀🎉.webp",
    "user/7/../8/x",  # OSS keys are literal: this one is inside user/7/
    "user/7/%2F..%2F8",
    "user/7/*?",
]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("key", LEGIT_KEYS)
@pytest.mark.parametrize("action", UPLOAD_ACTIONS)
def test_legitimate_keys_keep_working(reading, key, action) -> None:
    assert allowed_under(reading, [product_policy()], action, key)


@pytest.mark.parametrize("reading", READINGS)
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
        "user/8/x:avatars/user/7/y",
        "user/8/x:1234567890123456:avatars/user/7/y",
        "user/7/12:30.png",  # the cost: a colon anywhere is refused, even in one's own folder
    ],
)
def test_keys_outside_or_with_a_colon_are_refused(reading, key) -> None:
    assert not allowed_under(reading, [product_policy()], "oss:PutObject", key)


@pytest.mark.parametrize("reading", READINGS)
def test_other_bucket_other_owner_other_region_are_refused(reading) -> None:
    policy = [product_policy()]
    key = "user/7/a.png"
    assert not READINGS[reading](
        policy, "oss:PutObject", object_arn("other", key, region=REGION, owner=OWNER)
    )
    assert not READINGS[reading](policy, "oss:PutObject", object_arn(BUCKET, key, region=REGION, owner="42"))
    assert not READINGS[reading](
        policy, "oss:PutObject", object_arn(BUCKET, key, region="cn-beijing", owner=OWNER)
    )


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize(
    "action", ["oss:PutObjectAcl", "oss:DeleteObject", "oss:PutObjectTagging", "oss:ListObjects"]
)
def test_no_acl_change_delete_tagging_or_listing(reading, action) -> None:
    assert not allowed_under(reading, [product_policy()], action, "user/7/a.png")


def test_the_policy_document():
    document = product_policy()
    allow, deny = document["Statement"]
    assert allow["Effect"] == "Allow" and all("*" not in action for action in allow["Action"])
    assert allow["Resource"] == [
        f"acs:oss:cn-hangzhou:{OWNER}:{BUCKET}/user/7/*",
        f"acs:oss:oss-cn-hangzhou:{OWNER}:{BUCKET}/user/7/*",
    ]
    assert deny == {"Effect": "Deny", "Action": ["oss:*"], "Resource": [f"acs:oss:*:*:{BUCKET}/*:*"]}
    longest = upload_policy(
        bucket="b" * 63, user_id=2**63, region="ap-southeast-1", owner_account_id="9" * 16
    )
    assert len(json.dumps(longest, separators=(",", ":"))) <= 2048  # STS's Policy limit


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"owner_account_id": ""}, "account id"),
        ({"owner_account_id": "*"}, "account id"),
        ({"owner_account_id": "12:34"}, "account id"),
        ({"region": "*"}, "region"),
        ({"region": ""}, "region"),
        ({"region": "cn:x"}, "region"),
    ],
)
def test_a_gap_in_the_resource_is_refused(arguments, message):
    values = {"bucket": BUCKET, "user_id": 7, "region": REGION, "owner_account_id": OWNER, **arguments}
    with pytest.raises(ValueError, match=message):
        upload_policy(**values)


def test_the_owner_comes_from_the_role_arn_unless_overridden():
    arn = "acs:ram::1234567890123456:role/oss-uploader"
    assert role_arn_account_id(arn) == "1234567890123456"
    assert role_arn_account_id("acs:ram::abc:role/x") == ""
    assert bucket_owner_account_id(role_arn=arn) == "1234567890123456"
    assert bucket_owner_account_id(role_arn=arn, override=" 555 ") == "555"
    assert bucket_owner_account_id(role_arn="", override="") == ""


@pytest.mark.parametrize("bad", [0, -1, True, "7", None])
def test_user_prefix_requires_a_positive_integer(bad):
    with pytest.raises(ValueError):
        user_prefix(bad)
