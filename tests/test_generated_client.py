"""Proof that /api/schema/ is complete: a client generated from it signs in, gets credentials, uploads.

openapi-python-client (pinned in requirements.txt) generates a package from the live schema into a
temporary directory at test time, offline (no templates or hooks are fetched; its ruff post-hooks are
turned off). The test then talks to the running server only through that package, and uploads with
oss2 using only what the generated models returned.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import oss2
import pytest
import requests

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    schema = tmp_path / "schema.json"
    schema.write_bytes(
        requests.get(
            f"{live_server.url}/api/schema/",
            headers={"Accept": "application/vnd.oai.openapi+json"},
            timeout=30,
        ).content
    )
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")
    run = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "ossup_client"),
            "--config",
            str(tmp_path / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, (
        run.stdout + run.stderr
    )  # every part of the schema understood
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("ossup_client")
    for name in [name for name in sys.modules if name.startswith("ossup_client")]:
        del sys.modules[name]


def test_generated_client_logs_in_fetches_credentials_and_uploads(
    generated_client, live_server, user, password, server_oss
):
    from ossup_client.api.auth import auth_token_create
    from ossup_client.api.uploads import (
        uploads_sts_server_credential_url_retrieve,
        uploads_sts_server_url_create,
        uploads_sts_token_create,
    )
    from ossup_client.models import StsCredentials, StsServerCredentials, TokenObtainPairRequest, TokenPair

    anonymous = generated_client.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    tokens = auth_token_create.sync(
        client=anonymous, body=TokenObtainPairRequest(username=user.username, password=password)
    )
    assert isinstance(tokens, TokenPair)

    signed_in = generated_client.AuthenticatedClient(
        base_url=live_server.url, token=tokens.access, raise_on_unexpected_status=True
    )
    credentials = uploads_sts_token_create.sync(client=signed_in)
    assert isinstance(credentials, StsCredentials)
    assert credentials.prefix == f"user/{user.pk}/"

    auth = oss2.StsAuth(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
    bucket = oss2.Bucket(auth, credentials.endpoint, credentials.bucket)
    bucket.put_object(credentials.prefix + "generated-client.txt", b"from the generated client")
    assert (
        server_oss.get_object(credentials.prefix + "generated-client.txt").read()
        == b"from the generated client"
    )

    # The stock mobile format through the generated client too: a credential URL, fetched without auth.
    created = uploads_sts_server_url_create.sync(client=signed_in)
    secret = created.url.rstrip("/").rsplit("/", 1)[1]
    stock = uploads_sts_server_credential_url_retrieve.sync(client=anonymous, secret=secret)
    assert isinstance(stock, StsServerCredentials)
    assert stock.status_code == "200"
    stock_bucket = oss2.Bucket(
        oss2.StsAuth(stock.access_key_id, stock.access_key_secret, stock.security_token),
        credentials.endpoint,
        credentials.bucket,
    )
    stock_bucket.put_object(credentials.prefix + "via-credential-url.txt", b"stock")
