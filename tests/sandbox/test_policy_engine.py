"""The RAM policy engine the sandbox's OSS authorizes with: grammar, matching, intersection."""

from __future__ import annotations

import json

import pytest

from sandbox.config import default_role_policy
from sandbox.policy import (
    Policy,
    PolicyGrammarError,
    bucket_resource,
    is_allowed,
    object_resource,
    parse_policy,
)

BUCKET = "avatars"
REGION, OWNER = "cn-hangzhou", "1234567890123456"


def policy(*statements: dict) -> Policy:
    return parse_policy({"Version": "1", "Statement": list(statements)})


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def obj(key: str, bucket: str = BUCKET) -> str:
    return object_resource(bucket, key, region=REGION, owner=OWNER)


def bkt(bucket: str = BUCKET) -> str:
    return bucket_resource(bucket, region=REGION, owner=OWNER)


USER_7 = policy(allow(["oss:PutObject", "oss:GetObject"], f"acs:oss:*:*:{BUCKET}/user/7/*"))
ROLE = parse_policy(default_role_policy(BUCKET))


def test_resource_names():
    assert object_resource("b", "user/7/a.png", region="cn-hangzhou", owner="42") == (
        "acs:oss:cn-hangzhou:42:b/user/7/a.png"
    )
    assert bucket_resource("b", region="cn-hangzhou", owner="42") == "acs:oss:cn-hangzhou:42:b"


# --- prefix scoping ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["user/7/a.png", "user/7/deep/er/a.png", "user/7/", "user/7/*"])
def test_trailing_slash_scope_allows_inside_the_prefix(key):
    assert is_allowed([USER_7], "oss:PutObject", obj(key))


@pytest.mark.parametrize(
    "key",
    ["user/70/a.png", "user/7", "user/7x/a.png", "user/8/a.png", "user/77/a", "User/7/a.png", "x/user/7/a"],
)
def test_trailing_slash_scope_refuses_lookalikes(key):
    assert not is_allowed([USER_7], "oss:PutObject", obj(key))


def test_without_the_trailing_slash_user_7_also_matches_user_70():
    """The pitfall aliyun-facts.md warns about: the engine must reproduce it, not hide it."""
    loose = policy(allow("oss:PutObject", f"acs:oss:*:*:{BUCKET}/user/7*"))
    assert is_allowed([loose], "oss:PutObject", obj("user/70/a.png"))
    assert is_allowed([loose], "oss:PutObject", obj("user/7x"))


def test_other_bucket_and_bucket_level_resources_are_outside_the_scope():
    assert not is_allowed([USER_7], "oss:PutObject", obj("user/7/a.png", "other"))
    assert not is_allowed([USER_7], "oss:PutObject", obj("user/7/a.png", BUCKET + "x"))
    assert not is_allowed([USER_7], "oss:ListObjects", bkt())
    assert not is_allowed([ROLE], "oss:ListObjects", bkt())


# --- effects and wildcards -------------------------------------------------------------------


def test_no_matching_statement_means_denied():
    assert not is_allowed([USER_7], "oss:DeleteObject", obj("user/7/a.png"))
    assert not is_allowed([], "oss:GetObject", obj("user/7/a.png"))


def test_explicit_deny_wins_within_a_policy():
    p = policy(
        allow("oss:*", f"acs:oss:*:*:{BUCKET}/*"),
        deny("oss:DeleteObject", f"acs:oss:*:*:{BUCKET}/user/7/*"),
    )
    assert is_allowed([p], "oss:PutObject", obj("user/7/a"))
    assert is_allowed([p], "oss:DeleteObject", obj("user/8/a"))
    assert not is_allowed([p], "oss:DeleteObject", obj("user/7/a"))


