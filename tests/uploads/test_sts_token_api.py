"""POST /api/uploads/sts-token/ through the real STS SDK against the sandbox STS."""

import logging
import time

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from sandbox.policy import bucket_resource, is_allowed, object_resource
from sandbox.tokens import resolve_principal
from uploads.models import TokenIssuance
from uploads.services import reuse, sts_budget

URL = "/api/uploads/sts-token/"


def _outcomes() -> list[str]:
    return list(TokenIssuance.objects.order_by("id").values_list("outcome", flat=True))


FIELDS = {
    "accessKeyId",
    "accessKeySecret",
    "securityToken",
    "expiration",
    "bucket",
    "region",
    "endpoint",
    "prefix",
}

pytestmark = pytest.mark.django_db


def test_jwt_user_gets_credentials_scoped_to_own_prefix(jwt_client, user, settings):
    response = jwt_client.post(URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert body["prefix"] == f"user/{user.pk}/"
    assert body["accessKeyId"].startswith("STS.")
    assert body["bucket"] == settings.ALIYUN_OSS_BUCKET
    assert body["region"] == settings.ALIYUN_OSS_REGION
    assert body["endpoint"] == settings.ALIYUN_OSS_ENDPOINT
    assert body["expiration"].endswith("Z")
    assert response["Cache-Control"] == "no-store"

    row = TokenIssuance.objects.get()
    assert (row.outcome, row.auth_method, row.user, row.username) == ("issued", "jwt", user, "alice")
    assert (row.prefix, row.access_key_id, row.role_session_name) == (
        body["prefix"],
        body["accessKeyId"],
        f"user-{user.pk}",
    )
    assert row.sts_request_id and row.expiration and row.client_ip == "127.0.0.1"


def test_policy_that_reached_sts_allows_only_own_prefix(jwt_client, user, other_user, sandbox):
    body = jwt_client.post(URL).json()
    principal = resolve_principal(
        sandbox.config, access_key_id=body["accessKeyId"], security_token=body["securityToken"]
    )
    bucket = body["bucket"]
    where = sandbox.config

    def can(action: str, key: str, in_bucket: str = bucket) -> bool:
        resource = object_resource(in_bucket, key, region=where.region, owner=where.owner_account_id)
        return is_allowed(principal.policies, action, resource)

    assert can("oss:PutObject", f"user/{user.pk}/avatars/me.png")
    assert can("oss:ListParts", f"user/{user.pk}/avatars/me.png")
    assert not can("oss:GetObject", f"user/{user.pk}/avatars/me.png")  # write-only (aliyun/policy.py)
    assert not can("oss:PutObject", f"user/{user.pk}0/me.png")
    assert not can("oss:PutObject", f"user/{other_user.pk}/me.png")
    assert not can("oss:PutObject", f"user/{user.pk}/me.png", in_bucket="someone-elses-bucket")
    assert not can("oss:PutObjectAcl", f"user/{user.pk}/me.png")
    bucket_arn = bucket_resource(bucket, region=where.region, owner=where.owner_account_id)
    assert not is_allowed(principal.policies, "oss:ListObjects", bucket_arn)
    assert not is_allowed(principal.policies, "oss:PutBucketAcl", bucket_arn)
    assert not can("oss:PutObject", f"user/{other_user.pk}/x:{bucket}/user/{user.pk}/y")  # colon trick


def test_the_policy_names_the_bucket_owner_from_the_role_arn_or_the_override(jwt_client, user, settings):
    body = jwt_client.post(URL).json()
    row = TokenIssuance.objects.get(access_key_id=body["accessKeyId"])
    allow = row.policy["Statement"][0]["Resource"][0]
    assert allow == f"acs:oss:cn-hangzhou:1234567890123456:{body['bucket']}/user/{user.pk}/*"

    settings.ALIYUN_OSS_OWNER_ACCOUNT_ID = "5555000011112222"  # a bucket in another account
    body = jwt_client.post(URL).json()
    row = TokenIssuance.objects.get(access_key_id=body["accessKeyId"])
    assert row.policy["Statement"][0]["Resource"][0].startswith("acs:oss:cn-hangzhou:5555000011112222:")


def test_no_known_bucket_owner_is_a_clear_502_and_audited(jwt_client, user, settings):
    settings.DEBUG = True  # only development may start without a role ARN (uploads.E004)
    settings.ALIYUN_STS_ROLE_ARN = ""
    answer = jwt_client.post(URL)
    assert answer.status_code == 502 and answer.json()["code"] == "sts_rejected"
    row = TokenIssuance.objects.get()
    assert (row.outcome, row.error_code, row.access_key_id) == ("failed", "no_bucket_owner", "")


def test_session_user_needs_csrf_token(client, user, password):
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    refused = csrf_client.post(URL)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "CSRF" in refused.json()["detail"]

    csrf_client.get("/")  # the page sets the csrftoken cookie, as the demo page does
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post(URL, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert TokenIssuance.objects.get().auth_method == "session"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer not-a-jwt"}, 401, "token_not_valid"),
        ({"HTTP_AUTHORIZATION": "Basic YWxpY2U6cHc="}, 401, "not_authenticated"),
    ],
)
def test_unauthenticated_requests_are_refused_with_json(api_client, headers, status, code):
    response = api_client.post(URL, **headers)
    assert response.status_code == status
    assert response.json() == {"detail": response.json()["detail"], "code": code}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not TokenIssuance.objects.exists()


