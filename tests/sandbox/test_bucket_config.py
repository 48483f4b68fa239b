"""Bucket CORS and lifecycle through oss2, the CORS rules enforced as OSS does, and a skewed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import oss2
import pytest
import requests
from django.conf import settings
from oss2.models import (
    AbortMultipartUpload,
    BucketCors,
    BucketLifecycle,
    CorsRule,
    LifecycleExpiration,
    LifecycleRule,
)

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox

SITE = "https://app.example.com"
BROWSER_HEADERS = "authorization,content-type,x-oss-date,x-oss-security-token,x-oss-user-agent"


def admin(sandbox: Sandbox) -> oss2.Bucket:
    auth = oss2.AuthV4(settings.ALIYUN_ACCESS_KEY_ID, settings.ALIYUN_ACCESS_KEY_SECRET)
    return oss2.Bucket(
        auth, sandbox.oss_endpoint, settings.ALIYUN_OSS_BUCKET, region=settings.ALIYUN_OSS_REGION
    )


def preflight(sandbox: Sandbox, origin: str, method: str = "PUT", headers: str = BROWSER_HEADERS):
    return requests.options(
        f"{sandbox.oss_endpoint}/{settings.ALIYUN_OSS_BUCKET}/user/7/a.png",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=5,
    )


def site_rule(**overrides) -> CorsRule:
    values = {
        "allowed_origins": [SITE, "https://*.example.org"],
        "allowed_methods": ["GET", "PUT", "POST"],
        "allowed_headers": ["authorization", "content-type", "x-oss-*"],
        "expose_headers": ["ETag", "x-oss-request-id"],
        "max_age_seconds": 120,
    }
    values.update(overrides)
    return CorsRule(**values)


def test_cors_rules_round_trip_and_survive_a_restart(private_sandbox):
    with pytest.raises(oss2.exceptions.NoSuchCors):
        admin(private_sandbox).get_bucket_cors()
    admin(private_sandbox).put_bucket_cors(BucketCors([site_rule()]))
    private_sandbox.stop()
    with Sandbox(SandboxConfig.from_settings(data_dir=private_sandbox.config.data_dir)) as again:
        rules = admin(again).get_bucket_cors().rules
        assert [
            (r.allowed_origins, r.allowed_methods, r.expose_headers, r.max_age_seconds) for r in rules
        ] == [([SITE, "https://*.example.org"], ["GET", "PUT", "POST"], ["ETag", "x-oss-request-id"], 120)]
        assert preflight(again, SITE).status_code == 200


def test_the_applied_rules_decide_preflights(private_sandbox):
    private_sandbox.config.cors_allowed_origins = ["*"]  # replaced by the applied rules
    admin(private_sandbox).put_bucket_cors(BucketCors([site_rule()]))

    allowed = preflight(private_sandbox, SITE)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == SITE
    assert allowed.headers["Access-Control-Allow-Headers"] == BROWSER_HEADERS
    assert allowed.headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    assert allowed.headers["Access-Control-Max-Age"] == "120"
    assert preflight(private_sandbox, "https://cdn.example.org").status_code == 200  # one * in an origin

    for refused in (
        preflight(private_sandbox, "https://evil.example"),  # origin
        preflight(private_sandbox, SITE, method="DELETE"),  # method
        preflight(private_sandbox, SITE, headers="authorization,x-custom"),  # a header no rule names
    ):
        assert refused.status_code == 403
        assert b"<Code>AccessForbidden</Code>" in refused.content
        assert "Access-Control-Allow-Origin" not in refused.headers


def test_actual_answers_carry_cors_headers_only_for_allowed_origins(private_sandbox):
    admin(private_sandbox).put_bucket_cors(BucketCors([site_rule()]))
    url = f"{private_sandbox.oss_endpoint}/{settings.ALIYUN_OSS_BUCKET}/user/7/a.png"
    ok = requests.put(url, data=b"x", headers={"Origin": SITE}, timeout=5)  # refused (unsigned), still CORS
    assert ok.headers["Access-Control-Allow-Origin"] == SITE
    assert ok.headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    other = requests.put(url, data=b"x", headers={"Origin": "https://evil.example"}, timeout=5)
    assert "Access-Control-Allow-Origin" not in other.headers
    head = requests.head(url, headers={"Origin": SITE}, timeout=5)  # HEAD is not in the rule's methods
    assert "Access-Control-Allow-Origin" not in head.headers


def test_without_rules_the_setting_decides(private_sandbox):
    config = private_sandbox.config
    config.cors_allowed_origins = []
    assert preflight(private_sandbox, SITE).status_code == 403  # like a bucket without CORS rules
    config.cors_allowed_origins = [SITE]
    answer = preflight(private_sandbox, SITE)
    assert answer.status_code == 200 and "ETag" in answer.headers["Access-Control-Expose-Headers"]
    assert preflight(private_sandbox, "https://evil.example").status_code == 403
    config.cors_allowed_origins = ["*"]
    assert preflight(private_sandbox, "https://evil.example").status_code == 200

    admin(private_sandbox).put_bucket_cors(BucketCors([site_rule(allowed_origins=["https://only.example"])]))
    assert preflight(private_sandbox, SITE).status_code == 403
    admin(private_sandbox).delete_bucket_cors()
    assert preflight(private_sandbox, SITE).status_code == 200  # back to SANDBOX_CORS_ALLOWED_ORIGINS


def test_cors_setting_is_read_from_the_environment(settings, tmp_path):
    settings.SANDBOX_CORS_ALLOWED_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]
    assert SandboxConfig.from_settings(data_dir=tmp_path).cors_allowed_origins == [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
    ]


def test_malformed_cors_is_refused(private_sandbox):
    with pytest.raises(oss2.exceptions.OssError) as refused:
        admin(private_sandbox).put_bucket_cors(BucketCors([site_rule(allowed_methods=["PATCH"])]))
    assert (refused.value.status, refused.value.code) == (400, "InvalidArgument")


def test_user_credentials_cannot_change_cors(private_sandbox, issue):
    from tests.sandbox.conftest import oss2_bucket

    creds = issue(7)
    with pytest.raises(oss2.exceptions.AccessDenied):
        oss2_bucket(private_sandbox.oss_endpoint, settings.ALIYUN_OSS_BUCKET, creds).put_bucket_cors(
            BucketCors([site_rule()])
        )


def test_lifecycle_round_trips(private_sandbox):
    with pytest.raises(oss2.exceptions.NoSuchLifecycle):
        admin(private_sandbox).get_bucket_lifecycle()
    rules = [
        LifecycleRule("abort", "", abort_multipart_upload=AbortMultipartUpload(days=1)),
        LifecycleRule("expire", "user/", expiration=LifecycleExpiration(days=7)),
    ]
    admin(private_sandbox).put_bucket_lifecycle(BucketLifecycle(rules))
    got = admin(private_sandbox).get_bucket_lifecycle().rules
    assert [(r.id, r.prefix, r.status) for r in got] == [
        ("abort", "", "Enabled"),
        ("expire", "user/", "Enabled"),
    ]
    assert got[0].abort_multipart_upload.days == 1 and got[1].expiration.days == 7
    admin(private_sandbox).delete_bucket_lifecycle()
    with pytest.raises(oss2.exceptions.NoSuchLifecycle):
        admin(private_sandbox).get_bucket_lifecycle()


def test_a_skewed_clock_shows_in_date_and_refuses_signatures(private_sandbox):
    private_sandbox.config.faults.configure(clock_skew_seconds=1200)
    answer = requests.get(f"{private_sandbox.oss_endpoint}/", timeout=5)
    assert answer.headers["Date"].count("GMT") == 1  # one Date header, the sandbox's
    ahead = (parsedate_to_datetime(answer.headers["Date"]) - datetime.now(UTC)).total_seconds()
    assert 1195 <= ahead <= 1205
    sts_date = requests.get(f"http://{private_sandbox.sts_endpoint}/", timeout=5).headers["Date"]
    assert 1195 <= (parsedate_to_datetime(sts_date) - datetime.now(UTC)).total_seconds() <= 1205
    with pytest.raises(oss2.exceptions.OssError) as refused:
        admin(private_sandbox).get_bucket_cors()
    assert (refused.value.status, refused.value.code) == (403, "RequestTimeTooSkewed")


def test_a_public_read_acl_answers_unsigned_reads_only(private_sandbox):
    bucket = admin(private_sandbox)
    bucket.put_object("user/7/public.txt", b"seen")
    url = f"{private_sandbox.oss_endpoint}/{settings.ALIYUN_OSS_BUCKET}/user/7/public.txt"
    assert bucket.get_bucket_acl().acl == "private"
    assert requests.get(url, timeout=5).status_code == 403

    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert bucket.get_bucket_acl().acl == "public-read"
    assert requests.get(url, timeout=5).content == b"seen"
    assert requests.put(url, data=b"x", timeout=5).status_code == 403  # reading only
    assert requests.delete(url, timeout=5).status_code == 403

    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert requests.get(url, timeout=5).status_code == 403