def test_explicit_deny_in_one_policy_beats_allows_in_all_others():
    everything = policy(allow("*", "*"))
    no_acl = policy(allow("oss:*", "*"), deny("oss:*Acl", "*"))
    assert is_allowed([everything, no_acl], "oss:PutObject", obj("a"))
    assert not is_allowed([everything, no_acl], "oss:PutObjectAcl", obj("a"))


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("oss:*", "oss:PutObject", True),
        ("oss:Get*", "oss:GetObject", True),
        ("oss:Get*", "oss:PutObject", False),
        ("oss:*Object", "oss:DeleteObject", True),
        ("oss:?etObject", "oss:GetObject", True),
        ("oss:?etObject", "oss:GGetObject", False),
        ("oss:getobject", "oss:GetObject", True),  # actions are case-insensitive
        ("OSS:GETOBJECT", "oss:GetObject", True),
        ("*", "ecs:RunInstances", True),
        ("oss:PutObject", "oss:PutObjectAcl", False),  # whole-string match, not prefix
        ("ram:*", "oss:GetObject", False),
    ],
)
def test_action_wildcards(pattern, action, expected):
    assert is_allowed([policy(allow(pattern, "*"))], action, obj("k")) is expected


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        (f"acs:oss:*:*:{BUCKET}/user/?/*", "user/7/a", True),
        (f"acs:oss:*:*:{BUCKET}/user/?/*", "user/70/a", False),
        (f"acs:oss:*:*:{BUCKET}/*.png", "user/7/a.png", True),
        (f"acs:oss:*:*:{BUCKET}/*.png", "user/7/a.PNG", False),  # resources are case-sensitive
        (f"acs:oss:*:*:{BUCKET}/user/7/a.png", "user/7/a.png", True),
        (f"acs:oss:*:*:{BUCKET}/user/7/a.png", "user/7/a.pngx", False),
        (f"acs:oss:*:*:{BUCKET}/user/7/a.png", "user/7/aXpng", False),  # "." is literal
        (f"acs:oss:*:*:{BUCKET}/user/[7]/a", "user/7/a", False),  # no regex leaks through
    ],
)
def test_resource_wildcards(pattern, key, expected):
    assert is_allowed([policy(allow("oss:GetObject", pattern))], "oss:GetObject", obj(key)) is expected


def test_key_with_newline_cannot_escape_the_prefix():
    assert not is_allowed([USER_7], "oss:PutObject", obj("user/8/x\nuser/7/y"))
    assert is_allowed([USER_7], "oss:PutObject", obj("user/7/x\ny"))


def test_not_action_and_not_resource():
    p = policy(
        {"Effect": "Allow", "NotAction": "oss:*Acl", "Resource": f"acs:oss:*:*:{BUCKET}/*"},
        {"Effect": "Deny", "Action": "oss:*", "NotResource": f"acs:oss:*:*:{BUCKET}/user/*"},
    )
    assert is_allowed([p], "oss:PutObject", obj("user/7/a"))
    assert not is_allowed([p], "oss:PutObjectAcl", obj("user/7/a"))
    assert not is_allowed([p], "oss:PutObject", obj("public/a"))


# --- intersection: role policy ∩ session policy ------------------------------------------------


def test_session_policy_narrows_the_role():
    assert is_allowed([ROLE], "oss:PutObject", obj("user/8/a"))
    assert not is_allowed([ROLE, USER_7], "oss:PutObject", obj("user/8/a"))
    assert is_allowed([ROLE, USER_7], "oss:PutObject", obj("user/7/a"))


def test_session_policy_cannot_widen_the_role():
    greedy = policy(allow("oss:*", "*"))
    assert is_allowed([ROLE, greedy], "oss:DeleteObject", obj("user/7/a"))
    assert not is_allowed([ROLE, greedy], "oss:PutObjectAcl", obj("user/7/a"))
    assert not is_allowed([ROLE, greedy], "oss:PutObject", obj("a", "other"))
    assert not is_allowed([ROLE, greedy], "oss:DeleteBucket", bkt())


def test_order_of_policies_does_not_matter():
    for action, key in [("oss:PutObject", "user/7/a"), ("oss:PutObject", "user/8/a")]:
        assert is_allowed([ROLE, USER_7], action, obj(key)) == is_allowed([USER_7, ROLE], action, obj(key))


# --- conditions ----------------------------------------------------------------------------------


def conditional(condition: dict, effect=allow) -> Policy:
    return policy(effect("oss:GetObject", "*", Condition=condition))


def check(p: Policy, context: dict | None) -> bool:
    return is_allowed([p], "oss:GetObject", obj("user/7/a"), context)


def test_ip_address_condition():
    p = conditional({"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.1.7"]}})
    assert check(p, {"acs:SourceIp": "10.1.2.3"})
    assert check(p, {"acs:SourceIp": "192.168.1.7"})
    assert not check(p, {"acs:SourceIp": "192.168.1.8"})
    assert not check(p, {"acs:SourceIp": "not-an-ip"})
    assert not check(p, {})  # missing key: the condition is false
    assert not check(p, None)