def test_wrong_method_is_405(jwt_client):
    response = jwt_client.get(URL)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("payload", ["{not json", '{"a": ', "\x00"])
def test_malformed_json_is_400(jwt_client, payload):
    response = jwt_client.post(URL, data=payload, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    row = TokenIssuance.objects.get()  # an authenticated attempt, refused: still one audit row
    assert (row.outcome, row.error_code, row.access_key_id) == ("refused", "parse_error", "")


def test_non_object_json_is_400(jwt_client):
    response = jwt_client.post(URL, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert TokenIssuance.objects.get().error_code == "invalid"


def test_non_json_body_is_415(jwt_client):
    response = jwt_client.post(URL, data="a=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert TokenIssuance.objects.get().outcome == "refused"


def test_oversized_body_is_413_not_500(jwt_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = jwt_client.post(URL, data='{"a": "' + "x" * 4096 + '"}', content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_bad_host_header_on_the_api_is_json(api_client):
    response = api_client.post(URL, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_client_cannot_choose_the_prefix(jwt_client, user):
    response = jwt_client.post(URL, {"prefix": "user/1/", "userId": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["prefix"] == f"user/{user.pk}/"


def test_still_valid_credentials_are_reused_and_audited(jwt_client, sandbox):
    before = sandbox.config.faults.snapshot()["issued"]
    first = jwt_client.post(URL).json()
    second = jwt_client.post(URL).json()

    assert second["accessKeyId"] == first["accessKeyId"]
    assert second["expiration"] == first["expiration"]
    assert sandbox.config.faults.snapshot()["issued"] == before + 1
    assert _outcomes() == ["issued", "reused"]


def test_no_reuse_when_margin_covers_lifetime(jwt_client, settings):
    settings.ALIYUN_STS_REUSE_MARGIN_SECONDS = settings.ALIYUN_STS_DURATION_SECONDS
    first = jwt_client.post(URL).json()
    second = jwt_client.post(URL).json()
    assert first["accessKeyId"] != second["accessKeyId"]


# --- STS faults -------------------------------------------------------------------------------


def _assert_failure(response, status: int, code: str, upstream: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert "Traceback" not in response.content.decode()
    row = TokenIssuance.objects.get()
    assert row.outcome == "failed"
    assert row.error_code == upstream
    assert row.access_key_id == ""


def test_sts_throttling_is_503_with_retry_after(jwt_client, sandbox, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 2
    sandbox.config.faults.configure(throttle_every=1, throttle_retry_after_ms=50)
    response = jwt_client.post(URL)
    _assert_failure(response, 503, "sts_throttled", "Throttling.User")
    assert int(response["Retry-After"]) >= 1


def test_sts_throttling_once_is_retried_transparently(jwt_client, sandbox):
    faults = sandbox.config.faults
    if faults.snapshot()["received"] == 0:  # "every Nth call" needs N > 1 to let the retry through
        jwt_client.post(URL)
        cache.clear()
        reuse.local_credentials_clear()
    rows_before = TokenIssuance.objects.count()
    before = faults.snapshot()
    faults.configure(throttle_every=before["received"] + 1, throttle_retry_after_ms=10)  # only the next call

    response = jwt_client.post(URL)

    assert response.status_code == 200, response.content
    after = faults.snapshot()
    assert (after["received"] - before["received"], after["throttled"] - before["throttled"]) == (2, 1)
    outcomes = _outcomes()
    assert outcomes[rows_before:] == ["issued"]  # one attempt, one row, however many STS calls


def test_sts_internal_error_is_503(jwt_client, sandbox, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)
    _assert_failure(jwt_client.post(URL), 503, "sts_unavailable", "InternalError")


def test_retries_take_their_turn_in_the_sts_budget_like_first_calls(jwt_client, sandbox, settings):
    """Alibaba's quota counts every AssumeRole request, retries included: with a budget of 1 call a
    second and STS failing every call, each of the 3 attempts waits a second after the one before
    returned (the SDK's own retries, uncounted, made all 3 within about 0.3 s)."""
    settings.ALIYUN_STS_MAX_ATTEMPTS = 3
    settings.ALIYUN_STS_MAX_CALLS_PER_SECOND = 1
    settings.ALIYUN_STS_QUEUE_SECONDS = 5
    sts_budget.sts_budget_clear()
    faults = sandbox.config.faults
    faults.configure(fail_every=1)
    before = faults.snapshot()["received"]
    started = time.monotonic()

    response = jwt_client.post(URL)

    elapsed = time.monotonic() - started
    _assert_failure(response, 503, "sts_unavailable", "InternalError")
    assert faults.snapshot()["received"] - before == 3  # every attempt was made…
    assert elapsed >= 2.0  # …each a second after the one before


def test_a_refused_configuration_is_not_retried(jwt_client, sandbox, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 3
    settings.ALIYUN_STS_ROLE_ARN = "acs:ram::1234567890123456:role/no-such-role"
    before = sandbox.config.faults.snapshot()["received"]

    response = jwt_client.post(URL)

    assert response.status_code == 502 and response.json()["code"] == "sts_rejected"
    assert sandbox.config.faults.snapshot()["received"] - before == 1


def test_sts_unreachable_is_503(jwt_client, settings):
    settings.ALIYUN_STS_ENDPOINT = "127.0.0.1:9"  # discard port: nothing listens
    response = jwt_client.post(URL)
    _assert_failure(response, 503, "sts_unavailable", "sts_unavailable")
    assert response["Retry-After"]


def _issue_credentials_due_for_refresh(jwt_client, settings) -> dict:
    """Credentials with 900 s left, then a reuse margin of 1000 s: they are due for a refresh."""
    settings.ALIYUN_STS_DURATION_SECONDS, settings.ALIYUN_STS_REUSE_MARGIN_SECONDS = 900, 600
    first = jwt_client.post(URL)
    assert first.status_code == 200, first.content
    settings.ALIYUN_STS_DURATION_SECONDS = 3600
    settings.ALIYUN_STS_REUSE_MARGIN_SECONDS = 1000
    return first.json()


def test_credentials_due_for_refresh_are_handed_out_at_once_and_replaced_in_the_background(
    jwt_client, sandbox, settings
):
    first = _issue_credentials_due_for_refresh(jwt_client, settings)
    sandbox.config.faults.configure(latency_ms=1500)  # a slow STS: nobody waits for it

    started = time.monotonic()
    second = jwt_client.post(URL)
    waited = time.monotonic() - started
    reuse.refreshes_wait()
    third = jwt_client.post(URL).json()

    assert second.status_code == 200 and waited < 1.0, waited
    assert second.json()["accessKeyId"] == first["accessKeyId"]
    assert third["accessKeyId"] != first["accessKeyId"]  # the background refresh replaced them
    assert _outcomes() == ["issued", "reused", "reused"]


def test_sts_failing_hands_out_still_valid_credentials(jwt_client, sandbox, settings):
    first = _issue_credentials_due_for_refresh(jwt_client, settings)
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)

    during = jwt_client.post(URL)  # asks for the refresh, which fails
    reuse.refreshes_wait()
    after = jwt_client.post(URL)  # STS failed: the same credentials, the failure in the audit row

    for response in (during, after):
        assert response.status_code == 200, response.content
        assert response.json()["accessKeyId"] == first["accessKeyId"]
        assert response.json()["securityToken"] == first["securityToken"]
    rows = list(TokenIssuance.objects.order_by("id").values_list("outcome", "error_code", "access_key_id"))
    assert rows == [
        ("issued", "", first["accessKeyId"]),
        ("reused", "", first["accessKeyId"]),
        ("reused", "InternalError", first["accessKeyId"]),
    ]


def test_sts_failing_again_moments_later_is_not_called_again(jwt_client, sandbox, settings):
    """One failed refresh makes every request hold back from STS for the backoff, not 1 s."""
    first = _issue_credentials_due_for_refresh(jwt_client, settings)
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(throttle_every=1, throttle_retry_after_ms=10)
    assert jwt_client.post(URL).status_code == 200
    reuse.refreshes_wait()
    received = sandbox.config.faults.snapshot()["received"]

    again = [jwt_client.post(URL) for _ in range(3)]
    reuse.refreshes_wait()

    assert sandbox.config.faults.snapshot()["received"] == received
    assert {response.json()["accessKeyId"] for response in again} == {first["accessKeyId"]}
    rows = list(TokenIssuance.objects.order_by("id").values_list("outcome", "error_code"))
    assert rows[2:] == [("reused", "Throttling.User")] * 3


def test_a_user_with_nothing_usable_gets_the_backoff_without_a_call(jwt_client, sandbox, settings, user):
    """While STS backs off, a user who holds nothing gets 503 with the backoff's time left, at once."""
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)
    assert jwt_client.post(URL).status_code == 503
    received = sandbox.config.faults.snapshot()["received"]

    response = jwt_client.post(URL)

    assert response.status_code == 503 and response.json()["code"] == "sts_unavailable"
    assert 1 <= int(response["Retry-After"]) <= 5
    assert sandbox.config.faults.snapshot()["received"] == received
    assert _outcomes() == ["failed", "failed"]


def test_the_backoff_grows_with_failures_in_a_row_and_ends_with_a_success(sandbox, settings):
    from aliyun.sts import StsError

    def failure() -> StsError:
        return StsError("sts_throttled", "slow down", upstream_code="Throttling.User", retry_after=1)

    holds = []
    for _ in range(7):
        reuse._backoff_record(failure())
        reuse._backoff_record(failure())  # another caller's, during the backoff: counts once
        holds.append(reuse._backoff_current().retry_after)
        state = reuse._local_backoff[reuse._BACKOFF_KEY]
        state["until"] = time.time() - 0.01  # as when the backoff has run out
        reuse._shared_set(reuse._BACKOFF_KEY, state, 300)
    assert holds == [1, 2, 4, 8, 16, 30, 30]
    reuse._backoff_clear()
    assert reuse._backoff_current() is None
    reuse._backoff_record(failure())
    assert reuse._backoff_current().retry_after == 1


def test_sts_refusing_the_configuration_is_never_bridged(jwt_client, sandbox, settings):
    """A revoked AssumeRole right (or a wrong role) must stop hand-outs at once, and show as failed."""
    settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS = 0  # no refresh ahead: the user waits for the call
    _issue_credentials_due_for_refresh(jwt_client, settings)
    settings.ALIYUN_STS_ROLE_ARN = "acs:ram::1000000000000000:role/no-such-role"

    response = jwt_client.post(URL)

    assert response.status_code == 502, response.content
    assert response.json()["code"] == "sts_rejected"
    assert _outcomes() == ["issued", "failed"]


def test_credentials_at_the_floor_make_the_user_wait_for_new_ones(jwt_client, sandbox, settings):
    first = _issue_credentials_due_for_refresh(jwt_client, settings)
    settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS = 900  # the credentials have just under 900 s left

    second = jwt_client.post(URL)

    assert second.status_code == 200
    assert second.json()["accessKeyId"] != first["accessKeyId"]
    assert _outcomes() == ["issued", "issued"]


@pytest.mark.parametrize(
    "stale_if_error_seconds",
    [0, 901],  # the fallback switched off; credentials with less left than the floor
)
def test_sts_failing_without_usable_credentials_is_503(jwt_client, sandbox, settings, stale_if_error_seconds):
    settings.ALIYUN_STS_STALE_IF_ERROR_SECONDS = stale_if_error_seconds
    _issue_credentials_due_for_refresh(jwt_client, settings)
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)

    response = jwt_client.post(URL)

    assert response.status_code == 503, response.content
    assert response.json()["code"] == "sts_unavailable"
    assert _outcomes() == ["issued", "failed"]


def test_sts_timeout_is_503_within_the_configured_time(jwt_client, sandbox, settings):
    import time

    settings.ALIYUN_STS_READ_TIMEOUT_MS = 300
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(latency_ms=1500)
    issued_before = sandbox.config.faults.snapshot()["issued"]
    started = time.monotonic()
    response = jwt_client.post(URL)
    assert time.monotonic() - started < 1.4
    _assert_failure(response, 503, "sts_unavailable", "sts_unavailable")
    # The sandbox still answers the call we gave up on; let it finish here, not in a later test
    # that counts AssumeRole calls.
    while sandbox.config.faults.snapshot()["issued"] == issued_before and time.monotonic() - started < 5:
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("setting", "value", "upstream"),
    [
        ("ALIYUN_STS_ROLE_ARN", "acs:ram::1234567890123456:role/no-such-role", "EntityNotExist.Role"),
        ("ALIYUN_ACCESS_KEY_SECRET", "wrong-secret", "SignatureDoesNotMatch"),
        ("ALIYUN_ACCESS_KEY_ID", "unknown-key", "InvalidAccessKeyId.NotFound"),
        ("ALIYUN_STS_DURATION_SECONDS", 100_000, "InvalidParameter.DurationSeconds"),
    ],
)
def test_sts_refusing_our_configuration_is_502(jwt_client, settings, setting, value, upstream):
    setattr(settings, setting, value)
    _assert_failure(jwt_client.post(URL), 502, "sts_rejected", upstream)


# --- Secrets ---------------------------------------------------------------------------------


def test_secrets_reach_no_table_and_no_log(jwt_client, user, password, caplog, capsys, sandbox, settings):
    caplog.set_level(logging.DEBUG)
    body = jwt_client.post(URL).json()
    jwt_client.post(URL)  # a reuse
    settings.ALIYUN_STS_ROLE_ARN = "acs:ram::1234567890123456:role/no-such-role"
    jwt_client.post(URL)  # a failure (new cache key: the role changed)

    call_command("dumpdata", "uploads", "accounts", "token_blacklist", "sessions", stdout=(dump := _Buffer()))
    secrets = [body["accessKeySecret"], body["securityToken"], password, settings.ALIYUN_ACCESS_KEY_SECRET]
    access_token = jwt_client._credentials["HTTP_AUTHORIZATION"].split()[1]
    logs = caplog.text + capsys.readouterr().err
    for secret in [*secrets, access_token]:
        assert secret not in dump.value
        assert secret not in logs
    assert TokenIssuance.objects.count() == 3


class _Buffer:
    def __init__(self) -> None:
        self.value = ""

    def write(self, text: str) -> None:
        self.value += text

    def flush(self) -> None:
        pass
