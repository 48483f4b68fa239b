"""The pure document builders and the difference they make against a current state."""

import dataclasses
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from aliyun.policy import UPLOAD_ACTIONS, upload_policy
from core.aliyun_names import ram_user_name
from operators.provisioning import (
    CorsRule,
    CurrentState,
    LifecycleRule,
    SetupInputs,
    kept_origins,
    merged_cors,
    plan_changes,
    role_permission_policy,
    server_oss_policy,
    session_policy,
    setup_plan,
)
from sandbox.policy import bucket_resource, is_allowed, object_resource, parse_policy

INPUTS = SetupInputs(
    role_arn="acs:ram::1234567890123456:role/Oss.Uploader_1",
    bucket="my-bucket-2",
    region="cn-hangzhou",
    ram_user="uploads-server",
    origins=("https://a.example",),
    duration_seconds=3600,
)
WHERE = {"region": "cn-hangzhou", "owner": "1234567890123456"}
ARN = {"region": "cn-hangzhou", "owner": "1234567890123456"}
KEYS = st.text(alphabet=string.ascii_letters + string.digits + "/._-: ", min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(user_id=st.integers(min_value=1, max_value=10**6), rest=KEYS, action=st.sampled_from(UPLOAD_ACTIONS))
def test_the_role_allows_everything_the_session_policy_allows(user_id, rest, action):
    """Whatever aliyun/policy.py grants a token, the role it is minted from grants too (same source)."""
    session = parse_policy(
        upload_policy(
            bucket=INPUTS.bucket, user_id=user_id, region="cn-hangzhou", owner_account_id="1234567890123456"
        )
    )
    role = parse_policy(role_permission_policy(bucket=INPUTS.bucket, **WHERE))
    resource = object_resource(INPUTS.bucket, f"user/{user_id}/{rest}", **ARN)
    if is_allowed([session], action, resource):
        assert is_allowed([role], action, resource)


def test_the_role_allows_nothing_outside_user_folders_nor_deletes():
    role = parse_policy(role_permission_policy(bucket=INPUTS.bucket, **WHERE))
    assert not is_allowed([role], "oss:PutObject", object_resource(INPUTS.bucket, "avatars/7/a.png", **ARN))
    assert not is_allowed([role], "oss:DeleteObject", object_resource(INPUTS.bucket, "user/7/a.png", **ARN))
    assert not is_allowed([role], "oss:PutObject", object_resource("other-bucket", "user/7/a.png", **ARN))


def test_the_probe_folder_is_nobodys():
    probe = parse_policy(session_policy(bucket=INPUTS.bucket, prefix="user/0/", **WHERE))
    assert is_allowed([probe], "oss:PutObject", object_resource(INPUTS.bucket, "user/0/x", **ARN))
    assert not is_allowed([probe], "oss:PutObject", object_resource(INPUTS.bucket, "user/1/x", **ARN))


def test_the_server_reads_uploads_and_writes_only_avatars():
    server = parse_policy(server_oss_policy(bucket=INPUTS.bucket, **WHERE))
    bucket = INPUTS.bucket
    assert is_allowed([server], "oss:GetObject", object_resource(bucket, "user/7/avatars/a.png", **ARN))
    assert is_allowed([server], "oss:PutObject", object_resource(bucket, "avatars/7/a.png", **ARN))
    assert is_allowed([server], "oss:DeleteObject", object_resource(bucket, "avatars/7/a.png", **ARN))
    assert is_allowed([server], "oss:DeleteObject", object_resource(bucket, "user/0/probe.txt", **ARN))
    assert not is_allowed([server], "oss:PutObject", object_resource(bucket, "user/7/a.png", **ARN))
    assert not is_allowed([server], "oss:DeleteObject", object_resource(bucket, "user/7/a.png", **ARN))
    assert not is_allowed([server], "oss:PutObjectAcl", object_resource(bucket, "avatars/7/a.png", **ARN))
    listing = {"oss:Prefix": "user/7/"}
    assert is_allowed([server], "oss:ListObjects", bucket_resource(bucket, **ARN), listing)
    assert is_allowed([server], "oss:ListObjects", bucket_resource(bucket, **ARN), {"oss:Prefix": "avatars/"})
    assert not is_allowed([server], "oss:ListObjects", bucket_resource(bucket, **ARN), {"oss:Prefix": ""})


def test_names_and_the_duration():
    plan = setup_plan(INPUTS)
    assert [p.name for p in plan.user_policies] == ["Oss-Uploader-1-assume-role", "Oss-Uploader-1-server-oss"]
    assert plan.user_policies[0].document["Statement"][0]["Resource"] == [INPUTS.role_arn]
    assert plan.trust_policy["Statement"][0]["Principal"] == {
        "RAM": ["acs:ram::1234567890123456:user/uploads-server"]
    }
    assert plan.max_session_duration == 3600
    assert (
        setup_plan(SetupInputs(**{**INPUTS.__dict__, "duration_seconds": 900})).max_session_duration == 3600
    )
    assert (
        setup_plan(SetupInputs(**{**INPUTS.__dict__, "duration_seconds": 7200})).max_session_duration == 7200
    )
    assert ram_user_name("acs:ram::1:user/app") == "app"
    assert ram_user_name("acs:ram::1:root") is None


def _matching(plan) -> CurrentState:
    return CurrentState(
        user_exists=True,
        user_policies={("Custom", p.name) for p in plan.user_policies}
        | {("System", "AliyunSTSAssumeRoleAccess")},
        policy_documents={p.name: p.document for p in (*plan.user_policies, *plan.role_policies)},
        role_trust_policy=plan.trust_policy,
        role_max_session_duration=7200,  # above what is needed: never lowered
        role_policies={("Custom", p.name) for p in plan.role_policies},
        cors_rules=[
            CorsRule(
                ("https://a.example",),
                ("HEAD", "GET", "PUT", "POST", "DELETE"),
                ("*",),
                ("etag", "x-oss-request-id", "x-oss-hash-crc64ecma"),
                600,
            )
        ],
        lifecycle_rules=[LifecycleRule("someone-elses", "logs/", expiration_days=30), *plan.lifecycle_rules],
    )


def test_nothing_to_change_when_everything_matches():
    plan = setup_plan(INPUTS)
    assert plan_changes(plan, _matching(plan)) == []


def test_everything_to_create_on_an_empty_account():
    plan = setup_plan(INPUTS)
    kinds = [c.kind for c in plan_changes(plan, CurrentState())]
    assert kinds == [
        "CreateUser",
        "CreatePolicy",
        "CreatePolicy",
        "CreatePolicy",
        "AttachPolicyToUser",
        "AttachPolicyToUser",
        "CreateRole",
        "AttachPolicyToRole",
        "PutBucketCors",
        "PutBucketLifecycle",
    ]


def test_each_drift_is_one_change_and_other_lifecycle_rules_are_kept():
    plan = setup_plan(INPUTS)
    current = _matching(plan)
    current.role_trust_policy = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
            }
        ],
    }
    current.role_max_session_duration = 3600
    current.cors_rules = [CorsRule(("https://a.example",), expose_headers=("x-oss-request-id",))]
    current.lifecycle_rules = [LifecycleRule("someone-elses", "logs/", expiration_days=30)]
    current.policy_documents[plan.role_policies[0].name] = {"Version": "1", "Statement": []}
    plan = setup_plan(SetupInputs(**{**INPUTS.__dict__, "duration_seconds": 10800}))
    changes = plan_changes(plan, current)
    assert [(c.kind, c.summary) for c in changes] == [
        ("CreatePolicyVersion", "a new default version"),
        ("UpdateRole", "trust only user uploads-server"),
        ("UpdateRole", "MaxSessionDuration 3600 → 10800 s"),
        ("PutBucketCors", "set the CORS rules (origins already allowed are kept)"),
        ("PutBucketLifecycle", "set the lifecycle rules (the bucket's other rules are kept)"),
    ]
    # the old rule (ETag not exposed) is kept whole, after ours: OSS uses the first rule that matches
    assert [(rule["AllowedOrigin"], rule["ExposeHeader"]) for rule in changes[-2].after] == [
        (["https://a.example"], ["ETag", "x-oss-request-id", "x-oss-hash-crc64ecma"]),
        (["https://a.example"], ["x-oss-request-id"]),
    ]
    assert [rule["ID"] for rule in changes[-1].after] == [
        "someone-elses",
        "uploads-abort-abandoned-multipart",
        "uploads-expire-unconfirmed",
    ]


