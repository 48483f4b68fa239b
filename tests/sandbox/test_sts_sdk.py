"""The sandbox's STS, driven by the real alibabacloud-sts20150401 SDK over HTTP.

Each test asserts what a caller of the SDK would see: the exception class, the
Alibaba code and HTTP status, or credentials that work against the policy engine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from alibabacloud_sts20150401.client import Client
from alibabacloud_sts20150401.models import AssumeRoleRequest, AssumeRoleResponseBody
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from django.core.management import CommandError, call_command

from sandbox.config import SandboxConfig
from sandbox.policy import is_allowed, object_resource
from sandbox.server import Sandbox
from sandbox.tokens import CredentialError, resolve_principal

AK_ID = "sandbox-ram-user-01"
AK_SECRET = "sandbox-ram-user-secret-for-tests"
ROLE_ARN = "acs:ram::1234567890123456:role/oss-uploader"
BUCKET = "sts-test-bucket"


def _user_policy(user_id: int) -> dict:
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject", "oss:GetObject"],
                "Resource": [f"acs:oss:*:*:{BUCKET}/user/{user_id}/*"],
            }
        ],
    }


@pytest.fixture(scope="module")
def sts_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    config = SandboxConfig(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        role_arn=ROLE_ARN,
        bucket=BUCKET,
        data_dir=tmp_path_factory.mktemp("sts-sandbox"),
    )
    with Sandbox(config) as running:
        yield running


@pytest.fixture
def sandbox_config(sts_sandbox: Sandbox) -> Iterator[SandboxConfig]:
    """The running sandbox's config, with faults switched off before and after each test."""
    faults = sts_sandbox.config.faults
    faults.configure(latency_ms=0, throttle_every=0, fail_every=0, throttle_retry_after_ms=1000)
    yield sts_sandbox.config
    faults.configure(latency_ms=0, throttle_every=0, fail_every=0, throttle_retry_after_ms=1000)


def make_client(
    sandbox: Sandbox, *, secret: str = AK_SECRET, key: str = AK_ID, v2: bool = False, **extra
) -> Client:
    options = {"connect_timeout": 2000, "read_timeout": 5000, **extra}
    config = Config(
        access_key_id=key, access_key_secret=secret, endpoint=sandbox.sts_endpoint, protocol="http", **options
    )
    if v2:
        config.signature_algorithm = "v2"
    return Client(config)


def assume(client: Client, **overrides) -> AssumeRoleResponseBody:
    params = {"role_arn": ROLE_ARN, "role_session_name": "user-7", "duration_seconds": 900}
    params.update(overrides)
    return client.assume_role(AssumeRoleRequest(**params)).body


def assert_client_error(excinfo: pytest.ExceptionInfo, code: str, status: int) -> None:
    exc = excinfo.value
    assert exc.code == code, exc.message
    assert exc.status_code == status
    assert exc.data["Code"] == code
    assert exc.data["RequestId"] and exc.data["HostId"] and exc.data["Message"]


# --- success -------------------------------------------------------------------------------


@pytest.mark.parametrize("v2", [False, True], ids=["acs3", "v2-hmac-sha1"])
def test_assume_role_issues_credentials_scoped_by_the_session_policy(sts_sandbox, sandbox_config, v2):
    before = datetime.now(UTC).replace(microsecond=0)
    body = assume(
        make_client(sts_sandbox, v2=v2),
        policy=json.dumps(_user_policy(7)),
        role_session_name="user-7",
        duration_seconds=1200,
    )

    creds = body.credentials
    assert creds.access_key_id.startswith("STS.") and len(creds.access_key_id) > 20
    assert creds.access_key_secret and creds.security_token
    expiration = datetime.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=1200) <= expiration <= before + timedelta(seconds=1202)
    assert body.assumed_role_user.arn == "acs:ram::1234567890123456:assumed-role/oss-uploader/user-7"
    assert body.assumed_role_user.assumed_role_id.endswith(":user-7")
    assert body.request_id

    principal = resolve_principal(
        sandbox_config, access_key_id=creds.access_key_id, security_token=creds.security_token
    )
    assert principal.is_sts and principal.secret == creds.access_key_secret
    assert len(principal.policies) == 2  # role policy and session policy

    def allowed(action: str, key: str) -> bool:
        resource = object_resource(
            BUCKET, key, region=sandbox_config.region, owner=sandbox_config.owner_account_id
        )
        return is_allowed(principal.policies, action, resource)

    assert allowed("oss:PutObject", "user/7/avatar.png")
    assert allowed("oss:GetObject", "user/7/avatar.png")
    assert not allowed("oss:PutObject", "user/8/avatar.png")
    assert not allowed("oss:PutObject", "user/70/avatar.png")
    assert not allowed("oss:DeleteObject", "user/7/avatar.png")  # the session policy does not grant it
    assert not allowed("oss:PutObjectAcl", "user/7/avatar.png")  # nor does the role


