"""Which client headers reach the audit rows, and from whom (README, "Trusted headers"): one test per
setting, through the real API and the audit row it writes."""

import os
import subprocess
import sys
from ipaddress import ip_address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from uploads.models import TokenIssuance

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
URL = "/api/uploads/sts-token/"
PEER = "198.51.100.1"  # the TCP peer: the client itself, or our proxy


def issue(jwt_client, **headers) -> tuple[TokenIssuance, str]:
    """One sts-token call from PEER with ``headers``: its audit row and the response's request id."""
    response = jwt_client.post(URL, REMOTE_ADDR=PEER, **headers)
    assert response.status_code == 200, response.content
    return TokenIssuance.objects.latest("created_at"), response["X-Request-ID"]


@pytest.fixture
def proxies(settings):
    def set_proxies(count: int) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}

    return set_proxies


def test_no_proxy_ignores_forwarded_for_and_a_client_request_id(jwt_client, proxies):
    proxies(0)
    row, echoed = issue(
        jwt_client, HTTP_X_FORWARDED_FOR="203.0.113.9", HTTP_X_REQUEST_ID="chosen-by-client-1"
    )
    assert row.client_ip == PEER
    assert row.request_id == echoed != "chosen-by-client-1"


def test_one_proxy_takes_the_last_hops_entry_and_its_request_id(jwt_client, proxies):
    proxies(1)
    # The client wrote "6.6.6.6"; our proxy appended the address it saw.
    row, echoed = issue(
        jwt_client, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", HTTP_X_REQUEST_ID="lb-request-0001"
    )
    assert row.client_ip == "203.0.113.9"
    assert row.request_id == echoed == "lb-request-0001"


def test_two_proxies_take_the_second_entry_from_the_right(jwt_client, proxies):
    proxies(2)
    row, _ = issue(jwt_client, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.2")
    assert row.client_ip == "203.0.113.9"


def test_the_request_id_header_name_is_configurable(jwt_client, proxies, settings):
    proxies(1)
    settings.REQUEST_ID_HEADER = "X-Correlation-ID"
    row, echoed = issue(
        jwt_client, HTTP_X_CORRELATION_ID="corr-0000-1111", HTTP_X_REQUEST_ID="ignored-0000-1111"
    )
    assert row.request_id == echoed == "corr-0000-1111"


def test_a_proxy_that_passes_client_ids_through_can_be_distrusted(jwt_client, proxies, settings):
    proxies(1)
    settings.REQUEST_ID_TRUSTED = False
    row, echoed = issue(jwt_client, HTTP_X_REQUEST_ID="chosen-by-client-2")
    assert row.request_id == echoed != "chosen-by-client-2"


def test_trust_can_be_given_without_a_counted_proxy(jwt_client, proxies, settings):
    proxies(0)
    settings.REQUEST_ID_TRUSTED = True
    row, echoed = issue(jwt_client, HTTP_X_REQUEST_ID="sidecar-id-0001")
    assert row.request_id == echoed == "sidecar-id-0001"
    assert row.client_ip == PEER  # trusting the id says nothing about X-Forwarded-For


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    forwarded=st.one_of(
        st.text(max_size=120),
        st.lists(st.ip_addresses().map(str), min_size=1, max_size=4).map(", ".join),
    ),
    request_id=st.text(max_size=80),
)
def test_any_forwarded_for_and_request_id_behind_a_proxy_is_never_a_500(
    jwt_client, proxies, forwarded, request_id
):
    """A malformed last entry is recorded as no address; a malformed id is replaced."""
    proxies(1)
    response = jwt_client.post(
        URL, REMOTE_ADDR=PEER, HTTP_X_FORWARDED_FOR=forwarded, HTTP_X_REQUEST_ID=request_id
    )
    assert response.status_code == 200, response.content
    row = TokenIssuance.objects.latest("created_at")
    assert row.request_id == response["X-Request-ID"]
    expected = last_hop(forwarded)
    # The same address, however the column spells it (Django keeps ::ffff:0.0.0.0 for ::ffff:0:0).
    assert (row.client_ip and ip_address(row.client_ip)) == (expected and ip_address(expected))


def last_hop(forwarded: str) -> str | None:
    """What one proxy's entry says: the last of the list, if it is an address at all."""
    try:
        return str(ip_address(forwarded.split(",")[-1].strip()))
    except ValueError:
        return None


def settings_of(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALIYUN_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.REQUEST_ID_HEADER, settings.REQUEST_ID_TRUSTED)",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "printed"),
    [
        ({}, "X-Request-ID None"),
        (
            {"DJANGO_REQUEST_ID_HEADER": "X-Correlation-ID", "DJANGO_TRUST_REQUEST_ID": "0"},
            "X-Correlation-ID False",
        ),
        ({"DJANGO_TRUST_REQUEST_ID": "1"}, "X-Request-ID True"),
    ],
)
def test_the_environment_sets_them(env, printed):
    result = settings_of(**env)
    assert result.returncode == 0, result.stderr
    assert printed in result.stdout


@pytest.mark.parametrize(
    "env", [{"DJANGO_REQUEST_ID_HEADER": "X Request: ID"}, {"DJANGO_TRUST_REQUEST_ID": "maybe"}]
)
def test_a_bad_value_stops_start_up_naming_the_variable(env):
    result = settings_of(**env)
    assert result.returncode != 0
    assert next(iter(env)) in result.stderr and "Traceback" not in result.stderr
