"""Request ids: always present; taken from the client only behind a configured proxy."""

import pytest


def test_every_response_has_a_request_id(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_client_cannot_choose_its_request_id_without_a_proxy(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="chosen-by-client-123")
    assert response["X-Request-ID"] != "chosen-by-client-123"


@pytest.mark.parametrize(("incoming", "kept"), [("lb-request-0001", True), ("bad id with spaces", False)])
def test_proxy_request_id_is_kept_when_well_formed(client, settings, incoming, kept):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert (response["X-Request-ID"] == incoming) is kept