def test_without_a_session_policy_the_token_gets_the_role_policy(sts_sandbox, sandbox_config):
    creds = assume(make_client(sts_sandbox)).credentials
    principal = resolve_principal(
        sandbox_config, access_key_id=creds.access_key_id, security_token=creds.security_token
    )
    assert len(principal.policies) == 1
    where = {"region": sandbox_config.region, "owner": sandbox_config.owner_account_id}
    assert is_allowed(principal.policies, "oss:DeleteObject", object_resource(BUCKET, "any/key", **where))
    assert not is_allowed(principal.policies, "oss:PutObject", object_resource("other-bucket", "k", **where))


def test_duration_defaults_to_one_hour(sts_sandbox, sandbox_config):
    before = datetime.now(UTC).replace(microsecond=0)
    creds = assume(make_client(sts_sandbox), duration_seconds=None).credentials
    expiration = datetime.strptime(creds.expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=3600) <= expiration <= before + timedelta(seconds=3602)


@pytest.mark.parametrize("duration", [900, 3600])  # 3600: a new role's MaxSessionDuration
def test_duration_bounds_are_accepted(sts_sandbox, sandbox_config, duration):
    assert assume(make_client(sts_sandbox), duration_seconds=duration).credentials.access_key_id


def test_tokens_survive_a_restart_but_not_a_new_ram_secret(sts_sandbox, sandbox_config, tmp_path):
    creds = assume(make_client(sts_sandbox), policy=json.dumps(_user_policy(7))).credentials
    same = SandboxConfig(AK_ID, AK_SECRET, ROLE_ARN, BUCKET, data_dir=tmp_path)
    principal = resolve_principal(
        same, access_key_id=creds.access_key_id, security_token=creds.security_token
    )
    assert principal.secret == creds.access_key_secret

    rotated = SandboxConfig(AK_ID, "a-rotated-secret", ROLE_ARN, BUCKET, data_dir=tmp_path)
    with pytest.raises(CredentialError) as excinfo:
        resolve_principal(rotated, access_key_id=creds.access_key_id, security_token=creds.security_token)
    assert excinfo.value.code == "InvalidSecurityToken"


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("v2", [False, True], ids=["acs3", "v2-hmac-sha1"])
def test_wrong_secret_is_signature_does_not_match(sts_sandbox, sandbox_config, v2):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox, secret="not-the-secret", v2=v2))
    assert_client_error(excinfo, "SignatureDoesNotMatch", 400)


@pytest.mark.parametrize("v2", [False, True], ids=["acs3", "v2-hmac-sha1"])
def test_unknown_access_key_is_not_found(sts_sandbox, sandbox_config, v2):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox, key="someone-elses-ram-key", v2=v2))
    assert_client_error(excinfo, "InvalidAccessKeyId.NotFound", 404)


def test_a_role_session_without_sts_assume_role_in_its_policies_is_refused(sts_sandbox, sandbox_config):
    """Role chaining is judged like any caller: the upload role's own policy grants no sts:AssumeRole."""
    creds = assume(make_client(sts_sandbox)).credentials
    client = make_client(
        sts_sandbox,
        key=creds.access_key_id,
        secret=creds.access_key_secret,
        security_token=creds.security_token,
    )
    with pytest.raises(ClientException) as excinfo:
        assume(client)
    assert_client_error(excinfo, "NoPermission", 403)


def test_clock_skew_over_15_minutes_is_refused(sts_sandbox, sandbox_config, monkeypatch):
    skewed = (datetime.now(UTC) - timedelta(minutes=16)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: skewed))  # the caller's clock
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox))
    assert_client_error(excinfo, "InvalidTimeStamp.Expired", 400)


def test_a_replayed_nonce_is_refused(sts_sandbox, sandbox_config, monkeypatch):
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "0123456789abcdef-replayed"))
    client = make_client(sts_sandbox)
    assume(client)
    with pytest.raises(ClientException) as excinfo:
        assume(client)
    assert_client_error(excinfo, "SignatureNonceUsed", 400)