def test_not_ip_address_condition():
    p = conditional({"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}})
    assert check(p, {"acs:SourceIp": "8.8.8.8"})
    assert not check(p, {"acs:SourceIp": "10.0.0.1"})
    assert not check(p, {"acs:SourceIp": "garbage"})
    assert not check(p, {})


def test_string_conditions():
    p = conditional({"StringLike": {"acs:UserAgent": ["aliyun-sdk-*", "*ali-oss*"]}})
    assert check(p, {"acs:UserAgent": "aliyun-sdk-python/2.19.1"})
    assert check(p, {"acs:UserAgent": "Mozilla/5.0 ali-oss/6.23.0"})
    assert not check(p, {"acs:UserAgent": "curl/8"})

    p = conditional({"StringEquals": {"oss:Prefix": ["user/7/", "public/"]}})
    assert check(p, {"oss:Prefix": "public/"})
    assert not check(p, {"oss:Prefix": "user/70/"})
    assert not check(p, {"oss:Prefix": "USER/7/"})

    p = conditional({"StringNotEquals": {"oss:Prefix": ["user/8/", "user/9/"]}})
    assert check(p, {"oss:Prefix": "user/7/"})
    assert not check(p, {"oss:Prefix": "user/9/"})
    assert not check(p, {})

    p = conditional({"StringNotLike": {"oss:Prefix": "user/8/*"}})
    assert check(p, {"oss:Prefix": "user/7/x"})
    assert not check(p, {"oss:Prefix": "user/8/x"})

    p = conditional({"StringEqualsIgnoreCase": {"oss:Prefix": "User/7/"}})
    assert check(p, {"oss:Prefix": "user/7/"})


def test_bool_condition_and_deny_over_insecure_transport():
    p = policy(
        allow("oss:GetObject", "*"),
        deny("oss:*", "*", Condition={"Bool": {"acs:SecureTransport": False}}),
    )
    assert check(p, {"acs:SecureTransport": "true"})
    assert not check(p, {"acs:SecureTransport": "false"})
    assert not check(p, {"acs:SecureTransport": "False"})


def test_date_conditions():
    p = conditional({"DateLessThan": {"acs:CurrentTime": "2026-12-01T00:00:00Z"}})
    assert check(p, {"acs:CurrentTime": "2026-11-28T14:00:00Z"})
    assert not check(p, {"acs:CurrentTime": "2026-12-01T00:00:01Z"})
    assert not check(p, {"acs:CurrentTime": "yesterday"})

    p = conditional({"DateGreaterThan": {"acs:CurrentTime": "2026-01-01T00:00:00+08:00"}})
    assert check(p, {"acs:CurrentTime": "2026-01-01T00:00:00Z"})  # 8 hours later in UTC
    assert not check(p, {"acs:CurrentTime": "2025-12-31T15:59:59Z"})


def test_numeric_conditions_refuse_garbage():
    p = conditional({"NumericNotEquals": {"oss:MaxKeys": 1000}})
    assert check(p, {"oss:MaxKeys": "10"})
    assert not check(p, {"oss:MaxKeys": "1000"})
    assert not check(p, {"oss:MaxKeys": "lots"})


def test_all_operators_and_keys_must_hold():
    p = conditional(
        {
            "IpAddress": {"acs:SourceIp": "127.0.0.0/8"},
            "StringLike": {"acs:UserAgent": "aliyun-sdk-*", "oss:Prefix": "user/7/*"},
        }
    )
    full = {"acs:SourceIp": "127.0.0.1", "acs:UserAgent": "aliyun-sdk-python", "oss:Prefix": "user/7/a"}
    assert check(p, full)
    for missing in full:
        assert not check(p, {k: v for k, v in full.items() if k != missing})
    assert not check(p, {**full, "acs:SourceIp": "10.0.0.1"})


def test_condition_keys_are_case_insensitive():
    p = conditional({"IpAddress": {"acs:sourceip": "127.0.0.1"}})
    assert check(p, {"acs:SourceIp": "127.0.0.1"})


# --- grammar ---------------------------------------------------------------------------------------


GOOD = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        "[]",
        '"a string"',
        {"Statement": [GOOD]},
        {"Version": 1, "Statement": [GOOD]},
        {"Version": "2", "Statement": [GOOD]},
        {"Version": "1"},
        {"Version": "1", "Statement": []},
        {"Version": "1", "Statement": GOOD},
        {"Version": "1", "Statement": ["Allow"]},
        {"Version": "1", "Statement": [GOOD], "Id": "x"},
        {"Version": "1", "Statement": [{**GOOD, "Effect": "allow"}]},
        {"Version": "1", "Statement": [{**GOOD, "Effect": None}]},
        {"Version": "1", "Statement": [{k: v for k, v in GOOD.items() if k != "Action"}]},
        {"Version": "1", "Statement": [{k: v for k, v in GOOD.items() if k != "Resource"}]},
        {"Version": "1", "Statement": [{**GOOD, "NotAction": "oss:PutObject"}]},
        {"Version": "1", "Statement": [{**GOOD, "NotResource": "*"}]},
        {"Version": "1", "Statement": [{**GOOD, "Action": []}]},
        {"Version": "1", "Statement": [{**GOOD, "Action": [""]}]},
        {"Version": "1", "Statement": [{**GOOD, "Action": ["oss:GetObject", 7]}]},
        {"Version": "1", "Statement": [{**GOOD, "Action": "GetObject"}]},
        {"Version": "1", "Statement": [{**GOOD, "Action": "oss:Get Object"}]},
        {"Version": "1", "Statement": [{**GOOD, "Resource": "avatars/user/7/*"}]},
        {"Version": "1", "Statement": [{**GOOD, "Principal": {"RAM": ["*"]}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringMaybe": {"k": "v"}}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": "v"}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": {"k": []}}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"StringEquals": {"k": {"a": 1}}}}]},
        {
            "Version": "1",
            "Statement": [{**GOOD, "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/33"}}}],
        },
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"DateLessThan": {"acs:CurrentTime": "soon"}}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"Bool": {"acs:SecureTransport": "yes"}}}]},
        {"Version": "1", "Statement": [{**GOOD, "Condition": {"NumericLessThan": {"k": "ten"}}}]},
    ],
)
def test_grammar_errors(document):
    with pytest.raises(PolicyGrammarError):
        parse_policy(document)


