"""`aliyun_setup` without an AccessKey (RRSA): the server's role trusted by the OIDC provider, its policies,
the upload role trusting it; printed, then applied to a fresh sandbox, after which the server works with
no key at all (role chaining through the real SDKs)."""

import io
import json
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from aliyun import sts
from aliyun.credentials import server_identity
from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from tests.keyless import use_rrsa
from tests.operators.conftest import SITE

ACCOUNT = "1234567890123456"
SERVICE_ACCOUNT = "system:serviceaccount:default:uploads-server"


@pytest.fixture
def fresh_keyless(settings, tmp_path, monkeypatch) -> Iterator[Sandbox]:
    config = SandboxConfig.from_settings(data_dir=tmp_path / "fresh")
    with Sandbox(config, sts_tls_address=("127.0.0.1", 0)) as running:
        monkeypatch.setenv("SSL_CERT_FILE", str(running.ca_file))
        # The administrator's key for --apply: the sandbox's one long-term key (never the web app's).
        monkeypatch.setenv("ALIYUN_ADMIN_ACCESS_KEY_ID", settings.ALIYUN_ACCESS_KEY_ID)
        monkeypatch.setenv("ALIYUN_ADMIN_ACCESS_KEY_SECRET", settings.ALIYUN_ACCESS_KEY_SECRET)
        settings.CSRF_TRUSTED_ORIGINS = [SITE]
        use_rrsa(settings, running)
        yield running


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("aliyun_setup", *args, stdout=out)
    return out.getvalue()


def test_the_plan_names_the_server_role_and_its_exact_trust_policy(fresh_keyless):
    issuer = fresh_keyless.config.oidc_issuer
    plan = json.loads(run("--json", "--oidc-issuer", issuer))
    assert plan["serverRole"]["trustPolicy"] == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Federated": [f"acs:ram::{ACCOUNT}:oidc-provider/sandbox-oidc"]},
                "Condition": {
                    "StringEquals": {
                        "oidc:aud": "sts.aliyuncs.com",
                        "oidc:iss": issuer,
                        "oidc:sub": SERVICE_ACCOUNT,
                    }
                },
            }
        ],
    }
    assert plan["role"]["trustPolicy"]["Statement"][0]["Principal"] == {
        "RAM": [f"acs:ram::{ACCOUNT}:role/sandbox-server"]
    }
    assert plan["oidcProvider"] == {
        "arn": f"acs:ram::{ACCOUNT}:oidc-provider/sandbox-oidc",
        "issuerUrl": issuer,
        "clientIds": ["sts.aliyuncs.com"],
        "applied": False,
    }
    text = run("--oidc-issuer", issuer)
    assert (
        "0. OIDC provider" in text and "aliyun ims CreateOIDCProvider --OIDCProviderName sandbox-oidc" in text
    )
    cli = run("--cli", "--oidc-issuer", issuer)
    assert (
        "aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName oss-uploader-assume-role --RoleName sandbox-server"
        in cli
    )
    assert "CreateUser" not in cli


def test_without_the_issuer_the_command_says_what_to_pass(fresh_keyless):
    with pytest.raises(CommandError, match="--oidc-issuer"):
        run()


def test_apply_then_the_server_works_with_no_access_key(fresh_keyless, settings):
    config = fresh_keyless.config
    out = run("--apply", "--yes", "--oidc-issuer", config.oidc_issuer)
    assert "UpdateServerRole role sandbox-server: trust only" in out
    assert "AttachPolicyToServerRole role sandbox-server: attach oss-uploader-assume-role" in out
    assert "UpdateRole role oss-uploader: trust only role sandbox-server" in out
    trust = json.loads(
        config.ram.call("GetRole", {"RoleName": "oss-uploader"})["Role"]["AssumeRolePolicyDocument"]
    )
    assert [s["Principal"] for s in trust["Statement"]] == [
        {"RAM": [f"acs:ram::{ACCOUNT}:role/sandbox-server"]}
    ]

    assert server_identity().kind == "rrsa"
    creds = sts.assume_role(
        role_session_name="user-3",
        policy={
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["oss:PutObject"],
                    "Resource": [f"acs:oss:*:*:{settings.ALIYUN_OSS_BUCKET}/user/3/*"],
                }
            ],
        },
        duration_seconds=900,
    )
    assert creds.access_key_id.startswith("STS.")
    assert "Nothing to change" in run("--apply", "--yes", "--oidc-issuer", config.oidc_issuer)

    # Another service account's tokens are no longer trusted: the role names one subject. (Credentials
    # already held stay valid until they expire; a new process, here a new session name, asks again.)
    run("--apply", "--yes", "--oidc-issuer", config.oidc_issuer, "--service-account", "other:app")
    settings.ALIBABA_CLOUD_ROLE_SESSION_NAME = "after-the-change"
    with pytest.raises(sts.StsError) as excinfo:
        sts.caller_identity()
    assert excinfo.value.code == "sts_unavailable"