def test_other_actions_are_not_found(sts_sandbox, sandbox_config):
    from alibabacloud_tea_openapi import utils_models
    from darabonba.runtime import RuntimeOptions

    params = utils_models.Params(
        action="GetFederationToken",
        version="2015-04-01",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    with pytest.raises(ClientException) as excinfo:
        make_client(sts_sandbox).call_api(params, utils_models.OpenApiRequest(query={}), RuntimeOptions())
    assert_client_error(excinfo, "InvalidAction.NotFound", 404)


def test_get_caller_identity_names_the_ram_user(sts_sandbox, sandbox_config):
    body = make_client(sts_sandbox).get_caller_identity().body
    assert body.arn == f"acs:ram::1234567890123456:user/{sandbox_config.ram_user_name}"
    assert (body.account_id, body.identity_type) == ("1234567890123456", "RAMUser")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "IncompleteSignature"),
        ({"Authorization": "ACS3-HMAC-SHA256 garbage"}, "IncompleteSignature"),
        (
            {"Authorization": "ACS3-HMAC-SM3 Credential=x,SignedHeaders=host,Signature=00"},
            "InvalidSignatureMethod",
        ),
        (
            {"Authorization": f"ACS3-HMAC-SHA256 Credential={AK_ID},SignedHeaders=host,Signature=00"},
            "MissingTimestamp",
        ),
    ],
)
def test_malformed_requests_get_an_alibaba_error_not_a_traceback(sts_sandbox, sandbox_config, headers, code):
    response = requests.post(
        f"http://{sts_sandbox.sts_endpoint}/?Action=AssumeRole", headers=headers, timeout=5
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["Code"] == code


def test_unknown_paths_get_an_alibaba_error(sts_sandbox, sandbox_config):
    response = requests.get(f"http://{sts_sandbox.sts_endpoint}/nope", timeout=5)
    assert response.status_code == 404
    assert response.json()["Code"] == "InvalidAction.NotFound"


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "x" * 65, "user 7", "user/7", "user:7", "用户7"])
def test_bad_role_session_name(sts_sandbox, sandbox_config, name):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox), role_session_name=name)
    assert_client_error(excinfo, "InvalidParameter.RoleSessionName", 400)


@pytest.mark.parametrize("name", ["ab", "x" * 64, "user-7.web@example_app"])
def test_good_role_session_names(sts_sandbox, sandbox_config, name):
    body = assume(make_client(sts_sandbox), role_session_name=name)
    assert body.assumed_role_user.arn.endswith(f"/{name}")


def _padded_policy(length: int) -> str:
    text = json.dumps(_user_policy(7))
    return text[:-1] + " " * (length - len(text)) + "}"


def test_policy_of_2048_chars_is_accepted_and_2049_is_too_long(sts_sandbox, sandbox_config):
    client = make_client(sts_sandbox)
    assert assume(client, policy=_padded_policy(2048)).credentials.security_token
    with pytest.raises(ClientException) as excinfo:
        assume(client, policy=_padded_policy(2049))
    assert_client_error(excinfo, "InvalidParameter.PolicySize", 400)


@pytest.mark.parametrize(
    "policy",
    [
        "not json",
        '{"Version": "1"}',
        '{"Version": "2", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}',
        '{"Version": "1", "Statement": [{"Effect": "allow", "Action": "oss:*", "Resource": "*"}]}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Resource": "*"}]}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*",'
        ' "Condition": {"StringMaybe": {"acs:UserAgent": "x"}}}]}',
    ],
)
def test_bad_policy_grammar(sts_sandbox, sandbox_config, policy):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox), policy=policy)
    assert_client_error(excinfo, "InvalidParameter.PolicyGrammar", 400)


def test_another_role_does_not_exist(sts_sandbox, sandbox_config):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox), role_arn="acs:ram::1234567890123456:role/admin")
    assert_client_error(excinfo, "EntityNotExist.Role", 404)


@pytest.mark.parametrize("arn", ["oss-uploader", "acs:ram::abc:role/x", "acs:ram::123:user/x"])
def test_malformed_role_arn(sts_sandbox, sandbox_config, arn):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox), role_arn=arn)
    assert_client_error(excinfo, "InvalidParameter.RoleArn", 400)


@pytest.mark.parametrize("duration", [899, 43201])
def test_duration_out_of_range(sts_sandbox, sandbox_config, duration):
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox), duration_seconds=duration)
    assert_client_error(excinfo, "InvalidParameter.DurationSeconds", 400)


# --- faults and stats ----------------------------------------------------------------------


def _stats(sandbox: Sandbox) -> dict:
    response = requests.get(f"http://{sandbox.sts_endpoint}/__sandbox__/stats", timeout=5)
    assert response.status_code == 200
    return response.json()


def test_throttling_raises_throttling_exception_with_retry_after(sts_sandbox, sandbox_config):
    sandbox_config.faults.configure(throttle_every=1, throttle_retry_after_ms=250)
    with pytest.raises(ThrottlingException) as excinfo:
        assume(make_client(sts_sandbox))
    assert_client_error(excinfo, "Throttling.User", 400)
    assert excinfo.value.retry_after == 250


