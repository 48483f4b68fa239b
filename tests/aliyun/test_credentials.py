"""The server's own identity (aliyun/credentials.py) through the real SDKs against the sandbox: RRSA over
HTTPS, a credentials URI, role chaining for users, the server's own OSS calls, renewal before expiry, and
what a failure looks like (503 sts_unavailable, a log line naming the source, no secret anywhere)."""

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import oss2
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from aliyun import oss, sts
from aliyun.credentials import (
    ServerIdentityError,
    server_credentials,
    server_credentials_refreshes,
    server_identity,
)
from aliyun.policy import upload_policy
from tests.keyless import use_credentials_uri, use_rrsa

ACCOUNT = "1234567890123456"


def _stats(sandbox) -> dict:
    return requests.get(f"http://{sandbox.sts_endpoint}/__sandbox__/stats", timeout=5).json()


def _policy(settings, user_id: int) -> dict:
    return upload_policy(
        bucket=settings.ALIYUN_OSS_BUCKET,
        user_id=user_id,
        region=settings.ALIYUN_OSS_REGION,
        owner_account_id=ACCOUNT,
    )


def _user_upload(settings, key: str, data: bytes) -> None:
    """What a browser does with a user's credentials (minted by the server's current identity)."""
    user_id = int(key.split("/")[1])
    creds = sts.assume_role(
        role_session_name=f"user-{user_id}",
        policy=_policy(settings, user_id),
        duration_seconds=900,
    )
    auth = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    oss2.Bucket(auth, settings.ALIYUN_OSS_ENDPOINT, settings.ALIYUN_OSS_BUCKET).put_object(key, data)


# --- RRSA ----------------------------------------------------------------------------------------


def test_rrsa_gives_the_server_the_server_roles_temporary_credentials(settings, keyless_sandbox):
    use_rrsa(settings, keyless_sandbox)
    identity = server_identity()
    assert (identity.kind, identity.temporary) == ("rrsa", True)
    assert identity.description.startswith(
        f"RRSA: AssumeRoleWithOIDC of acs:ram::{ACCOUNT}:role/sandbox-server"
    )
    current = server_credentials()
    assert current.access_key_id.startswith("STS.") and current.security_token
    assert timedelta(minutes=55) < current.expiration - datetime.now(UTC) <= timedelta(hours=1)
    assert "secret" not in repr(current) and current.access_key_secret not in repr(current)

    who = sts.caller_identity()
    assert who.arn == f"acs:ram::{ACCOUNT}:assumed-role/sandbox-server/uploads-server"
    assert who.identity_type == "AssumedRoleUser"


def test_users_credentials_are_minted_by_role_chaining_with_sts_keys_only(settings, keyless_sandbox, caplog):
    use_rrsa(settings, keyless_sandbox)
    caplog.set_level(logging.INFO, logger="sandbox.sts")
    before = _stats(keyless_sandbox)["calls_by_caller"]
    creds = sts.assume_role(
        role_session_name="user-7",
        policy=_policy(settings, 7),
        duration_seconds=3600,
    )
    assert creds.access_key_id.startswith("STS.")
    after = _stats(keyless_sandbox)["calls_by_caller"]
    assert after.get("long-term", 0) == before.get("long-term", 0)
    assert after["sts"] == before.get("sts", 0) + 1
    chained = [r.getMessage() for r in caplog.records if "AssumeRole by" in r.getMessage()]
    assert chained and all(line.startswith("sandbox STS: AssumeRole by sts key STS.") for line in chained)
    assert all("role chaining" in line for line in chained)


def test_a_chained_duration_above_an_hour_is_refused_by_sts(settings, keyless_sandbox):
    use_rrsa(settings, keyless_sandbox)
    with pytest.raises(sts.StsError) as excinfo:
        sts.assume_role(
            role_session_name="user-7",
            policy=_policy(settings, 7),
            duration_seconds=3601,
        )
    assert (excinfo.value.code, excinfo.value.upstream_code) == (
        "sts_rejected",
        "InvalidParameter.DurationSeconds",
    )


