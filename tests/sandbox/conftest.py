"""Fixtures for driving the sandbox OSS with the official clients (oss2, alibabacloud-oss-v2).

The running sandbox itself comes from tests/conftest.py (``sandbox``, one per run). Tests that must
see an empty data directory (the cross-user matrix, restart survival) start their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.storage import Storage
from sandbox.tokens import IssuedCredentials, issue_credentials

USER_ACTIONS = ["oss:PutObject", "oss:AbortMultipartUpload", "oss:ListParts", "oss:GetObject"]


def user_session_policy(bucket: str, user_id: int, actions: list[str] | None = None) -> dict[str, Any]:
    """The session policy the product attaches to a user's token (the brief's reference policy)."""
    return {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(actions or USER_ACTIONS),
                "Resource": [f"acs:oss:*:*:{bucket}/user/{user_id}/*"],
            }
        ],
    }


IssueFn = Callable[..., IssuedCredentials]


def _issuer(config: SandboxConfig) -> IssueFn:
    def issue(
        user_id: int = 7,
        *,
        actions: list[str] | None = None,
        duration_seconds: int = 3600,
        now: datetime | None = None,
    ) -> IssuedCredentials:
        return issue_credentials(
            config,
            role_session_name=f"user-{user_id}",
            session_policy=user_session_policy(config.bucket, user_id, actions),
            duration_seconds=duration_seconds,
            now=now,
        )

    return issue


@pytest.fixture
def oss_config(sandbox: Sandbox) -> SandboxConfig:
    return sandbox.config


@pytest.fixture
def bucket_name(oss_config: SandboxConfig) -> str:
    return oss_config.bucket


@pytest.fixture
def issue(oss_config: SandboxConfig) -> IssueFn:
    """Mint user-scoped STS credentials the way the sandbox STS does (no HTTP round trip)."""
    return _issuer(oss_config)


@pytest.fixture
def user7(issue: IssueFn) -> IssuedCredentials:
    return issue(7)


def oss2_bucket(
    endpoint: str, bucket: str, creds: IssuedCredentials, *, version: str = "v1", region: str = "cn-hangzhou"
) -> oss2.Bucket:
    """An oss2 Bucket signed with STS credentials (V1 ``StsAuth`` or V4 ``ProviderAuthV4``)."""
    if version == "v4":
        provider = oss2.credentials.StaticCredentialsProvider(
            creds.access_key_id, creds.access_key_secret, creds.security_token
        )
        auth: Any = oss2.ProviderAuthV4(provider)
    else:
        auth = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
    return oss2.Bucket(auth, endpoint, bucket, region=region, connect_timeout=5)


def v2_client(
    endpoint: str,
    creds: IssuedCredentials,
    *,
    signature_version: str = "v4",
    region: str = "cn-hangzhou",
    use_cname: bool = False,
) -> oss_v2.Client:
    """An alibabacloud-oss-v2 client with static STS credentials; path style unless ``use_cname``."""
    config = oss_v2.config.load_default()
    config.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(
        creds.access_key_id, creds.access_key_secret, creds.security_token
    )
    config.region = region
    config.endpoint = endpoint
    config.use_path_style = not use_cname
    config.use_cname = use_cname
    config.signature_version = signature_version
    config.retry_max_attempts = 1
    return oss_v2.Client(config)


@pytest.fixture
def make_oss2(sandbox: Sandbox, bucket_name: str) -> Callable[..., oss2.Bucket]:
    def make(creds: IssuedCredentials, version: str = "v1", bucket: str | None = None) -> oss2.Bucket:
        return oss2_bucket(sandbox.oss_endpoint, bucket or bucket_name, creds, version=version)

    return make


@pytest.fixture
def make_v2(sandbox: Sandbox) -> Callable[..., oss_v2.Client]:
    def make(creds: IssuedCredentials, signature_version: str = "v4") -> oss_v2.Client:
        return v2_client(sandbox.oss_endpoint, creds, signature_version=signature_version)

    return make


@pytest.fixture
def private_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox with its own empty data directory, for tests that audit what got stored."""
    config = SandboxConfig.from_settings(data_dir=tmp_path / "private-sandbox")
    with Sandbox(config) as running:
        yield running


def stored_keys(config: SandboxConfig) -> list[str]:
    """Every object key on disk for the configured bucket, read from storage, not through HTTP."""
    return [meta.key for meta in Storage(config.data_dir).iter_objects(config.bucket)]


def oss_error_code(exc: BaseException) -> tuple[int, str]:
    """(status, code) of an error raised by either SDK."""
    if isinstance(exc, oss2.exceptions.OssError):
        return exc.status, exc.code
    if isinstance(exc, oss_v2.exceptions.OperationError):
        inner = exc.unwrap()
        if isinstance(inner, oss_v2.exceptions.ServiceError):
            return inner.status_code, inner.code
    raise AssertionError(f"not an OSS service error: {exc!r}")
