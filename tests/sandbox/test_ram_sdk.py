"""The sandbox's RAM (alibabacloud-ram20150501) and what it changes for STS and OSS, through real SDKs."""

from __future__ import annotations

import json

import oss2
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_sts20150401.models import AssumeRoleRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from django.conf import settings

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from tests.sandbox.conftest import user_session_policy

ROLE = "oss-uploader"
ACCOUNT = "1234567890123456"


def _config(sandbox: Sandbox, secret: str | None = None) -> Config:
    return Config(
        access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
        access_key_secret=secret or settings.ALIYUN_ACCESS_KEY_SECRET,
        endpoint=sandbox.sts_endpoint,
        protocol="http",
    )


def ram(sandbox: Sandbox, secret: str | None = None) -> RamClient:
    return RamClient(_config(sandbox, secret))


def assume(sandbox: Sandbox, duration: int = 3600, role_arn: str | None = None, user_id: int = 7):
    request = AssumeRoleRequest(
        role_arn=role_arn or settings.ALIYUN_STS_ROLE_ARN,
        role_session_name=f"user-{user_id}",
        duration_seconds=duration,
        policy=json.dumps(user_session_policy(settings.ALIYUN_OSS_BUCKET, user_id)),
    )
    return StsClient(_config(sandbox)).assume_role(request).body.credentials


def code_of(call) -> tuple[int, str]:
    with pytest.raises(ClientException) as excinfo:
        call()
    return excinfo.value.status_code, excinfo.value.code


def user_bucket(sandbox: Sandbox, credentials) -> oss2.Bucket:
    auth = oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
    return oss2.Bucket(auth, sandbox.oss_endpoint, settings.ALIYUN_OSS_BUCKET)


def test_ram_calls_are_signed_like_sts(private_sandbox):
    assert code_of(
        lambda: ram(private_sandbox, "wrong-secret").get_role(ram_models.GetRoleRequest(role_name=ROLE))
    ) == (
        400,
        "SignatureDoesNotMatch",
    )


def test_users_policies_and_roles(private_sandbox):
    client = ram(private_sandbox)
    assert code_of(lambda: client.get_user(ram_models.GetUserRequest(user_name="app"))) == (
        404,
        "EntityNotExist.User",
    )
    client.create_user(ram_models.CreateUserRequest(user_name="app"))
    assert client.get_user(ram_models.GetUserRequest(user_name="app")).body.user.user_name == "app"
    assert code_of(lambda: client.create_user(ram_models.CreateUserRequest(user_name="app"))) == (
        409,
        "EntityAlreadyExists.User",
    )

    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    client.create_policy(
        ram_models.CreatePolicyRequest(policy_name="p1", policy_document=json.dumps(document))
    )
    client.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(policy_type="Custom", policy_name="p1", user_name="app")
    )
    listed = client.list_policies_for_user(ram_models.ListPoliciesForUserRequest(user_name="app")).body
    assert [(p.policy_type, p.policy_name) for p in listed.policies.policy] == [("Custom", "p1")]
    for _ in range(6):  # past RAM's five versions, the oldest non-default one goes
        client.create_policy_version(
            ram_models.CreatePolicyVersionRequest(
                policy_name="p1",
                policy_document=json.dumps(document),
                set_as_default=True,
                rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
            )
        )
    got = client.get_policy(ram_models.GetPolicyRequest(policy_name="p1", policy_type="Custom")).body
    assert got.default_policy_version.version_id == "v7"
    assert code_of(
        lambda: client.create_policy(ram_models.CreatePolicyRequest(policy_name="bad", policy_document="{}"))
    ) == (400, "MalformedPolicyDocument")

    trust = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [ACCOUNT]}}],
    }
    created = client.create_role(
        ram_models.CreateRoleRequest(role_name="Second-Role", assume_role_policy_document=json.dumps(trust))
    ).body.role
    assert created.arn == f"acs:ram::{ACCOUNT}:role/second-role"  # RAM writes the name in lower case
    assert created.max_session_duration == 3600
    assert code_of(
        lambda: client.update_role(
            ram_models.UpdateRoleRequest(role_name="second-role", new_max_session_duration=50000)
        )
    ) == (400, "InvalidParameter.MaxSessionDuration")