def test_the_servers_own_oss_calls_use_the_role(settings, keyless_sandbox):
    use_rrsa(settings, keyless_sandbox)
    _user_upload(settings, "user/7/avatars/a.png", b"\x89PNG\r\n\x1a\n-rest")
    info = oss.head_object("user/7/avatars/a.png")
    assert info.size == 13
    assert oss.read_prefix("user/7/avatars/a.png", 8, if_match=info.etag) == b"\x89PNG\r\n\x1a\n"
    oss.copy_object(
        "user/7/avatars/a.png",
        "avatars/7/copy.png",
        if_match=info.etag,
        content_type="image/png",
        content_disposition="inline",
    )
    assert [o.key for o in oss.list_objects("user/7/")] == ["user/7/avatars/a.png"]
    url = oss.signed_get_url(
        "avatars/7/copy.png", 600, content_type="image/png", content_disposition="inline"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["x-oss-credential"][0].startswith("STS.") and "x-oss-security-token" in query
    assert requests.get(url, timeout=5).content == b"\x89PNG\r\n\x1a\n-rest"
    oss.delete_object("avatars/7/copy.png")
    with pytest.raises(oss.OssError) as excinfo:
        oss.head_object("avatars/7/copy.png")
    assert excinfo.value.code == "object_not_found"


# --- renewal ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_credentials_are_renewed_before_they_expire_and_the_token_file_is_read_again(
    settings, keyless_sandbox
):
    """A 902 s session is stale for the library after 2 s (it renews 15 minutes before expiry): every
    renewal is a new AssumeRoleWithOIDC with the token file read again, and no call in between fails."""
    use_rrsa(settings, keyless_sandbox, ALIYUN_SERVER_SESSION_SECONDS=902)
    token_file = keyless_sandbox.config.oidc_token_file
    seen, deadline = set(), time.monotonic() + 7
    while time.monotonic() < deadline:
        seen.add(server_credentials().access_key_id)
        assert sts.caller_identity().arn.endswith(":assumed-role/sandbox-server/uploads-server")
        time.sleep(0.25)
    assert len(seen) >= 3, seen  # the first, and at least two renewals
    assert server_credentials_refreshes() >= 3

    # The file is read at each renewal: an expired token there makes the next renewal fail ...
    good = token_file.read_text()
    expired = keyless_sandbox.config.oidc.mint(now=datetime.now(UTC) - timedelta(hours=2), ttl_seconds=3600)
    token_file.write_text(expired)
    time.sleep(2.2)
    with pytest.raises(ServerIdentityError):
        server_credentials()
    # ... and a fresh token (the kubelet's next rotation) makes the one after succeed.
    token_file.write_text(good)
    assert server_credentials().access_key_id.startswith("STS.")


# --- a credentials URI ------------------------------------------------------------------------------


def test_a_credentials_uri_serves_the_server_role(settings, sandbox):
    use_credentials_uri(settings, sandbox)
    identity = server_identity()
    assert identity.kind == "credentials_uri"
    assert identity.description == f"credentials URI http://{sandbox.sts_endpoint}/__sandbox__/credentials"
    assert sts.caller_identity().arn == f"acs:ram::{ACCOUNT}:assumed-role/sandbox-server/credentials-uri"
    _user_upload(settings, "user/9/x.txt", b"x")
    assert oss.head_object("user/9/x.txt").size == 1


def test_the_uri_is_named_without_its_query_string(settings, sandbox):
    use_credentials_uri(settings, sandbox, query="?duration_seconds=3600&token=abc")
    assert "token" not in server_identity().description and "?" not in server_identity().description


# --- signed URLs never outlive the credentials that sign them -------------------------------------


