"""End to end: credentials from the project's own POST /api/uploads/sts-token/, used with both SDKs."""

from __future__ import annotations

from dataclasses import dataclass

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from tests.sandbox.conftest import oss_error_code

URL = "/api/uploads/sts-token/"

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class ApiCredentials:
    """The three values an OSS client needs, as the API returned them."""

    access_key_id: str
    access_key_secret: str
    security_token: str


def fetch(client) -> tuple[dict, ApiCredentials]:
    response = client.post(URL)
    assert response.status_code == 200, response.content
    body = response.json()
    return body, ApiCredentials(body["accessKeyId"], body["accessKeySecret"], body["securityToken"])


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_with_api_credentials(jwt_client, user, server_oss, version) -> None:
    body, creds = fetch(jwt_client)
    auth = (
        oss2.ProviderAuthV4(
            oss2.credentials.StaticCredentialsProvider(
                creds.access_key_id, creds.access_key_secret, creds.security_token
            )
        )
        if version == "v4"
        else oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    )
    # Only what the API returned: endpoint, bucket, region, prefix.
    bucket = oss2.Bucket(auth, body["endpoint"], body["bucket"], region=body["region"])
    key = f"{body['prefix']}avatar-{version}.png"

    bucket.put_object(key, b"\x89PNG api", headers={"Content-Type": "image/png"})

    assert body["prefix"] == f"user/{user.pk}/"
    assert server_oss.get_object(key).read() == b"\x89PNG api"
    assert server_oss.head_object(key).content_type == "image/png"
    for read in (bucket.get_object, bucket.head_object):  # write-only, even in the user's own folder
        with pytest.raises(oss2.exceptions.AccessDenied):
            read(key)
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object(f"user/{user.pk + 1}/avatar.png", b"x")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.list_objects()


def test_v2_sdk_with_api_credentials(jwt_client, user, server_oss) -> None:
    body, creds = fetch(jwt_client)
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(
        creds.access_key_id, creds.access_key_secret, creds.security_token
    )
    config.region = body["region"]
    config.endpoint = body["endpoint"]
    config.retry_max_attempts = 1
    client = oss.Client(config)
    key = f"{body['prefix']}v2.bin"

    client.put_object(oss.PutObjectRequest(bucket=body["bucket"], key=key, body=b"v2 via api"))

    assert server_oss.get_object(key).read() == b"v2 via api"
    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.get_object(oss.GetObjectRequest(bucket=body["bucket"], key=key))
    assert oss_error_code(refused.value) == (403, "AccessDenied")
    with pytest.raises(oss.exceptions.OperationError) as refused:
        client.put_object(oss.PutObjectRequest(bucket=body["bucket"], key=f"user/{user.pk}0/x", body=b"x"))
    assert oss_error_code(refused.value) == (403, "AccessDenied")


def test_two_users_cannot_touch_each_other(
    api_client, jwt_client, user, other_user, password, server_oss
) -> None:
    body, alice = fetch(jwt_client)
    login = api_client.post(
        "/api/auth/token/", {"username": other_user.username, "password": password}, format="json"
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    other_body, bob = fetch(api_client)

    alice_bucket = oss2.Bucket(
        oss2.StsAuth(alice.access_key_id, alice.access_key_secret, alice.security_token),
        body["endpoint"],
        body["bucket"],
    )
    bob_bucket = oss2.Bucket(
        oss2.StsAuth(bob.access_key_id, bob.access_key_secret, bob.security_token),
        other_body["endpoint"],
        other_body["bucket"],
    )
    alice_bucket.put_object(f"{body['prefix']}private.txt", b"alice only")

    with pytest.raises(oss2.exceptions.AccessDenied):
        bob_bucket.get_object(f"{body['prefix']}private.txt")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bob_bucket.put_object(f"{body['prefix']}private.txt", b"overwritten")
    assert server_oss.get_object(f"{body['prefix']}private.txt").read() == b"alice only"
