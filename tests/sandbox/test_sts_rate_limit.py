"""The sandbox STS enforces a per-account AssumeRole rate, as Alibaba's quota does, and counts it.

Driven by the real STS SDK: past the budget a call raises `ThrottlingException` (`Throttling.User`,
HTTP 400, `x-acs-retry-after`), the same answer as the injected throttling fault; the stats show
the most calls admitted in any one second, so a benchmark can prove a client stayed under it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from alibabacloud_sts20150401.client import Client
from alibabacloud_sts20150401.models import AssumeRoleRequest, AssumeRoleWithOIDCRequest
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.sts_meter import StsCallMeter

AK_ID = "sandbox-ram-user-rate"
AK_SECRET = "sandbox-ram-user-secret-rate"
ROLE_ARN = "acs:ram::1234567890123456:role/oss-uploader"


@pytest.fixture(scope="module")
def rated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    config = SandboxConfig(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        role_arn=ROLE_ARN,
        bucket="rate-bucket",
        data_dir=tmp_path_factory.mktemp("rate"),
    )
    with Sandbox(config, project_oidc_token=False) as running:
        yield running


@pytest.fixture
def sandbox(rated: Sandbox) -> Iterator[Sandbox]:
    """The module's sandbox with the budget off and the counts zeroed before and after."""
    faults = rated.config.faults
    faults.configure(sts_max_calls_per_second=0, sts_rate_window="sliding", throttle_retry_after_ms=1000)
    faults.meter.reset()
    yield rated
    faults.configure(sts_max_calls_per_second=0, sts_rate_window="sliding", throttle_retry_after_ms=1000)


def client(sandbox: Sandbox) -> Client:
    config = Config(
        access_key_id=AK_ID,
        access_key_secret=AK_SECRET,
        endpoint=sandbox.sts_endpoint,
        protocol="http",
        connect_timeout=2000,
        read_timeout=5000,
    )
    return Client(config)


def assume(sandbox: Sandbox, n: int) -> str:
    try:
        client(sandbox).assume_role(AssumeRoleRequest(role_arn=ROLE_ARN, role_session_name=f"user-{n}"))
    except ThrottlingException as exc:
        assert (exc.code, exc.status_code, exc.retry_after) == ("Throttling.User", 400, 1000)
        return "throttled"
    return "ok"


def post_faults(sandbox: Sandbox, body: object) -> requests.Response:
    return requests.post(f"http://{sandbox.sts_endpoint}/__sandbox__/faults", json=body, timeout=5)


def stats(sandbox: Sandbox) -> dict:
    return requests.get(f"http://{sandbox.sts_endpoint}/__sandbox__/stats", timeout=5).json()


def test_past_the_budget_calls_get_throttling_and_the_stats_prove_the_rate(sandbox):
    assert post_faults(sandbox, {"sts_max_calls_per_second": 3}).json()["sts_max_calls_per_second"] == 3
    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(lambda n: assume(sandbox, n), range(12)))
    figures = stats(sandbox)
    # Twelve calls within about a second: at most three per second get through, the rest are refused.
    assert outcomes.count("ok") == figures["assume_role_calls"] >= 3
    assert outcomes.count("throttled") == figures["rate_throttled"] >= 1
    assert figures["max_calls_in_one_second"] == 3
    assert figures["max_calls_in_a_calendar_second"] <= 3
    assert figures["throttled"] >= figures["rate_throttled"]
    assert sum(row[1] for row in figures["calls_per_second"]) == outcomes.count("ok")
    assert figures["calls_by_caller"]["long-term"] == outcomes.count("ok")


def test_the_budget_frees_up_after_a_second(sandbox):
    sandbox.config.faults.configure(sts_max_calls_per_second=1)
    assert assume(sandbox, 1) == "ok"
    assert assume(sandbox, 2) == "throttled"
    time.sleep(1.05)
    assert assume(sandbox, 3) == "ok"


def test_without_retry_after_the_rate_answer_is_a_plain_client_exception(sandbox):
    sandbox.config.faults.configure(sts_max_calls_per_second=1, throttle_retry_after_ms=0)
    assume_role = client(sandbox).assume_role
    assume_role(AssumeRoleRequest(role_arn=ROLE_ARN, role_session_name="first"))
    with pytest.raises(ClientException) as excinfo:
        assume_role(AssumeRoleRequest(role_arn=ROLE_ARN, role_session_name="second"))
    assert not isinstance(excinfo.value, ThrottlingException)
    assert (excinfo.value.code, excinfo.value.status_code) == ("Throttling.User", 400)