def test_grammar_error_is_a_value_error_with_a_reason():
    with pytest.raises(ValueError, match="Effect"):
        parse_policy({"Version": "1", "Statement": [{**GOOD, "Effect": "Permit"}]})


def test_parse_accepts_text_bytes_and_dicts_and_round_trips():
    document = {"Version": "1", "Statement": [{**GOOD, "Condition": {"Bool": {"acs:SecureTransport": True}}}]}
    from_dict = parse_policy(document)
    from_text = parse_policy(json.dumps(document))
    from_bytes = parse_policy(json.dumps(document).encode())
    assert from_dict.document == from_text.document == from_bytes.document == document
    assert parse_policy(from_dict.to_json()).document == document


def test_parsed_policy_is_detached_from_its_input():
    document = {"Version": "1", "Statement": [dict(GOOD)]}
    parsed = parse_policy(document)
    document["Statement"][0]["Resource"] = "acs:oss:*:*:other/*"
    assert parsed.document["Statement"][0]["Resource"] == "*"
    assert is_allowed([parsed], "oss:GetObject", obj("k"))


def test_the_default_role_policy_covers_objects_but_not_acls():
    for action in (
        "oss:PutObject",
        "oss:GetObject",
        "oss:DeleteObject",
        "oss:AbortMultipartUpload",
        "oss:ListParts",
    ):
        assert is_allowed([ROLE], action, obj("user/7/a"))
    for action in ("oss:PutObjectAcl", "oss:GetObjectAcl", "oss:PutBucketAcl", "oss:DeleteBucket"):
        assert not is_allowed([ROLE], action, obj("user/7/a"))
        assert not is_allowed([ROLE], action, bkt())


def test_a_wildcard_spans_colons_in_the_sandbox():
    """The stricter reading: ``*`` may swallow colons, so a colon in a key can reach another prefix."""
    loose = policy(allow("oss:PutObject", f"acs:oss:*:*:{BUCKET}/user/7/*"))
    assert is_allowed([loose], "oss:PutObject", obj(f"user/8/x:{BUCKET}/user/7/y"))
    pinned = policy(allow("oss:PutObject", f"acs:oss:{REGION}:{OWNER}:{BUCKET}/user/7/*"))
    assert not is_allowed([pinned], "oss:PutObject", obj(f"user/8/x:{BUCKET}/user/7/y"))
    assert is_allowed([pinned], "oss:PutObject", obj("user/7/y"))
