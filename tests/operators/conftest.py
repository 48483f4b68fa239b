"""A sandbox of its own (empty data directory), with the settings pointed at it, for tests that change
the account (RAM, bucket CORS and lifecycle) and must not leak that into the shared one."""

from collections.abc import Iterator

import pytest

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox

SITE = "https://uploads.example.com"


@pytest.fixture
def fresh_sandbox(settings, tmp_path) -> Iterator[Sandbox]:
    config = SandboxConfig.from_settings(data_dir=tmp_path / "fresh-sandbox")
    with Sandbox(config) as running:
        settings.ALIYUN_STS_ENDPOINT = running.sts_endpoint
        settings.ALIYUN_OSS_ENDPOINT = running.oss_endpoint
        settings.CSRF_TRUSTED_ORIGINS = [SITE]
        yield running
