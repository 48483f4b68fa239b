"""Request ids: always present; taken from the client only behind a configured proxy."""

import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st


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


SAFE = st.text(alphabet="abcXYZ019._-", min_size=8, max_size=64)


@hypothesis_settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    incoming=st.one_of(
        SAFE, SAFE.map(lambda s: s + "\n"), SAFE.map(lambda s: "\r\n" + s), st.text(max_size=80)
    )
)
def test_a_proxy_request_id_is_echoed_only_when_it_is_wholly_well_formed(client, settings, incoming):
    """Never a 500, never a control character echoed: a trailing newline is not well formed."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response.status_code == 200
    echoed = response["X-Request-ID"]
    if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", incoming):
        assert echoed == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), echoed