def test_assume_role_with_oidc_counts_against_the_same_budget(sandbox):
    config = sandbox.config
    config.faults.configure(sts_max_calls_per_second=1)
    assert assume(sandbox, 1) == "ok"
    oidc = Client(Config(endpoint=sandbox.sts_endpoint, protocol="http"))
    request = AssumeRoleWithOIDCRequest(
        role_arn=config.server_role_arn,
        oidcprovider_arn=config.oidc_provider_arn,
        oidctoken=config.oidc.mint(),
        role_session_name="server",
    )
    with pytest.raises(ThrottlingException):
        oidc.assume_role_with_oidc(request)
    assert stats(sandbox)["rate_throttled"] == 1


def test_zero_means_unlimited_and_other_calls_do_not_count(sandbox):
    assert post_faults(sandbox, {"sts_max_calls_per_second": 0}).status_code == 200
    assert [assume(sandbox, n) for n in range(5)] == ["ok"] * 5
    client(sandbox).get_caller_identity()
    figures = stats(sandbox)
    assert figures["assume_role_calls"] == 5 and figures["rate_throttled"] == 0


def test_the_fixed_window_counts_per_wall_clock_second():
    meter = StsCallMeter()
    meter.configure(max_calls_per_second=2, window="fixed")
    # Wait for the start of a second, so the three calls below fall in the same one.
    time.sleep(1 - time.time() % 1 + 0.01)
    assert [meter.admit("sts") for _ in range(3)] == [True, True, False]
    assert meter.snapshot()["max_calls_in_a_calendar_second"] == 2


def test_reset_stats_zeroes_the_counts_but_keeps_the_limit(sandbox):
    sandbox.config.faults.configure(sts_max_calls_per_second=1)
    assume(sandbox, 1), assume(sandbox, 2)
    figures = post_faults(sandbox, {"reset_stats": True}).json()
    assert (
        figures["assume_role_calls"] == figures["rate_throttled"] == figures["max_calls_in_one_second"] == 0
    )
    assert figures["sts_max_calls_per_second"] == 1


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"sts_max_calls_per_second": -1},
        {"sts_max_calls_per_second": 1.5},
        {"sts_max_calls_per_second": True},
        {"sts_rate_window": "weekly"},
        {"nope": 1},
        {"reset_stats": "yes"},
    ],
)
def test_bad_switches_are_refused_and_change_nothing(sandbox, body):
    response = post_faults(sandbox, body)
    assert response.status_code == 400 and response.json()["Code"] == "InvalidParameter"
    assert stats(sandbox)["sts_max_calls_per_second"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.dictionaries(
        st.sampled_from(["sts_max_calls_per_second", "latency_ms", "throttle_every", "sts_rate_window", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-5, 10**12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=8),
        ),
        max_size=3,
    )
)
def test_any_switch_body_is_answered_200_or_400(sandbox, body):
    response = post_faults(sandbox, body)
    assert response.status_code in (200, 400), response.text
    sandbox.config.faults.configure(
        latency_ms=0, throttle_every=0, sts_max_calls_per_second=0, sts_rate_window="sliding"
    )


@pytest.mark.parametrize(
    "raw", [b'{"sts_max_calls_per_second": Infinity}', b'{"latency_ms": NaN}', b"{", b"\xff"]
)
def test_non_finite_or_broken_json_is_refused(sandbox, raw):
    response = requests.post(f"http://{sandbox.sts_endpoint}/__sandbox__/faults", data=raw, timeout=5)
    assert response.status_code == 400 and response.json()["Code"] == "InvalidParameter"


def test_the_command_refuses_a_bad_tls_port(settings, tmp_path: Path):
    from django.core.management import CommandError, call_command

    settings.ALIYUN_STS_ENDPOINT = "127.0.0.1:0"
    settings.ALIYUN_OSS_ENDPOINT = "http://127.0.0.1:0"
    with pytest.raises(CommandError, match="sts-tls-port"):
        call_command("sandbox", "--sts-tls-port", "70000", "--data-dir", str(tmp_path))
