"""`aliyun_doctor` says which identity source the server uses, whose it is and when its credentials
expire: an AccessKey, RRSA against the sandbox's HTTPS STS, a credentials URI, and a broken source."""

import io
import json
import re

from django.core.management import call_command

from tests.keyless import use_credentials_uri, use_rrsa

ACCOUNT = "1234567890123456"


def identity_check() -> dict:
    out = io.StringIO()
    try:
        call_command("aliyun_doctor", "--json", stdout=out)
    except SystemExit:
        pass
    return next(check for check in json.loads(out.getvalue())["checks"] if check["id"] == "identity")


def test_an_access_key_is_named_with_its_ram_user_and_no_expiry(settings):
    check = identity_check()
    assert check["ok"], check
    assert check["detail"].startswith(
        f"AccessKey {settings.ALIYUN_ACCESS_KEY_ID} (ALIYUN_ACCESS_KEY_ID), acting as "
    )
    assert "a long-term key that does not expire" in check["detail"]


def test_rrsa_is_named_with_the_assumed_role_and_the_expiry(settings, keyless_sandbox):
    use_rrsa(settings, keyless_sandbox)
    check = identity_check()
    assert check["ok"], check
    assert (
        f"acting as acs:ram::{ACCOUNT}:assumed-role/sandbox-server/uploads-server (AssumedRoleUser)"
        in (check["detail"])
    )
    assert re.search(
        r"credentials STS\.\w+ expire at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 5\d min", check["detail"]
    )


def test_a_credentials_uri_that_does_not_answer_is_a_cross_with_a_fix(settings, sandbox):
    use_credentials_uri(settings, sandbox)
    settings.ALIBABA_CLOUD_CREDENTIALS_URI = "http://127.0.0.1:1/credentials"
    check = identity_check()
    assert not check["ok"]
    assert check["detail"].startswith("credentials URI http://127.0.0.1:1/credentials: ")
    assert "is the sidecar running?" in check["fix"]


def test_no_identity_at_all(settings):
    settings.ALIYUN_ACCESS_KEY_ID = settings.ALIYUN_ACCESS_KEY_SECRET = ""
    check = identity_check()
    assert not check["ok"] and "No server identity is configured" in check["detail"]
