"""Liveness and readiness probes: what a load balancer sees."""

import pytest
from django.db import OperationalError
from django.test import Client

from core import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client()


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert response["X-Request-ID"]


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405


def test_readyz_reports_every_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "settings": "ok"},
    }


def test_readyz_is_503_when_the_settings_are_broken(client, settings):
    settings.ALIYUN_OSS_BUCKET = "Not_A_Bucket"
    settings.ALIYUN_ACCESS_KEY_SECRET = ""
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["settings"] == "fail: uploads.E002, uploads.E041"  # a key id without its secret
    assert body["checks"]["database"] == "ok"
    assert "Not_A_Bucket" not in response.content.decode()


def test_readyz_is_503_when_the_cache_loses_writes(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == "fail: value written was not read back"


def test_readyz_is_503_when_the_database_is_down_and_shows_no_message(client, monkeypatch):
    def unreachable() -> None:
        raise OperationalError("connection to server at 10.0.0.5 failed: password authentication")

    monkeypatch.setitem(health.READINESS_CHECKS, "database", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "fail: OperationalError"
    assert "10.0.0.5" not in response.content.decode()


def test_probes_are_exempt_from_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/me/").status_code == 301


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_an_orchestrator_whatever_the_host_and_scheme(client, settings, path):
    """kubelet probes over plain http with the pod address as Host: no 400, no 301 that checks nothing."""
    settings.ALLOWED_HOSTS = ["uploads.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(path, HTTP_HOST="10.42.0.7:8000")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["X-Request-ID"]


def test_other_paths_still_check_the_host_and_redirect(client, settings):
    settings.ALLOWED_HOSTS = ["uploads.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/me/", HTTP_HOST="10.42.0.7:8000").status_code == 400
    assert client.get("/api/me/", HTTP_HOST="uploads.example.com").status_code == 301
    assert client.get("/healthz/", HTTP_HOST="10.42.0.7:8000").status_code == 400
