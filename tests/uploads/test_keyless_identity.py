"""The API with no AccessKey on the server: credentials, signed forms and avatar confirmation work with
RRSA or a credentials URI, and a server identity that cannot be renewed is a 503 ``sts_unavailable`` with
a log line naming its source: for a forged OIDC token, an expired one, a role that does not trust the
provider, an STS that cannot be reached over TLS. Never a 500, never a secret in a log line."""

import logging
from datetime import UTC, datetime, timedelta

import jwt
import oss2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.keyless import use_credentials_uri, use_rrsa
from tests.pngs import png_bytes
from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db

STS_TOKEN = "/api/uploads/sts-token/"


def _confirm_an_avatar(client) -> dict:
    body = client.post(STS_TOKEN).json()
    key = client.post("/api/me/avatar/upload-key/", {"contentType": "image/png", "size": 100}, format="json")
    key = key.json()["key"]
    auth = oss2.StsAuth(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])
    oss2.Bucket(auth, body["endpoint"], body["bucket"]).put_object(
        key, png_bytes(8, 8), headers={"Content-Type": "image/png"}
    )
    response = client.post("/api/me/avatar/", {"key": key}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("source", ["rrsa", "credentials_uri"])
def test_every_endpoint_works_without_an_access_key(
    jwt_client, user, settings, sandbox, keyless_sandbox, source
):
    if source == "rrsa":
        use_rrsa(settings, keyless_sandbox)
    else:
        use_credentials_uri(settings, sandbox)
    response = jwt_client.post(STS_TOKEN)
    assert response.status_code == 200, response.content
    assert response.json()["accessKeyId"].startswith("STS.")
    form = jwt_client.post(
        "/api/uploads/post-policy/", {"contentType": "image/png", "size": 10}, format="json"
    )
    assert form.status_code == 200, form.content
    assert form.json()["fields"]["x-oss-credential"].startswith("STS.")  # signed by the server's STS key
    me = _confirm_an_avatar(jwt_client)
    assert "x-oss-security-token" in me["avatarUrl"]
    assert TokenIssuance.objects.filter(outcome="issued").count() == 1


# --- refusals: the answer and the log line --------------------------------------------------------


def _forged(config) -> str:
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": config.oidc_issuer, "aud": ["sts.aliyuncs.com"], "sub": config.oidc_subject}
    return jwt.encode(claims | {"iat": now, "exp": now + 600}, attacker, algorithm="RS256")


CASES = {
    "forged": "AuthenticationFail.OIDCToken.InvalidSignature",
    "expired": "AuthenticationFail.OIDCToken.Expired",
    "untrusting-role": "AuthenticationFail.NoPermission",
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_identity_sts_refuses_is_503_sts_unavailable_with_a_log_line(
    jwt_client, settings, keyless_sandbox, tmp_path, caplog, case
):
    config = keyless_sandbox.config
    token_file = tmp_path / "token"
    token = {
        "forged": lambda: _forged(config),
        "expired": lambda: config.oidc.mint(now=datetime.now(UTC) - timedelta(hours=2), ttl_seconds=3600),
        "untrusting-role": config.oidc.mint,
    }[case]()
    token_file.write_text(token)
    use_rrsa(settings, keyless_sandbox, ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(token_file))
    if case == "untrusting-role":  # the upload role trusts the account's RAM users and roles, no provider
        settings.ALIBABA_CLOUD_ROLE_ARN = settings.ALIYUN_STS_ROLE_ARN

    response = jwt_client.post(STS_TOKEN)

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "sts_unavailable" and response["Retry-After"] == "5"
    row = TokenIssuance.objects.get()
    assert (row.outcome, row.error_code) == ("failed", "server_identity")
    ours = [r.getMessage() for r in caplog.records if r.name == "aliyun.credentials"]
    assert ours == [
        f"Server identity (RRSA: AssumeRoleWithOIDC of {settings.ALIBABA_CLOUD_ROLE_ARN} with the token file "
        f"{token_file} at {keyless_sandbox.sts_tls_endpoint}) could not get credentials: CredentialException"
    ]
    library = [r.getMessage() for r in caplog.records if r.name == "credentials"]
    assert any(CASES[case] in line for line in library), library  # STS's code, as the library logs it
    assert token not in caplog.text and token not in response.content.decode()


def test_sts_unreachable_over_tls_logs_no_token_even_from_the_librarys_request_url(
    jwt_client, settings, keyless_sandbox, caplog
):
    """The plain-http port answers no TLS: the library's warning quotes the request URL, whose query
    holds the OIDC token; the filter on its logger cuts it out."""
    use_rrsa(settings, keyless_sandbox, ALIYUN_STS_HTTPS_ENDPOINT=keyless_sandbox.sts_endpoint)
    token = keyless_sandbox.config.oidc_token_file.read_text()
    response = jwt_client.post(STS_TOKEN)
    assert (response.status_code, response.json()["code"]) == (503, "sts_unavailable")
    library = [r.getMessage() for r in caplog.records if r.name == "credentials"]
    assert library and any("Max retries exceeded" in line for line in library), library
    assert "OIDCToken" not in caplog.text and token not in caplog.text
    assert token[:40] not in caplog.text


def test_avatar_confirmation_and_me_survive_an_identity_failure(jwt_client, settings, sandbox, caplog):
    me_before = _confirm_an_avatar(jwt_client)
    assert me_before["avatarUrl"]
    use_credentials_uri(settings, sandbox)
    settings.ALIBABA_CLOUD_CREDENTIALS_URI = "http://127.0.0.1:1/credentials"
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""

    confirm = jwt_client.post("/api/me/avatar/", {"key": "user/1/avatars/x.png"}, format="json")
    assert confirm.status_code in (403, 503), confirm.content  # 403: not the caller's folder
    own_key = f"user/{me_before['id']}/avatars/x.png"
    confirm = jwt_client.post("/api/me/avatar/", {"key": own_key}, format="json")
    assert (confirm.status_code, confirm.json()["code"]) == (503, "sts_unavailable")
    assert confirm["Retry-After"] == "5"

    me = jwt_client.get("/api/me/")
    assert me.status_code == 200 and me.json()["avatarUrl"] is None  # the page works; no URL can be signed
    assert any(r.name == "aliyun.credentials" and r.levelno == logging.ERROR for r in caplog.records)
