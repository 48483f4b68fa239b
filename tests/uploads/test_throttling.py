"""Per-user throttling of credential issuance: 429 JSON, Retry-After, and an audit row."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db
URL = "/api/uploads/sts-token/"


def test_issuance_is_rate_limited_per_user_and_refusals_are_audited(
    jwt_client, monkeypatch, django_user_model
):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "2/min", "login": "100/min"})

    statuses = [jwt_client.post(URL).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    refused = jwt_client.post(URL)
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    outcomes = list(TokenIssuance.objects.order_by("id").values_list("outcome", "error_code"))
    assert outcomes == [("issued", ""), ("reused", ""), ("refused", "throttled"), ("refused", "throttled")]


def test_throttle_is_per_user_not_global(jwt_client, api_client, other_user, password, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"sts_token": "1/min", "login": "100/min"})
    assert jwt_client.post(URL).status_code == 200
    assert jwt_client.post(URL).status_code == 429

    from rest_framework.test import APIClient

    other = APIClient()
    token = other.post("/api/auth/token/", {"username": "bob", "password": password}, format="json").json()[
        "access"
    ]
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert other.post(URL).status_code == 200
