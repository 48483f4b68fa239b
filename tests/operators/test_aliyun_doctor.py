"""`manage.py aliyun_doctor` against a sandbox set up by `aliyun_setup`, then with each fault injected."""

import io
import json
import re

import oss2
import pytest
from alibabacloud_ram20150501 import models as ram_models
from django.conf import settings
from django.core.management import call_command

from sandbox.storage import Storage
from tests.operators.conftest import SITE
from tests.operators.test_aliyun_setup import ram_client


def doctor(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("aliyun_doctor", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def results(*args: str) -> tuple[int, dict[str, dict]]:
    status, out = doctor("--json", *args)
    return status, {check["id"]: check for check in json.loads(out)["checks"]}


@pytest.fixture
def set_up(fresh_sandbox):
    call_command("aliyun_setup", "--apply", "--yes", stdout=io.StringIO())
    return fresh_sandbox


def admin_bucket(sandbox) -> oss2.Bucket:
    auth = oss2.Auth(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET)
    return oss2.Bucket(auth, sandbox.oss_endpoint, settings.ALIYUN_OSS_BUCKET)


def test_all_green_after_setup_and_the_probe_leaves_nothing(set_up):
    status, out = doctor()
    assert status == 0, out
    assert out.count("✓") == 7 and "✗" not in out
    assert "7 of 7 checks passed." in out
    assert list(Storage(set_up.config.data_dir).iter_objects(settings.ALIYUN_OSS_BUCKET)) == []
    status, checks = results()
    assert status == 0 and set(checks) == {
        "identity",
        "sts",
        "max_session",
        "upload",
        "cors",
        "private",
        "clock",
    }


def test_a_role_that_does_not_exist(set_up, settings):
    settings.ALIYUN_STS_ROLE_ARN = "acs:ram::1234567890123456:role/no-such-role"
    status, out = doctor()
    assert status == 1
    assert "✗ STS AssumeRole works: EntityNotExist.Role" in out
    assert "names no role of that account" in out


def test_a_role_that_does_not_trust_the_server(set_up):
    other = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::1234567890123456:user/someone-else"]},
            }
        ],
    }
    ram_client(set_up).update_role(
        ram_models.UpdateRoleRequest(
            role_name="oss-uploader", new_assume_role_policy_document=json.dumps(other)
        )
    )
    status, checks = results()
    assert status == 1
    assert checks["sts"]["ok"] is False and checks["sts"]["detail"].startswith("NoPermission")
    assert "name it in the role's trust policy" in checks["sts"]["fix"]
    assert checks["upload"]["detail"] == "not checked: AssumeRole failed"


def test_a_duration_above_the_roles_maximum(set_up, settings):
    settings.ALIYUN_STS_DURATION_SECONDS = 7200
    status, checks = results()
    assert status == 1
    assert checks["sts"]["detail"].startswith("InvalidParameter.DurationSeconds")
    assert "raise the role's maximum to 7200" in checks["sts"]["fix"]
    assert checks["max_session"]["ok"] is False
    assert "Raise the role's MaxSessionDuration to at least 7200" in checks["max_session"]["fix"]

    call_command("aliyun_setup", "--apply", "--yes", stdout=io.StringIO())  # raises the maximum
    status, checks = results()
    assert status == 0 and checks["max_session"]["detail"] == "the role granted 7200 s"


def test_cors_missing(set_up):
    admin_bucket(set_up).delete_bucket_cors()
    set_up.config.cors_allowed_origins = []
    status, checks = results()
    assert status == 1
    assert checks["cors"]["detail"] == f"the preflight for PUT from {SITE} was refused (403)"
    assert f"Add a bucket CORS rule allowing {SITE}" in checks["cors"]["fix"]
    assert checks["upload"]["ok"] is True  # the rest still works from a server


def test_cors_without_etag(set_up):
    rule = oss2.models.CorsRule(
        allowed_origins=[SITE], allowed_methods=["GET", "PUT", "POST"], allowed_headers=["*"],
        expose_headers=["x-oss-request-id"], max_age_seconds=100,
    )  # fmt: skip
    admin_bucket(set_up).put_bucket_cors(oss2.models.BucketCors([rule]))
    status, checks = results()
    assert status == 1
    assert checks["cors"]["detail"] == "ETag is not exposed (Access-Control-Expose-Headers: x-oss-request-id)"
    assert "Expose ETag" in checks["cors"]["fix"]


def test_no_origin_to_check(set_up, settings):
    settings.CSRF_TRUSTED_ORIGINS = []
    status, checks = results()
    assert status == 1 and "DJANGO_CSRF_TRUSTED_ORIGINS" in checks["cors"]["fix"]
    status, checks = results("--origin", SITE)
    assert status == 0


def _skew(detail: str, direction: str) -> int:
    """The seconds in "this server is N s <direction> Alibaba Cloud": the Date header has 1 s resolution,
    so an injected 300 s reads as 299 to 301."""
    match = re.match(rf"this server is (\d+) s {direction} Alibaba Cloud", detail)
    assert match, detail
    return int(match.group(1))


def test_a_skewed_clock(set_up):
    set_up.config.faults.configure(clock_skew_seconds=300)  # the sandbox 5 minutes ahead: we are behind
    status, checks = results()
    assert status == 1
    assert _skew(checks["clock"]["detail"], "behind") == pytest.approx(300, abs=2)
    assert "NTP" in checks["clock"]["fix"]
    assert checks["sts"]["ok"] is True  # still inside the 15 minutes STS and OSS accept

    set_up.config.faults.configure(clock_skew_seconds=-20 * 60)
    status, checks = results()
    assert status == 1
    assert checks["sts"]["detail"].startswith("InvalidTimeStamp.Expired")
    assert "clock is more than 15 minutes off" in checks["sts"]["fix"]
    assert _skew(checks["clock"]["detail"], "ahead of") == pytest.approx(1200, abs=2)


def test_a_public_bucket_and_setup_making_it_private(set_up):
    admin_bucket(set_up).put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    status, checks = results()
    assert status == 1
    assert checks["private"]["detail"].startswith("anonymous list: 200, anonymous read: 200")
    assert "set-acl oss://avatars-test private" in checks["private"]["fix"]

    out = io.StringIO()
    call_command("aliyun_setup", "--apply", "--yes", stdout=out)
    assert "PutBucketAcl bucket avatars-test: make the bucket private (it is public-read)" in out.getvalue()
    status, checks = results()
    assert status == 0 and checks["private"]["detail"].startswith("anonymous list: 403")


def test_every_origin_is_checked_app_origins_included(set_up, settings):
    settings.ALIYUN_OSS_APP_ORIGINS = ["capacitor://localhost"]
    status, out = doctor()
    assert status == 1
    assert f"✓ CORS: a browser at {SITE} may upload and read ETag" in out
    assert "✗ CORS: a browser at capacitor://localhost may upload and read ETag" in out
    assert "--origin capacitor://localhost" in out  # the fix names the origin

    call_command("aliyun_setup", "--apply", "--yes", stdout=io.StringIO())
    status, out = doctor()
    assert status == 0, out
    assert "✗" not in out and re.search(r"\n(\d+) of \1 checks passed\.", out)
    status, out = doctor("--origin", "https://other.example", "--origin", SITE)
    assert "✗ CORS: a browser at https://other.example" in out and f"✓ CORS: a browser at {SITE}" in out