def test_a_new_roles_maximum_is_3600_until_update_role_raises_it(private_sandbox):
    role = ram(private_sandbox).get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
    assert role.max_session_duration == 3600
    assert code_of(lambda: assume(private_sandbox, 7200)) == (400, "InvalidParameter.DurationSeconds")

    ram(private_sandbox).update_role(
        ram_models.UpdateRoleRequest(role_name=ROLE, new_max_session_duration=7200)
    )
    assert assume(private_sandbox, 7200).access_key_id.startswith("STS.")


def test_the_maximum_comes_from_the_setting_for_a_fresh_sandbox(settings, tmp_path):
    settings.SANDBOX_ROLE_MAX_SESSION_DURATION = 14400
    with Sandbox(SandboxConfig.from_settings(data_dir=tmp_path)) as running:
        role = ram(running).get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
        assert role.max_session_duration == 14400
        assert assume(running, 14400).access_key_id


def test_assume_role_needs_the_users_permission_and_the_roles_trust(private_sandbox):
    client = ram(private_sandbox)
    user = private_sandbox.config.ram_user_name
    assert assume(private_sandbox).access_key_id  # the seed: AliyunSTSAssumeRoleAccess, trust in the account

    other = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/other"]},
            }
        ],
    }
    client.update_role(
        ram_models.UpdateRoleRequest(role_name=ROLE, new_assume_role_policy_document=json.dumps(other))
    )
    assert code_of(lambda: assume(private_sandbox)) == (403, "NoPermission")

    mine = json.dumps(
        {
            **other,
            "Statement": [
                {**other["Statement"][0], "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/{user}"]}}
            ],
        }
    )
    client.update_role(ram_models.UpdateRoleRequest(role_name=ROLE, new_assume_role_policy_document=mine))
    assert assume(private_sandbox).access_key_id

    client.detach_policy_from_user(
        ram_models.DetachPolicyFromUserRequest(
            policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name=user
        )
    )
    assert code_of(lambda: assume(private_sandbox)) == (403, "NoPermission")
    assert code_of(lambda: assume(private_sandbox, role_arn=f"acs:ram::{ACCOUNT}:role/nope")) == (
        404,
        "EntityNotExist.Role",
    )


def test_tokens_are_judged_against_the_roles_current_policy(private_sandbox):
    credentials = assume(private_sandbox)
    bucket = user_bucket(private_sandbox, credentials)
    bucket.put_object("user/7/before.txt", b"ok")

    read_only = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}],
    }
    ram(private_sandbox).create_policy_version(
        ram_models.CreatePolicyVersionRequest(
            policy_name="SandboxRolePolicy", policy_document=json.dumps(read_only), set_as_default=True
        )
    )
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("user/7/after.txt", b"no")  # the same token, issued before the change
    assert bucket.get_object("user/7/before.txt").read() == b"ok"


def test_a_token_minted_for_another_role_is_refused(private_sandbox, settings, tmp_path):
    credentials = assume(private_sandbox)
    settings.ALIYUN_STS_ROLE_ARN = f"acs:ram::{ACCOUNT}:role/another-role"
    with Sandbox(SandboxConfig.from_settings(data_dir=tmp_path / "other")) as other:  # same RAM key
        with pytest.raises(oss2.exceptions.OssError) as refused:
            user_bucket(other, credentials).put_object("user/7/x.txt", b"x")
    assert (refused.value.status, refused.value.code) == (403, "InvalidSecurityToken")


def test_what_was_applied_survives_a_restart(private_sandbox):
    ram(private_sandbox).update_role(
        ram_models.UpdateRoleRequest(role_name=ROLE, new_max_session_duration=10800)
    )
    ram(private_sandbox).create_user(ram_models.CreateUserRequest(user_name="kept"))
    private_sandbox.stop()
    with Sandbox(SandboxConfig.from_settings(data_dir=private_sandbox.config.data_dir)) as again:
        client = ram(again)
        assert (
            client.get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role.max_session_duration == 10800
        )
        assert client.get_user(ram_models.GetUserRequest(user_name="kept")).body.user.user_name == "kept"
        assert assume(again, 10800).access_key_id
