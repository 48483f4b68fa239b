"""The server's identity without an AccessKey, against the sandbox, through the real SDKs.

`alibabacloud-credentials` (its OIDC, RAM-role and URI providers) gets the server role's
credentials over HTTPS from the sandbox's STS (the recipe of `manage.py sandbox`'s docstring:
`sts_endpoint=<tls host:port>` and `SSL_CERT_FILE=<data_dir>/tls/ca.pem`), and the STS SDK
(alibabacloud-sts20150401) signs AssumeRole with the resulting `STS.` keys (role chaining).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import requests
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.provider import (
    OIDCRoleArnCredentialsProvider,
    RamRoleArnCredentialsProvider,
    URLCredentialsProvider,
)
from alibabacloud_sts20150401.client import Client
from alibabacloud_sts20150401.models import AssumeRoleRequest, AssumeRoleWithOIDCRequest
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.config import SandboxConfig
from sandbox.oidc import OidcError
from sandbox.policy import is_allowed, object_resource
from sandbox.server import Sandbox
from sandbox.tls import ensure_tls_files
from sandbox.tokens import issue_credentials, resolve_principal

AK_ID = "sandbox-ram-user-keyless"
AK_SECRET = "sandbox-ram-user-secret-keyless"
ACCOUNT = "1000000000000000"
UPLOAD_ROLE = f"acs:ram::{ACCOUNT}:role/sandbox-uploader"
BUCKET = "keyless-bucket"


def _config(data_dir: Path, **extra) -> SandboxConfig:
    return SandboxConfig(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        role_arn=UPLOAD_ROLE,
        bucket=BUCKET,
        data_dir=data_dir,
        **extra,
    )


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox with its HTTPS port; the process trusts its CA for the module (SSL_CERT_FILE)."""
    config = _config(tmp_path_factory.mktemp("keyless"))
    with Sandbox(config, sts_tls_address=("127.0.0.1", 0)) as running, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(running.ca_file))
        yield running


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox of its own, for tests that change RAM (trust policies, attachments)."""
    with (
        Sandbox(_config(tmp_path / "fresh"), sts_tls_address=("127.0.0.1", 0)) as running,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("SSL_CERT_FILE", str(running.ca_file))
        yield running


def oidc_provider(sandbox: Sandbox, **extra) -> OIDCRoleArnCredentialsProvider:
    config = sandbox.config
    return OIDCRoleArnCredentialsProvider(
        role_arn=extra.pop("role_arn", config.server_role_arn),
        oidc_provider_arn=config.oidc_provider_arn,
        oidc_token_file_path=str(config.oidc_token_file),
        role_session_name="uploads-server",
        sts_endpoint=sandbox.sts_tls_endpoint,
        **extra,
    )


def sts_client(sandbox: Sandbox, creds=None, *, v2: bool = False) -> Client:
    """The STS SDK on the plain-HTTP port, signed by `creds` (an `STS.` key and token) or the RAM user."""
    if creds is None:
        options = {"access_key_id": AK_ID, "access_key_secret": AK_SECRET}
    else:
        options = {
            "access_key_id": creds.get_access_key_id(),
            "access_key_secret": creds.get_access_key_secret(),
            "security_token": creds.get_security_token(),
        }
    config = Config(
        endpoint=sandbox.sts_endpoint, protocol="http", connect_timeout=2000, read_timeout=5000, **options
    )
    if v2:
        config.signature_algorithm = "v2"
    return Client(config)


def assume_with_oidc(sandbox: Sandbox, token: str, **overrides) -> None:
    params = {
        "role_arn": sandbox.config.server_role_arn,
        "oidcprovider_arn": sandbox.config.oidc_provider_arn,
        "oidctoken": token,
        "role_session_name": "uploads-server",
    }
    params.update(overrides)
    client = Client(
        Config(endpoint=sandbox.sts_endpoint, protocol="http", connect_timeout=2000, read_timeout=5000)
    )
    return client.assume_role_with_oidc(AssumeRoleWithOIDCRequest(**params)).body


def stats(sandbox: Sandbox) -> dict:
    return requests.get(f"http://{sandbox.sts_endpoint}/__sandbox__/stats", timeout=5).json()


# --- RRSA: AssumeRoleWithOIDC over HTTPS, with the projected token file ---------------------


def test_a_fresh_sandbox_has_the_server_role_and_the_oidc_provider(keyless):
    config = keyless.config
    role = config.ram.call("GetRole", {"RoleName": "sandbox-server"})["Role"]
    trust = json.loads(role["AssumeRolePolicyDocument"])
    principals = [s["Principal"] for s in trust["Statement"]]
    assert {"RAM": [f"acs:ram::{ACCOUNT}:user/{config.ram_user_name}"]} in principals
    assert {"Federated": [f"acs:ram::{ACCOUNT}:oidc-provider/sandbox-oidc"]} in principals
    attached = config.ram.call("ListPoliciesForRole", {"RoleName": "sandbox-server"})["Policies"]["Policy"]
    assert {p["PolicyName"] for p in attached} == {
        "SandboxServerAssumeUploadRole",
        "SandboxServerObjectAccess",
    }
    assert config.ram.oidc_provider(config.oidc_provider_arn)["ClientIds"] == ["sts.aliyuncs.com"]
    assert config.oidc_token_file.is_file()
    assert (config.oidc_token_file.stat().st_mode & 0o077) == 0  # a credential: owner only


def test_oidc_provider_gets_the_server_role_over_https_and_chains_to_the_upload_role(keyless, caplog):
    caplog.set_level(logging.INFO, logger="sandbox.sts")
    server = oidc_provider(keyless)
    server_creds = server.get_credentials()
    assert server_creds.get_access_key_id().startswith("STS.")
    identity = sts_client(keyless, server_creds).get_caller_identity().body
    assert identity.identity_type == "AssumedRoleUser"
    assert identity.arn == f"acs:ram::{ACCOUNT}:assumed-role/sandbox-server/uploads-server"

    upload = RamRoleArnCredentialsProvider(
        credentials_provider=server,
        role_arn=UPLOAD_ROLE,
        role_session_name="user-7",
        duration_seconds=3600,
        sts_endpoint=keyless.sts_tls_endpoint,
    )
    user_creds = upload.get_credentials()
    assert user_creds.get_provider_name() == "ram_role_arn/oidc_role_arn"
    principal = resolve_principal(
        keyless.config,
        access_key_id=user_creds.get_access_key_id(),
        security_token=user_creds.get_security_token(),
    )
    resource = object_resource(BUCKET, "user/7/a.png", region="cn-hangzhou", owner=ACCOUNT)
    assert principal.role_arn == UPLOAD_ROLE and is_allowed(principal.policies, "oss:PutObject", resource)

    # The log names the kind of key behind each call and never a secret or a token.
    lines = [r.getMessage() for r in caplog.records if "issued" in r.getMessage()]
    assert any(line.startswith("sandbox STS: AssumeRoleWithOIDC by unsigned (OIDC token") for line in lines)
    assert any(
        line.startswith(f"sandbox STS: AssumeRole by sts key {server_creds.get_access_key_id()} ")
        for line in lines
    )
    secrets = [
        server_creds.get_access_key_secret(),
        server_creds.get_security_token(),
        user_creds.get_access_key_secret(),
        user_creds.get_security_token(),
        keyless.config.oidc_token_file.read_text(),
    ]
    assert not any(secret in caplog.text for secret in secrets)


@pytest.mark.parametrize("v2", [False, True], ids=["acs3-x-acs-security-token", "v2-SecurityToken-query"])
def test_the_sts_sdk_signed_with_role_credentials_chains(keyless, v2):
    server_creds = oidc_provider(keyless).get_credentials()
    before = stats(keyless)["calls_by_caller"]
    body = (
        sts_client(keyless, server_creds, v2=v2)
        .assume_role(
            AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="user-8", duration_seconds=900)
        )
        .body
    )
    assert body.assumed_role_user.arn == f"acs:ram::{ACCOUNT}:assumed-role/sandbox-uploader/user-8"
    after = stats(keyless)["calls_by_caller"]
    assert after["sts"] == before["sts"] + 1 and after["long-term"] == before["long-term"]


def test_a_chained_session_is_limited_to_an_hour_whatever_the_roles_maximum(fresh):
    config = fresh.config
    config.ram.call("UpdateRole", {"RoleName": "sandbox-uploader", "NewMaxSessionDuration": "7200"})
    long_term = sts_client(fresh).assume_role(
        AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="direct", duration_seconds=7200)
    )
    assert long_term.body.credentials.access_key_id.startswith("STS.")
    chained = sts_client(fresh, oidc_provider(fresh).get_credentials())
    with pytest.raises(ClientException) as excinfo:
        chained.assume_role(
            AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="chained", duration_seconds=3601)
        )
    assert (excinfo.value.code, excinfo.value.status_code) == ("InvalidParameter.DurationSeconds", 400)
    assert "3600" in excinfo.value.message
    ok = chained.assume_role(
        AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="chained", duration_seconds=3600)
    )
    assert ok.body.credentials.expiration


def test_chaining_needs_sts_assume_role_in_the_calling_roles_policies(fresh):
    creds = oidc_provider(fresh).get_credentials()
    fresh.config.ram.call(
        "DetachPolicyFromRole",
        {"RoleName": "sandbox-server", "PolicyType": "Custom", "PolicyName": "SandboxServerAssumeUploadRole"},
    )
    with pytest.raises(ClientException) as excinfo:
        sts_client(fresh, creds).assume_role(
            AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="user-7")
        )
    assert (excinfo.value.code, excinfo.value.status_code) == ("NoPermission", 403)


def test_chaining_needs_the_target_roles_trust_in_the_calling_role(fresh):
    creds = oidc_provider(fresh).get_credentials()
    client = sts_client(fresh, creds)
    request = AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="user-7")
    only_the_user = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/x"]},
            }
        ],
    }
    ram = fresh.config.ram
    ram.call(
        "UpdateRole",
        {"RoleName": "sandbox-uploader", "NewAssumeRolePolicyDocument": json.dumps(only_the_user)},
    )
    with pytest.raises(ClientException) as excinfo:
        client.assume_role(request)
    assert (excinfo.value.code, excinfo.value.status_code) == ("NoPermission", 403)
    # Alibaba's form for a role as principal: acs:ram::<account>:role/<name>.
    only_the_user["Statement"][0]["Principal"]["RAM"].append(f"acs:ram::{ACCOUNT}:role/sandbox-server")
    ram.call(
        "UpdateRole",
        {"RoleName": "sandbox-uploader", "NewAssumeRolePolicyDocument": json.dumps(only_the_user)},
    )
    assert client.assume_role(request).body.credentials.access_key_id.startswith("STS.")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("expired", '"SecurityToken.Expired"'),
        ("other-key", '"SecurityToken.MismatchWithAccessKey"'),
        ("forged", '"SecurityToken.Malformed"'),
    ],
)
def test_role_credentials_the_sandbox_did_not_mint_or_that_expired_are_refused(keyless, case, message):
    config = keyless.config
    issue = dict(role_session_name="s1", session_policy=None, role_arn=config.server_role_arn)
    past = datetime.now(UTC) - timedelta(hours=2)
    creds = issue_credentials(config, duration_seconds=900, now=past if case == "expired" else None, **issue)
    token = creds.security_token
    if case == "other-key":
        token = issue_credentials(config, duration_seconds=900, **issue).security_token
    if case == "forged":
        token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    client = Client(
        Config(
            access_key_id=creds.access_key_id,
            access_key_secret=creds.access_key_secret,
            security_token=token,
            endpoint=keyless.sts_endpoint,
            protocol="http",
        )
    )
    with pytest.raises(ClientException) as excinfo:
        client.assume_role(AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="user-7"))
    assert (excinfo.value.code, excinfo.value.status_code) == ("InvalidParameter", 400)
    assert message in excinfo.value.message


# --- OIDC refusals: the answer, and the log line -----------------------------------------


def _other_key_token(config: SandboxConfig) -> str:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": config.oidc_issuer, "aud": ["sts.aliyuncs.com"], "sub": config.oidc_subject}
    claims |= {"iat": now, "exp": now + 600}
    return jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": config.oidc.key_id})


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("forged", "AuthenticationFail.OIDCToken.InvalidSignature"),
        ("expired", "AuthenticationFail.OIDCToken.Expired"),
        ("audience", "AuthenticationFail.OIDCToken.AudienceNotMatch"),
        ("issuer", "AuthenticationFail.OIDCToken.IssuerNotMatch"),
        ("hs256", "AuthenticationFail.OIDCToken.Invalid"),
        ("untrusting-role", "AuthenticationFail.NoPermission"),
        ("unknown-provider", "AuthenticationFail.NoPermission"),
    ],
)
def test_oidc_refusals_carry_alibabas_codes_and_a_log_line(keyless, caplog, case, code):
    caplog.set_level(logging.INFO, logger="sandbox.sts")
    config, overrides = keyless.config, {}
    issuer = config.oidc
    tokens = {
        "forged": lambda: _other_key_token(config),
        "expired": lambda: issuer.mint(now=datetime.now(UTC) - timedelta(hours=2), ttl_seconds=3600),
        "audience": lambda: issuer.mint(audience="someone-else"),
        "issuer": lambda: issuer.mint(issuer="https://evil.example/"),
        "hs256": lambda: jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256"),
    }
    token = tokens.get(case, issuer.mint)()
    if case == "untrusting-role":
        overrides["role_arn"] = UPLOAD_ROLE  # trusts the account's RAM users and roles, no provider
    if case == "unknown-provider":
        overrides["oidcprovider_arn"] = f"acs:ram::{ACCOUNT}:oidc-provider/nobody"
    before = stats(keyless)["issued"]
    with pytest.raises(ClientException) as excinfo:
        assume_with_oidc(keyless, token, **overrides)
    assert (excinfo.value.code, excinfo.value.status_code) == (code, 401)
    assert stats(keyless)["issued"] == before
    refusal = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusal == [f"sandbox STS: AssumeRoleWithOIDC refused 401 {code}, caller unsigned (OIDC token)"]
    assert token not in caplog.text


def test_the_oidc_provider_of_the_credentials_library_reports_a_role_that_does_not_trust_it(keyless):
    with pytest.raises(CredentialException, match=r"AuthenticationFail\.NoPermission"):
        oidc_provider(keyless, role_arn=UPLOAD_ROLE).get_credentials()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_=-]{0,40}(\.[A-Za-z0-9_=-]{0,60}){2}"))
)
def test_any_oidc_token_text_is_refused_with_an_oidc_code(keyless, token):
    with pytest.raises(OidcError) as excinfo:
        keyless.config.oidc.verify(token, issuer=keyless.config.oidc_issuer, audiences=["sts.aliyuncs.com"])
    assert excinfo.value.code.startswith("AuthenticationFail.OIDCToken.") and excinfo.value.status == 401


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    claims=st.fixed_dictionaries(
        {
            "iss": st.text(max_size=40),
            "aud": st.one_of(st.text(max_size=20), st.lists(st.text(max_size=20))),
            "sub": st.text(max_size=40),
        },
        optional={"exp": st.integers(-(2**40), 2**40), "iat": st.integers(-(2**40), 2**40)},
    )
)
def test_tokens_signed_by_another_key_never_pass_over_http(keyless, claims):
    """Whatever claims an attacker writes, a token not signed by the sandbox's issuer is refused."""
    attacker = _ATTACKER_KEY
    token = jwt.encode(claims, attacker, algorithm="RS256", headers={"kid": keyless.config.oidc.key_id})
    response = requests.post(
        f"http://{keyless.sts_endpoint}/",
        params={
            "Action": "AssumeRoleWithOIDC",
            "Version": "2015-04-01",
            "RoleArn": keyless.config.server_role_arn,
            "OIDCProviderArn": keyless.config.oidc_provider_arn,
            "OIDCToken": token,
            "RoleSessionName": "attacker",
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["Code"] in {
        "AuthenticationFail.OIDCToken.InvalidSignature",
        "AuthenticationFail.OIDCToken.Invalid",
    }


_ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- the projected token rotates -------------------------------------------------------


def test_the_token_file_is_replaced_before_the_token_expires_and_each_one_is_accepted(tmp_path):
    config = _config(tmp_path / "rotate", oidc_token_ttl_seconds=4, oidc_token_rotate_seconds=0.4)
    with Sandbox(config) as running:
        seen = [config.oidc_token_file.read_text()]
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
            current = config.oidc_token_file.read_text()
            if current != seen[-1]:
                seen.append(current)
        assert len(seen) >= 3, "the token file was not rotated"
        for token in seen:
            assert assume_with_oidc(running, token).credentials.access_key_id.startswith("STS.")


def test_an_expired_projected_token_is_refused(tmp_path):
    config = _config(tmp_path / "short", oidc_token_ttl_seconds=1, oidc_token_rotate_seconds=0.5)
    with Sandbox(config, project_oidc_token=False) as running:
        token = config.oidc.mint(now=datetime.now(UTC) - timedelta(seconds=2))
        with pytest.raises(ClientException) as excinfo:
            assume_with_oidc(running, token)
        assert excinfo.value.code == "AuthenticationFail.OIDCToken.Expired"


# --- TLS -----------------------------------------------------------------------------------


def test_the_https_port_is_refused_by_a_client_that_does_not_trust_the_sandbox_ca(keyless):
    url = f"https://{keyless.sts_tls_endpoint}/__sandbox__/stats"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=5)  # requests trusts certifi's bundle only
    assert requests.get(url, timeout=5, verify=str(keyless.ca_file)).status_code == 200
    localhost = url.replace("127.0.0.1", "localhost")
    assert requests.get(localhost, timeout=5, verify=str(keyless.ca_file)).status_code == 200


def test_the_ca_and_server_certificate_are_reused_across_restarts(keyless):
    first = keyless.ca_file.read_bytes()
    files = ensure_tls_files(keyless.config.data_dir)
    assert files.ca_cert.read_bytes() == first
    assert (files.server_key.stat().st_mode & 0o077) == 0


# --- ALIBABA_CLOUD_CREDENTIALS_URI ----------------------------------------------------------


def test_the_credentials_uri_serves_the_server_role(keyless):
    provider = URLCredentialsProvider(uri=f"http://{keyless.sts_endpoint}/__sandbox__/credentials")
    creds = provider.get_credentials()
    identity = sts_client(keyless, creds).get_caller_identity().body
    assert identity.arn == f"acs:ram::{ACCOUNT}:assumed-role/sandbox-server/credentials-uri"
    chained = sts_client(keyless, creds).assume_role(
        AssumeRoleRequest(role_arn=UPLOAD_ROLE, role_session_name="u-1")
    )
    assert chained.body.credentials.access_key_id.startswith("STS.")


@pytest.mark.slow
def test_the_default_credentials_chain_reads_the_uri_from_the_environment(keyless):
    """The unmodified default chain, configured by environment variables only, in a fresh process."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(keyless.config.data_dir),  # no ~/.alibabacloud or ~/.aliyun profiles
        "ALIBABA_CLOUD_CREDENTIALS_URI": f"http://{keyless.sts_endpoint}/__sandbox__/credentials",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    code = (
        "from alibabacloud_credentials.client import Client\n"
        "c = Client().get_credential()\n"
        "print(c.get_access_key_id()[:4], c.get_provider_name())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["STS.", "default/credential_uri"]


def test_a_ram_state_from_before_the_server_role_gets_it_and_keeps_its_changes(tmp_path):
    data_dir = tmp_path / "old"
    config = _config(data_dir)
    config.ram.call("UpdateRole", {"RoleName": "sandbox-uploader", "NewMaxSessionDuration": "7200"})
    state_file = data_dir / "ram.json"
    state = json.loads(state_file.read_text())
    for key in ("SeedVersion", "oidc_providers"):
        state.pop(key)
    state["roles"].pop("sandbox-server")
    state_file.write_text(json.dumps(state))

    restarted = _config(data_dir)
    assert (
        restarted.ram.call("GetRole", {"RoleName": "sandbox-server"})["Role"]["RoleName"] == "sandbox-server"
    )
    assert (
        restarted.ram.call("GetRole", {"RoleName": "sandbox-uploader"})["Role"]["MaxSessionDuration"] == 7200
    )
    assert json.loads(state_file.read_text())["SeedVersion"] == 2
