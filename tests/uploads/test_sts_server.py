"""The stock mobile format: GET /api/uploads/sts-server/ (JWT) and credential URLs (no headers).

What Alibaba's iOS and Android ``OSSAuthCredentialProvider`` read: ``StatusCode`` (a string, "200")
and ``AccessKeyId``, ``AccessKeySecret``, ``SecurityToken``, ``Expiration``; on failure a StatusCode
other than "200" with ``ErrorCode`` and ``ErrorMessage``. The credentials go to the real oss2 SDK,
which uploads to the sandbox.
"""

import re
from datetime import timedelta

import oss2
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from uploads.models import CredentialUrl, TokenIssuance

pytestmark = pytest.mark.django_db

JWT_URL = "/api/uploads/sts-server/"
CREATE_URL = "/api/uploads/sts-server-url/"
STOCK_KEYS = ["StatusCode", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"]
ERROR_KEYS = ["StatusCode", "ErrorCode", "ErrorMessage"]
EXPIRATION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # what both providers parse


def _oss2_bucket(body: dict, settings) -> oss2.Bucket:
    auth = oss2.StsAuth(body["AccessKeyId"], body["AccessKeySecret"], body["SecurityToken"])
    return oss2.Bucket(auth, settings.ALIYUN_OSS_ENDPOINT, settings.ALIYUN_OSS_BUCKET, connect_timeout=5)


def _assert_stock_credentials(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == STOCK_KEYS
    assert body["StatusCode"] == "200"
    assert body["AccessKeyId"].startswith("STS.")
    assert EXPIRATION.match(body["Expiration"])
    assert response["Cache-Control"] == "no-store"
    return body


def _new_credential_url(client: APIClient) -> str:
    response = client.post(CREATE_URL)
    assert response.status_code == 201, response.content
    assert list(response.json()) == ["url", "expiresAt"]
    assert response["Cache-Control"] == "no-store"
    return response.json()["url"]


def _get_without_headers(url: str):
    """What a stock provider does: a plain GET of the URL, no cookie, no Authorization header."""
    return APIClient().get(url)


def _assert_stock_error(response, status_code: str, error_code: str) -> None:
    assert response.status_code == 200  # the stock Android provider reads the body only of a 2xx
    body = response.json()
    assert list(body) == ERROR_KEYS
    assert (body["StatusCode"], body["ErrorCode"]) == (status_code, error_code)
    assert body["ErrorMessage"]
    assert "WWW-Authenticate" not in response


# --- GET /api/uploads/sts-server/ with a JWT ---------------------------------------------------------


def test_jwt_get_answers_the_stock_shape_that_oss2_uploads_with(jwt_client, user, settings, server_oss):
    body = _assert_stock_credentials(jwt_client.get(JWT_URL))

    bucket = _oss2_bucket(body, settings)
    bucket.put_object(f"user/{user.pk}/from-stock-format.txt", b"hello")
    assert server_oss.get_object(f"user/{user.pk}/from-stock-format.txt").read() == b"hello"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object(f"user/{user.pk + 1}/not-mine.txt", b"nope")

    row = TokenIssuance.objects.get()
    assert (row.outcome, row.auth_method, row.access_key_id) == ("issued", "jwt", body["AccessKeyId"])


def test_jwt_get_reuses_credentials_like_sts_token(jwt_client):
    first = jwt_client.post("/api/uploads/sts-token/").json()
    second = _assert_stock_credentials(jwt_client.get(JWT_URL))
    assert second["AccessKeyId"] == first["accessKeyId"]
    assert list(TokenIssuance.objects.order_by("id").values_list("outcome", flat=True)) == [
        "issued",
        "reused",
    ]


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "not_authenticated"), ({"HTTP_AUTHORIZATION": "Bearer not-a-jwt"}, "token_not_valid")],
)
def test_jwt_get_errors_keep_their_http_status_and_use_the_stock_shape(api_client, headers, code):
    response = api_client.get(JWT_URL, **headers)
    assert response.status_code == 401  # HTTP clients' refresh-on-401 interceptors see it
    assert response.json() == {
        "StatusCode": "401",
        "ErrorCode": code,
        "ErrorMessage": response.json()["ErrorMessage"],
    }
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not TokenIssuance.objects.exists()


