"""`manage.py aliyun_setup` against a fresh sandbox, through the real RAM SDK and oss2."""

import io
import json

import oss2
import pytest
import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi.models import Config
from django.conf import settings
from django.core.management import CommandError, call_command

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from tests.operators.conftest import SITE

ROLE = "oss-uploader"  # tests/settings.py: acs:ram::1234567890123456:role/oss-uploader


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("aliyun_setup", *args, stdout=out)
    return out.getvalue()


def ram_client(sandbox: Sandbox) -> RamClient:
    return RamClient(
        Config(
            access_key_id=settings.ALIYUN_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_ACCESS_KEY_SECRET,
            endpoint=sandbox.sts_endpoint,
            protocol="http",
        )
    )


def test_prints_the_documents_for_the_current_settings(fresh_sandbox):
    plan = json.loads(run("--json"))
    assert plan["ramUser"]["name"] == "uploads-server"  # from GetCallerIdentity of ALIYUN_ACCESS_KEY_ID
    assume = plan["ramUser"]["policies"][0]["document"]["Statement"]
    assert assume == [
        {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [settings.ALIYUN_STS_ROLE_ARN]}
    ]
    trust = plan["role"]["trustPolicy"]["Statement"][0]
    assert trust["Principal"] == {"RAM": ["acs:ram::1234567890123456:user/uploads-server"]}
    role_statement = plan["role"]["policies"][0]["document"]["Statement"][0]
    assert role_statement["Resource"] == [
        f"acs:oss:{region}:1234567890123456:{settings.ALIYUN_OSS_BUCKET}/user/*"
        for region in ("cn-hangzhou", "oss-cn-hangzhou")
    ]
    cors = plan["bucket"]["cors"][0]
    assert cors["AllowedOrigin"] == [SITE] and "ETag" in cors["ExposeHeader"]
    lifecycle = {rule["ID"]: rule for rule in plan["bucket"]["lifecycle"]}
    assert lifecycle["uploads-abort-abandoned-multipart"]["AbortMultipartUpload"] == {"Days": 1}
    assert lifecycle["uploads-expire-unconfirmed"] == {
        "ID": "uploads-expire-unconfirmed",
        "Prefix": "user/",
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }

    text = run()
    assert "trust policy (only user uploads-server may assume it)" in text
    assert "<ExposeHeader>ETag</ExposeHeader>" in text

    cli = run("--cli", "--origin", "https://a.example", "--origin", "https://b.example")
    assert "aliyun ram CreateRole --RoleName oss-uploader" in cli
    assert "aliyun ram AttachPolicyToUser --PolicyType Custom --PolicyName oss-uploader-assume-role" in cli
    assert "<AllowedOrigin>https://a.example</AllowedOrigin>" in cli
    assert "<AllowedOrigin>https://b.example</AllowedOrigin>" in cli
    assert f"aliyun oss cors --method put oss://{settings.ALIYUN_OSS_BUCKET} cors.xml" in cli


def test_apply_then_nothing_to_change(fresh_sandbox):
    first = run("--apply", "--yes")
    assert "Applied 9 change(s)" in first
    assert "UpdateRole role oss-uploader: trust only user uploads-server" in first

    second = run("--apply", "--yes")
    assert "Nothing to change" in second
    assert json.loads(run("--apply", "--yes", "--json"))["changes"] == []

    # What the sandbox now holds, read with the official SDKs.
    role = ram_client(fresh_sandbox).get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
    assert json.loads(role.assume_role_policy_document)["Statement"][0]["Principal"]["RAM"] == [
        "acs:ram::1234567890123456:user/uploads-server"
    ]
    admin = oss2.Bucket(
        oss2.Auth(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET),
        fresh_sandbox.oss_endpoint,
        settings.ALIYUN_OSS_BUCKET,
    )
    rules = admin.get_bucket_cors().rules
    assert [r.allowed_origins for r in rules] == [[SITE]]
    assert "ETag" in rules[0].expose_headers
    assert {r.id for r in admin.get_bucket_lifecycle().rules} == {
        "uploads-abort-abandoned-multipart",
        "uploads-expire-unconfirmed",
    }


def test_apply_survives_a_restart_and_updates_what_changed(fresh_sandbox, settings, tmp_path):
    run("--apply", "--yes")
    config = fresh_sandbox.config
    fresh_sandbox.stop()
    with Sandbox(SandboxConfig.from_settings(data_dir=config.data_dir)) as again:
        settings.ALIYUN_STS_ENDPOINT = again.sts_endpoint
        settings.ALIYUN_OSS_ENDPOINT = again.oss_endpoint
        assert "Nothing to change" in run("--apply", "--yes")

        settings.ALIYUN_STS_DURATION_SECONDS = 7200
        changed = run("--apply", "--yes", "--origin", "https://new.example")
        assert "MaxSessionDuration 3600 → 7200 s" in changed
        assert "PutBucketCors" in changed
        role = ram_client(again).get_role(ram_models.GetRoleRequest(role_name=ROLE)).body.role
        assert role.max_session_duration == 7200