def test_a_signed_url_expires_no_later_than_the_temporary_credentials(settings, sandbox):
    use_credentials_uri(settings, sandbox, query="?duration_seconds=960")  # 16 minutes: still fresh
    _user_upload(settings, "user/9/pic.png", b"png")
    expiration = server_credentials().expiration
    left = (expiration - datetime.now(UTC)).total_seconds()
    url = oss.signed_get_url("user/9/pic.png", 3600, content_type="image/png", content_disposition="inline")
    expires = int(parse_qs(urlsplit(url).query)["x-oss-expires"][0])
    assert left - 5 <= expires <= left  # capped at the credentials' expiration, not the hour asked for
    assert requests.get(url, timeout=5).content == b"png"
    short = oss.signed_get_url("user/9/pic.png", 600, content_type="image/png", content_disposition="inline")
    assert parse_qs(urlsplit(short).query)["x-oss-expires"] == ["600"]  # its own lifetime when shorter


def test_an_access_key_signs_urls_for_the_lifetime_asked(settings):
    url = oss.signed_get_url("user/9/pic.png", 3600, content_type="image/png", content_disposition="inline")
    assert parse_qs(urlsplit(url).query)["x-oss-expires"] == ["3600"]


@given(
    asked=st.integers(1, 7 * 24 * 3600),
    left=st.floats(-3600, 50_000, allow_nan=False),
)
def test_a_url_lifetime_is_within_both_bounds(asked, left):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expiration = now + timedelta(seconds=left)  # microsecond precision, as a real expiration has
    seconds = oss.signed_url_seconds(asked, credentials_expiration=expiration, now=now)
    assert 1 <= seconds <= asked
    assert seconds <= max(1, (expiration - now).total_seconds())
    assert oss.signed_url_seconds(asked, credentials_expiration=None, now=now) == asked


# --- failures: a clear error, a log line naming the source, no secret -----------------------------


def test_a_missing_identity_is_an_error_not_a_crash(settings):
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    with pytest.raises(sts.StsError) as excinfo:
        sts.caller_identity()
    assert excinfo.value.code == "sts_unavailable"


def test_an_unreachable_uri_is_sts_unavailable_for_sts_and_oss(settings, sandbox, caplog):
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    settings.ALIBABA_CLOUD_CREDENTIALS_URI = "http://127.0.0.1:1/credentials?token=sidecar-secret"
    with pytest.raises(sts.StsError) as excinfo:
        sts.assume_role(
            role_session_name="user-1", policy={"Version": "1", "Statement": []}, duration_seconds=900
        )
    assert (excinfo.value.code, excinfo.value.upstream_code) == ("sts_unavailable", "server_identity")
    with pytest.raises(oss.OssError) as oss_excinfo:
        oss.head_object("user/1/x")
    assert oss_excinfo.value.code == "sts_unavailable"
    ours = [r.getMessage() for r in caplog.records if r.name == "aliyun.credentials"]
    assert ours[0].startswith(
        "Server identity (credentials URI http://127.0.0.1:1/credentials) could not get credentials: "
    )
    assert "sidecar-secret" not in caplog.text


def test_the_sdk_loggers_have_no_handler_of_their_own_and_cut_secrets_out(settings, sandbox, capfd):
    """The credentials library adds a stderr handler to its logger when imported; the seam removes it,
    so its warnings reach only our handlers, through the redacting filter."""
    for name in ("credentials", "alibabacloud-tea", "darabonba-core"):
        sdk_logger = logging.getLogger(name)
        assert sdk_logger.handlers == [] and sdk_logger.level == logging.WARNING
    capfd.readouterr()
    logging.getLogger("credentials").warning(
        "error refreshing credentials from %s, result: %s",
        "https://127.0.0.1:8703/?Action=AssumeRoleWithOIDC&OIDCToken=eyJhbGciOiJSUzI1.eyJzdWIiOiJzeXN0.c2ln",
        json.dumps({"AccessKeyId": "STS.abc", "AccessKeySecret": "s3cr3t", "SecurityToken": "t0k3n"}),
    )
    assert capfd.readouterr().err == ""  # pytest's own capture, not the library's handler