def test_jwt_get_refuses_a_session_cookie(client, user):
    client.force_login(user)
    assert client.get(JWT_URL).status_code == 401


def test_jwt_endpoint_answers_only_get(jwt_client):
    response = jwt_client.post(JWT_URL)
    assert response.status_code == 405
    assert response.json()["ErrorCode"] == "method_not_allowed"


def test_sts_failure_is_the_stock_error_shape(jwt_client, sandbox, settings):
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)
    response = jwt_client.get(JWT_URL)
    assert response.status_code == 503
    assert response.json()["StatusCode"] == "503"
    assert response.json()["ErrorCode"] == "sts_unavailable"
    assert TokenIssuance.objects.get().outcome == "failed"


# --- Credential URLs ------------------------------------------------------------------------------------


def test_headerless_get_of_a_credential_url_uploads_with_oss2(jwt_client, user, settings, server_oss):
    url = _new_credential_url(jwt_client)
    assert url.startswith("http://testserver/api/uploads/sts-server/osscu_")

    body = _assert_stock_credentials(_get_without_headers(url))
    bucket = _oss2_bucket(body, settings)
    bucket.put_object(f"user/{user.pk}/via-credential-url.txt", b"hi")
    assert server_oss.head_object(f"user/{user.pk}/via-credential-url.txt").content_length == 2

    row = TokenIssuance.objects.get()
    assert (row.outcome, row.auth_method, row.user, row.prefix) == (
        "issued",
        "credential_url",
        user,
        f"user/{user.pk}/",
    )


def test_a_credential_url_answers_for_its_own_user_only(
    jwt_client, api_client, user, other_user, password, settings
):
    mine = _new_credential_url(jwt_client)
    theirs_client = APIClient()
    token = theirs_client.post(
        "/api/auth/token/", {"username": other_user.username, "password": password}, format="json"
    ).json()["access"]
    theirs_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    theirs = _new_credential_url(theirs_client)

    bucket = _oss2_bucket(_assert_stock_credentials(_get_without_headers(mine)), settings)
    bucket.put_object(f"user/{user.pk}/a.txt", b"a")
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object(f"user/{other_user.pk}/a.txt", b"a")
    other_bucket = _oss2_bucket(_assert_stock_credentials(_get_without_headers(theirs)), settings)
    other_bucket.put_object(f"user/{other_user.pk}/b.txt", b"b")
    assert list(TokenIssuance.objects.order_by("id").values_list("user__username", flat=True)) == [
        "alice",
        "bob",
    ]


def test_only_a_hash_of_the_secret_is_stored(jwt_client):
    url = _new_credential_url(jwt_client)
    secret = url.rstrip("/").rsplit("/", 1)[1]
    row = CredentialUrl.objects.values().get()
    assert secret not in repr(row)
    assert row["auth_method"] == "jwt"


def test_session_user_creates_a_credential_url_with_csrf(user):
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    refused = csrf_client.post(CREATE_URL)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"

    csrf_client.get("/")
    response = csrf_client.post(CREATE_URL, HTTP_X_CSRFTOKEN=csrf_client.cookies["csrftoken"].value)
    assert response.status_code == 201, response.content
    assert CredentialUrl.objects.get().auth_method == "session"


