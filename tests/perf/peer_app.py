"""The peer `make bench` measures the product against: Alibaba's sample "STS app server", as WSGI.

What the sample does, and nothing more: every request, from anyone (no authentication, no audit,
no reuse, no rate limit), makes one AssumeRole call through the same STS SDK the product uses
(alibabacloud-sts20150401) with the same session policy (``aliyun.policy``), and answers in the
format the OSS mobile SDKs' sample credential providers parse::

    {"StatusCode": "200", "AccessKeyId": ..., "AccessKeySecret": ..., "SecurityToken": ..., "Expiration": ...}

or ``{"StatusCode": "500", "ErrorCode": ..., "ErrorMessage": ...}`` (HTTP 500) when STS fails.
The SDK client is built once per worker process, not per request as in the sample: the peer is
given the cheaper of the two. ``GET /healthz`` answers without calling STS (the harness waits on it).

Served by gunicorn in the product's shape (2 gthread workers x 4 threads), from the repository root:
``gunicorn --pythonpath tests/perf peer_app:application``. Configuration: the stack's own
ALIYUN_* variables (harness.base_environment) and PEER_USER_ID, the user whose prefix the policy
names (there is no login to take it from).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from alibabacloud_sts20150401.client import Client
from alibabacloud_sts20150401.models import AssumeRoleRequest
from alibabacloud_tea_openapi.models import Config

from aliyun.policy import role_arn_account_id, upload_policy

_CLIENT = Client(
    Config(
        access_key_id=os.environ["ALIYUN_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIYUN_ACCESS_KEY_SECRET"],
        endpoint=os.environ["ALIYUN_STS_ENDPOINT"],
        protocol="http",  # the sandbox on loopback
    )
)
_ROLE_ARN = os.environ["ALIYUN_STS_ROLE_ARN"]
_BUCKET = os.environ["ALIYUN_OSS_BUCKET"]
_DURATION = int(os.environ.get("ALIYUN_STS_DURATION_SECONDS", "3600"))
_USER_ID = int(os.environ.get("PEER_USER_ID", "1"))


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, str]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":
        return _answer(start_response, "200 OK", {"status": "ok"})
    policy = upload_policy(
        bucket=_BUCKET,
        user_id=_USER_ID,
        region=os.environ.get("ALIYUN_OSS_REGION", "cn-hangzhou"),
        owner_account_id=role_arn_account_id(_ROLE_ARN),
    )
    request = AssumeRoleRequest(
        role_arn=_ROLE_ARN,
        role_session_name=f"user-{_USER_ID}",
        policy=json.dumps(policy, separators=(",", ":")),
        duration_seconds=_DURATION,
    )
    try:
        credentials = _CLIENT.assume_role(request).body.credentials
    except Exception as exc:  # the sample answers every failure the same way
        return _answer(
            start_response,
            "500 Internal Server Error",
            {
                "StatusCode": "500",
                "ErrorCode": getattr(exc, "code", "") or type(exc).__name__,
                "ErrorMessage": str(exc)[:200],
            },
        )
    return _answer(
        start_response,
        "200 OK",
        {
            "StatusCode": "200",
            "AccessKeyId": credentials.access_key_id,
            "AccessKeySecret": credentials.access_key_secret,
            "SecurityToken": credentials.security_token,
            "Expiration": credentials.expiration,
        },
    )
