"""ledger.E001: no certificate prefix an attacker could serve, unless OSS itself is the local sandbox."""

import pytest

from ledger.checks import check_oss_events_settings


@pytest.mark.parametrize(
    ("prefix", "oss_endpoint", "refused"),
    [
        ("https://mnstest.oss-cn-hangzhou.aliyuncs.com/", "https://oss-cn-hangzhou.aliyuncs.com", False),
        ("http://mnstest.oss-cn-hangzhou.aliyuncs.com/", "https://oss-cn-hangzhou.aliyuncs.com", True),
        ("https://127.0.0.1:8702/__sandbox__/", "https://oss-cn-hangzhou.aliyuncs.com", True),
        ("http://127.0.0.1:8702/__sandbox__/", "http://127.0.0.1:8702", False),
        ("https://mnstest.oss-cn-hangzhou.aliyuncs.com", "https://oss-cn-hangzhou.aliyuncs.com", True),
        ("ftp://example.com/", "http://127.0.0.1:8702", True),
    ],
)
def test_certificate_prefixes(settings, prefix, oss_endpoint, refused):
    settings.OSS_EVENTS_CERT_URL_PREFIXES = [prefix]
    settings.ALIYUN_OSS_ENDPOINT = oss_endpoint

    ids = [error.id for error in check_oss_events_settings()]

    assert ids == (["ledger.E001"] if refused else [])


def test_limits_must_be_positive(settings):
    settings.OSS_EVENTS_MAX_EVENTS = 0
    assert [error.id for error in check_oss_events_settings()] == ["ledger.E002"]