def test_throttling_without_retry_after_is_a_client_exception(sts_sandbox, sandbox_config):
    sandbox_config.faults.configure(throttle_every=1, throttle_retry_after_ms=0)
    with pytest.raises(ClientException) as excinfo:
        assume(make_client(sts_sandbox))
    assert_client_error(excinfo, "Throttling.User", 400)


def test_throttle_every_nth_call_and_the_stats_count_it(sts_sandbox, sandbox_config):
    client = make_client(sts_sandbox)
    start = _stats(sts_sandbox)
    sandbox_config.faults.configure(throttle_every=2)
    outcomes = []
    for _ in range(4):
        try:
            assume(client)
            outcomes.append("ok")
        except ThrottlingException:
            outcomes.append("throttled")
    assert sorted(outcomes) == ["ok", "ok", "throttled", "throttled"]
    assert outcomes[0] != outcomes[1] and outcomes[1] != outcomes[2]  # alternating
    end = _stats(sts_sandbox)
    assert end["received"] - start["received"] == 4
    assert end["issued"] - start["issued"] == 2
    assert end["throttled"] - start["throttled"] == 2


def test_hard_failure_raises_server_exception(sts_sandbox, sandbox_config):
    start = _stats(sts_sandbox)
    sandbox_config.faults.configure(fail_every=1)
    with pytest.raises(ServerException) as excinfo:
        assume(make_client(sts_sandbox))
    assert_client_error(excinfo, "InternalError", 500)
    assert _stats(sts_sandbox)["failed"] - start["failed"] == 1


def test_latency_is_added_to_each_call(sts_sandbox, sandbox_config):
    sandbox_config.faults.configure(latency_ms=300)
    started = time.monotonic()
    assume(make_client(sts_sandbox))
    assert time.monotonic() - started >= 0.3


def test_latency_beyond_the_read_timeout_fails_the_call(sts_sandbox, sandbox_config):
    from darabonba.exceptions import UnretryableException

    sandbox_config.faults.configure(latency_ms=1500)
    with pytest.raises(UnretryableException):
        assume(make_client(sts_sandbox, read_timeout=500))


# --- hygiene: logs and addresses -------------------------------------------------------------


def test_secrets_and_tokens_never_reach_the_logs(sts_sandbox, sandbox_config, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="werkzeug")
    creds = assume(make_client(sts_sandbox)).credentials
    # A v2 call with STS credentials puts the token in the query string of the request line.
    client = make_client(
        sts_sandbox,
        key=creds.access_key_id,
        secret=creds.access_key_secret,
        security_token=creds.security_token,
        v2=True,
    )
    with pytest.raises(ClientException):
        assume(client)
    # Only the server side's loggers: the client's urllib3 debug lines are not ours to police.
    server_lines = [
        r.getMessage() for r in caplog.records if r.name == "werkzeug" or r.name.startswith("uploads.")
    ]
    assert any("POST /" in line for line in server_lines), "the request should be logged"
    logged = "\n".join(server_lines)
    for needle in (creds.security_token, creds.access_key_secret, AK_SECRET, "SecurityToken="):
        assert needle not in logged


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.8", "192.168.1.2", "::", "example.com"])
def test_sandbox_refuses_non_loopback_addresses(tmp_path, host):
    config = SandboxConfig(AK_ID, AK_SECRET, ROLE_ARN, BUCKET, data_dir=tmp_path)
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(config, sts_address=(host, 0))
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(config, oss_address=(host, 0))


@pytest.mark.parametrize(
    ("sts", "oss", "message"),
    [
        ("0.0.0.0:8701", "http://127.0.0.1:8702", "ALIYUN_STS_ENDPOINT"),
        ("127.0.0.1:8701", "http://10.1.2.3:8702", "ALIYUN_OSS_ENDPOINT"),
        ("sts.aliyuncs.com", "http://127.0.0.1:8702", "ALIYUN_STS_ENDPOINT"),
        ("127.0.0.1:8701", "https://oss-cn-hangzhou.aliyuncs.com", "ALIYUN_OSS_ENDPOINT"),
    ],
)
def test_sandbox_command_refuses_non_loopback_endpoints(settings, sts, oss, message):
    settings.ALIYUN_STS_ENDPOINT = sts
    settings.ALIYUN_OSS_ENDPOINT = oss
    with pytest.raises(CommandError, match=message):
        call_command("sandbox")


def test_config_reads_the_role_policy_from_json_text(settings, tmp_path: Path):
    settings.SANDBOX_ROLE_POLICY = json.dumps(_user_policy(3))
    settings.SANDBOX_DATA_DIR = tmp_path
    config = SandboxConfig.from_settings()
    assert config.role_policy == _user_policy(3)
    assert config.data_dir == tmp_path