def test_creating_needs_a_sign_in(api_client):
    response = api_client.post(CREATE_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not CredentialUrl.objects.exists()


def test_jwt_logout_ends_the_credential_url(jwt_client, api_client, user, password):
    url = _new_credential_url(jwt_client)
    _assert_stock_credentials(_get_without_headers(url))
    refresh = api_client.post(
        "/api/auth/token/", {"username": user.username, "password": password}, format="json"
    ).json()["refresh"]

    assert APIClient().post("/api/auth/logout/", {"refresh": refresh}, format="json").status_code == 200

    _assert_stock_error(_get_without_headers(url), "401", "credential_url_revoked")
    rows = list(TokenIssuance.objects.order_by("id").values_list("outcome", "error_code"))
    assert rows == [("issued", ""), ("refused", "credential_url_revoked")]  # an ended URL's use is audited


def test_session_logout_ends_the_credential_url(user):
    browser = APIClient()
    browser.force_login(user)
    url = _new_credential_url(browser)
    assert browser.post("/accounts/logout/").status_code == 302
    _assert_stock_error(_get_without_headers(url), "401", "credential_url_revoked")


def test_password_change_ends_the_credential_url(jwt_client, user):
    url = _new_credential_url(jwt_client)
    user.set_password("a brand new password 123")
    user.save()
    _assert_stock_error(_get_without_headers(url), "401", "credential_url_revoked")


def test_deactivation_ends_the_credential_url(jwt_client, user):
    url = _new_credential_url(jwt_client)
    user.is_active = False
    user.save()
    _assert_stock_error(_get_without_headers(url), "401", "credential_url_revoked")


def test_sign_out_everywhere_ends_the_credential_url(jwt_client, user):
    from accounts.services import user_tokens_revoke

    url = _new_credential_url(jwt_client)
    user_tokens_revoke(user=user)
    _assert_stock_error(_get_without_headers(url), "401", "credential_url_revoked")


def test_a_credential_url_made_after_a_password_change_works(jwt_client, api_client, user, password):
    user.set_password("a brand new password 123")
    user.save()
    token = api_client.post(
        "/api/auth/token/", {"username": user.username, "password": "a brand new password 123"}, format="json"
    ).json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_stock_credentials(_get_without_headers(_new_credential_url(api_client)))


def test_an_expired_credential_url_says_so(jwt_client, settings):
    assert settings.CREDENTIAL_URL_LIFETIME_MINUTES == 24 * 60
    url = _new_credential_url(jwt_client)
    CredentialUrl.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _assert_stock_error(_get_without_headers(url), "401", "credential_url_expired")


def test_the_lifetime_is_the_setting(jwt_client, settings):
    settings.CREDENTIAL_URL_LIFETIME_MINUTES = 5
    before = timezone.now()
    _new_credential_url(jwt_client)
    row = CredentialUrl.objects.get()
    assert before + timedelta(minutes=5) <= row.expires_at <= timezone.now() + timedelta(minutes=5)


@pytest.mark.parametrize("secret", ["osscu_" + "A" * 43, "not-a-credential-url", "osscu_"])
def test_an_unknown_secret_is_refused(secret):
    _assert_stock_error(
        _get_without_headers(f"/api/uploads/sts-server/{secret}/"), "401", "credential_url_invalid"
    )


def test_a_new_url_clears_the_users_expired_ones(jwt_client):
    _new_credential_url(jwt_client)
    CredentialUrl.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _new_credential_url(jwt_client)
    assert CredentialUrl.objects.count() == 1


def test_credential_url_has_its_own_rate_limit_and_refusals_are_audited(jwt_client, monkeypatch):
    rates = {"sts_token": "2/min", "credential_url": "1/min", "login": "100/min"}
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    url = _new_credential_url(jwt_client)  # takes one of sts-token's two, none of the URL's one
    _assert_stock_credentials(_get_without_headers(url))
    response = _get_without_headers(url)
    _assert_stock_error(response, "429", "throttled")
    assert int(response["Retry-After"]) > 0
    rows = list(TokenIssuance.objects.order_by("id").values_list("outcome", "auth_method", "error_code"))
    assert rows == [("issued", "credential_url", ""), ("refused", "credential_url", "throttled")]


def test_sts_failure_through_a_credential_url(jwt_client, sandbox, settings):
    url = _new_credential_url(jwt_client)
    settings.ALIYUN_STS_MAX_ATTEMPTS = 1
    sandbox.config.faults.configure(fail_every=1)
    _assert_stock_error(_get_without_headers(url), "503", "sts_unavailable")


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch", "trace"])
def test_a_credential_url_answers_only_get(jwt_client, method):
    url = _new_credential_url(jwt_client)
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 405  # a real 405: no stock provider sends anything but GET
    assert response.json()["ErrorCode"] == "method_not_allowed"
    assert not TokenIssuance.objects.exists()