def test_origins_already_allowed_are_kept_unless_replaced():
    """An earlier run's rule (same shape, other origins): its origins join ours; --replace-origins drops them."""
    plan = setup_plan(INPUTS)
    current = _matching(plan)
    current.cors_rules = [
        dataclasses.replace(
            plan.cors_rules[0], allowed_origins=("http://localhost:8000", "https://a.example")
        )
    ]
    assert plan_changes(plan, current) == []  # nothing would be taken away, nothing added
    assert kept_origins(plan, current.cors_rules) == ["http://localhost:8000"]
    [rule] = merged_cors(plan, current.cors_rules)
    assert rule.allowed_origins == ("https://a.example", "http://localhost:8000")

    [change] = plan_changes(plan, current, replace_origins=True)
    assert (change.kind, change.summary) == ("PutBucketCors", "replace the CORS rules")
    assert [rule["AllowedOrigin"] for rule in change.after] == [["https://a.example"]]
    assert kept_origins(plan, current.cors_rules, replace=True) == []

    wider = setup_plan(
        SetupInputs(**{**INPUTS.__dict__, "origins": ("https://a.example", "capacitor://localhost")})
    )
    [change] = plan_changes(wider, current)
    assert change.after[0]["AllowedOrigin"] == [
        "https://a.example",
        "capacitor://localhost",
        "http://localhost:8000",
    ]