def test_a_changed_policy_gets_a_new_default_version(fresh_sandbox, settings):
    run("--apply", "--yes")
    client = ram_client(fresh_sandbox)
    client.create_policy_version(
        ram_models.CreatePolicyVersionRequest(
            policy_name="oss-uploader-permissions",
            policy_document=json.dumps(
                {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}
            ),
            set_as_default=True,
        )
    )
    out = run("--apply", "--yes")
    assert "CreatePolicyVersion policy oss-uploader-permissions: a new default version" in out
    assert '-      "Action": "oss:*",' in out  # the difference is shown before it is applied
    body = client.get_policy(
        ram_models.GetPolicyRequest(policy_name="oss-uploader-permissions", policy_type="Custom")
    ).body
    assert body.default_policy_version.version_id == "v3"
    statements = json.loads(body.default_policy_version.policy_document)["Statement"]
    assert {"Effect": "Allow", "Action": "oss:*", "Resource": "*"} not in statements


def test_apply_without_yes_asks_and_refuses_without_a_terminal(fresh_sandbox, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="add --yes"):
        run("--apply")
    listed = json.loads(run("--apply", "--json"))  # --json without --yes lists, applies nothing
    assert listed["applied"] is False and len(listed["changes"]) == 9
    assert len(json.loads(run("--apply", "--json"))["changes"]) == 9


def test_apply_needs_an_admin_key_outside_the_sandbox(settings, monkeypatch):
    settings.ALIYUN_STS_ENDPOINT = "sts.aliyuncs.com"
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    settings.CSRF_TRUSTED_ORIGINS = [SITE]
    monkeypatch.delenv("ALIYUN_ADMIN_ACCESS_KEY_ID", raising=False)
    with pytest.raises(CommandError, match="ALIYUN_ADMIN_ACCESS_KEY_ID"):
        run("--apply", "--ram-user", "uploads-server")


def test_refuses_without_an_origin_or_with_a_root_key(fresh_sandbox, settings, monkeypatch):
    settings.CSRF_TRUSTED_ORIGINS = []
    with pytest.raises(CommandError, match="DJANGO_CSRF_TRUSTED_ORIGINS"):
        run()
    settings.CSRF_TRUSTED_ORIGINS = [SITE]
    from aliyun import sts

    monkeypatch.setattr(
        sts,
        "caller_identity",
        lambda: sts.CallerIdentity("1234567890123456", "acs:ram::1234567890123456:root", "Account"),
    )
    with pytest.raises(CommandError, match="root-account key"):
        run()


def test_every_missing_input_is_named_at_once(settings):
    settings.ALIYUN_STS_ROLE_ARN = ""
    settings.ALIYUN_OSS_BUCKET = ""
    settings.ALIYUN_ACCESS_KEY_ID = ""
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.ALIYUN_OSS_APP_ORIGINS = []
    with pytest.raises(CommandError) as refused:
        run("--abort-multipart-days", "0")
    message = str(refused.value)
    for needed in (
        "ALIYUN_STS_ROLE_ARN",
        "ALIYUN_OSS_BUCKET",
        "DJANGO_CSRF_TRUSTED_ORIGINS",
        "--ram-user NAME",
        "--abort-multipart-days >= 1",
    ):
        assert needed in message
    assert "make aliyun-setup" in message


def test_apply_keeps_origins_already_allowed_unless_told_to_replace_them(fresh_sandbox, settings):
    """A second run for another origin does not lock out the first (the local sandbox's localhost)."""
    local = "http://localhost:8400"
    run("--apply", "--yes", "--origin", local)
    out = run("--apply", "--yes", "--origin", SITE)
    assert f"Note: the bucket's CORS rules keep origins already allowed: {local}" in out
    admin = oss2.Bucket(
        oss2.Auth(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET),
        fresh_sandbox.oss_endpoint,
        settings.ALIYUN_OSS_BUCKET,
    )
    assert [r.allowed_origins for r in admin.get_bucket_cors().rules] == [[SITE, local]]
    assert preflight(fresh_sandbox, local) == 200
    assert "Nothing to change" in run("--apply", "--yes", "--origin", SITE)

    replaced = run("--apply", "--yes", "--origin", SITE, "--replace-origins")
    assert "PutBucketCors bucket avatars-test: replace the CORS rules" in replaced
    assert [r.allowed_origins for r in admin.get_bucket_cors().rules] == [[SITE]]
    assert preflight(fresh_sandbox, local) == 403


def test_app_origins_join_the_sites_in_the_cors_rule(fresh_sandbox, settings):
    settings.ALIYUN_OSS_APP_ORIGINS = ["capacitor://localhost", "ionic://localhost/"]
    plan = json.loads(run("--json"))
    assert plan["bucket"]["cors"][0]["AllowedOrigin"] == [SITE, "capacitor://localhost", "ionic://localhost"]
    run("--apply", "--yes")
    assert preflight(fresh_sandbox, "capacitor://localhost") == 200


def preflight(sandbox: Sandbox, origin: str) -> int:
    return requests.options(
        f"{sandbox.oss_endpoint}/{settings.ALIYUN_OSS_BUCKET}/user/1/a.png",
        headers={"Origin": origin, "Access-Control-Request-Method": "PUT"},
        timeout=5,
    ).status_code
