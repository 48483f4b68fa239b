"""`manage.py sandbox` refuses non-loopback addresses and stays out of the way for real Alibaba Cloud."""

import io

import pytest
from django.core.management import CommandError, call_command


def test_refuses_to_bind_a_public_address(settings):
    settings.ALIYUN_STS_ENDPOINT = "sts.aliyuncs.com:443"
    with pytest.raises(CommandError, match="loopback"):
        call_command("sandbox")


def test_refuses_a_private_network_address(settings):
    settings.ALIYUN_OSS_ENDPOINT = "http://10.0.0.5:8702"
    with pytest.raises(CommandError, match="loopback"):
        call_command("sandbox")


def test_only_if_local_does_nothing_for_real_endpoints(settings):
    settings.ALIYUN_STS_ENDPOINT = "sts.aliyuncs.com"
    settings.ALIYUN_OSS_ENDPOINT = "https://oss-cn-hangzhou.aliyuncs.com"
    out = io.StringIO()
    call_command("sandbox", "--only-if-local", stdout=out)
    assert "not started" in out.getvalue()
