"""Isolation end to end: the product's session policy, enforced by the sandbox, against every client.

Tokens carry the product's own session policy (``uploads.services.reuse.session_policy_build``, as sent to
AssumeRole). For the colon tricks of issue 9 and a sample of generated keys, each attacking user tries
put, multipart, copy and PostObject with oss2 (V1 and V4), alibabacloud-oss-v2 and ali-oss (Node).
Afterwards the sandbox's storage is read directly: every object lies inside the prefix of the user
who wrote it and has no ``:`` in its key. A key the policy allows must really be written (a copy never:
it needs to read its source, and the credentials are write-only).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
import pytest
import requests
from hypothesis import Phase, given, seed, settings

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox
from sandbox.storage import Storage
from sandbox.tokens import IssuedCredentials, issue_credentials
from tests.isolation import REPORT, colon_tricks, keys_for, legit
from tests.sandbox.conftest import oss2_bucket, oss_error_code, stored_keys, v2_client
from tests.sandbox.test_oss_post_object import signed_form
from uploads.services.reuse import session_policy_build

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("ali_oss_driver.js")
# (attacker, victim): the attacker's token tries to reach the victim's folder.
PAIRS = ((1, 2), (7, 70), (70, 7), (700, 70), (10, 1))
GENERATED_PER_USER = 10
# Legitimate names every client must still be able to write (the README promises them).
LEGIT_NAMES = ("头像 照片.png", "my file (1).jpg", "a+b#c%d&e=f.png", "😀🎉.webp", "deep/er/x.txt")
MAX_KEY_BYTES = 1023


def sample_keys(bucket: str, user_id: int, count: int) -> list[str]:
    """``count`` keys drawn from the same strategy the policy properties use (fixed seed: repeatable)."""
    drawn: list[str] = []

    @seed(user_id)
    @settings(max_examples=count * 3, database=None, phases=[Phase.generate], deadline=None)
    @given(keys_for(bucket, user_id))
    def collect(key: str) -> None:
        if key and key not in drawn and len(drawn) < count and xml_safe(key):
            drawn.append(key)

    collect()
    return drawn


def xml_safe(key: str) -> bool:
    """Multipart answers carry the key in XML, which cannot hold C0 controls (the policy tests keep them)."""
    return not any(ord(ch) < 0x20 or ch in "\ufffe\uffff" for ch in key)


def addressable(key: str) -> bool:
    """OSS's own name rule (the sandbox answers InvalidObjectName otherwise): 1-1023 bytes, no leading / or \\."""
    return 0 < len(key.encode()) <= MAX_KEY_BYTES and not key.startswith(("/", "\\"))


def rewritten_by_clients(key: str) -> bool:
    """A ``.`` or ``..`` path segment: some HTTP stacks resolve it before sending, so the request no longer
    matches what was signed and OSS answers SignatureDoesNotMatch (nothing is written anywhere)."""
    return any(segment in (".", "..") for segment in key.split("/"))


# CopyObject also needs oss:GetObject on its source, and a user's credentials are write-only
# (aliyun/policy.py): a copy is refused wherever it would write, and writes nothing.
READS_THE_SOURCE = {"copy"}


def expected_refusals(key: str) -> set[tuple[int, str]]:
    refusals = {(403, "AccessDenied"), (400, "InvalidObjectName")}
    if rewritten_by_clients(key):
        refusals.add((403, "SignatureDoesNotMatch"))
    return refusals


@pytest.fixture(scope="module")
def iso_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    config = SandboxConfig.from_settings(data_dir=tmp_path_factory.mktemp("isolation"))
    with Sandbox(config) as running:
        yield running


def credentials_for(config: SandboxConfig, user_id: int) -> IssuedCredentials:
    return issue_credentials(
        config,
        role_session_name=f"user-{user_id}",
        session_policy=session_policy_build(user_id=user_id),
        duration_seconds=3600,
    )


def keys_to_try(config: SandboxConfig, attacker: int, victim: int) -> list[str]:
    tricks = colon_tricks(config.bucket, victim, attacker, config.owner_account_id, config.region)
    names = [f"user/{attacker}/{name}" for name in LEGIT_NAMES]
    return [*tricks, *names, *sample_keys(config.bucket, attacker, GENERATED_PER_USER)]


# --- the Python SDKs ---------------------------------------------------------------------------


def _post(endpoint: str, bucket: str, creds: IssuedCredentials, key: str, version: str) -> None:
    fields = signed_form(creds, key, version=version, conditions=[["starts-with", "$key", "user/"]])
    answer = requests.post(
        f"{endpoint}/{bucket}", data=fields, files={"file": ("f.jpg", b"intrusion", "image/jpeg")}, timeout=10
    )
    if answer.status_code >= 300:
        code = answer.text.split("<Code>", 1)[-1].split("</Code>", 1)[0]
        raise _Refused(answer.status_code, code)


class _Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code = status, code


def _oss2_multipart(bucket: oss2.Bucket, key: str) -> None:
    upload_id = bucket.init_multipart_upload(key).upload_id
    part = bucket.upload_part(key, upload_id, 1, b"intrusion")
    bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, part.etag)])


def _v2_multipart(client: oss_v2.Client, bucket: str, key: str) -> None:
    init = client.initiate_multipart_upload(oss_v2.InitiateMultipartUploadRequest(bucket=bucket, key=key))
    part = client.upload_part(
        oss_v2.UploadPartRequest(bucket=bucket, key=key, upload_id=init.upload_id, part_number=1, body=b"x")
    )
    client.complete_multipart_upload(
        oss_v2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=init.upload_id,
            complete_multipart_upload=oss_v2.CompleteMultipartUpload(
                parts=[oss_v2.UploadPart(part_number=1, etag=part.etag)]
            ),
        )
    )


def python_operations(
    endpoint: str, bucket: str, creds: IssuedCredentials, source: str
) -> dict[tuple[str, str], Callable[[str], Any]]:
    v1 = oss2_bucket(endpoint, bucket, creds)
    v4 = oss2_bucket(endpoint, bucket, creds, version="v4")
    v2 = v2_client(endpoint, creds)
    return {
        ("oss2-v1", "put"): lambda key: v1.put_object(key, b"intrusion"),
        ("oss2-v1", "multipart"): lambda key: _oss2_multipart(v1, key),
        ("oss2-v1", "copy"): lambda key: v1.copy_object(bucket, source, key),
        ("oss2-v1", "post"): lambda key: _post(endpoint, bucket, creds, key, "v1"),
        ("oss2-v4", "put"): lambda key: v4.put_object(key, b"intrusion"),
        ("oss2-v4", "multipart"): lambda key: _oss2_multipart(v4, key),
        ("oss2-v4", "copy"): lambda key: v4.copy_object(bucket, source, key),
        ("oss2-v4", "post"): lambda key: _post(endpoint, bucket, creds, key, "v4"),
        ("oss-v2", "put"): lambda key: v2.put_object(
            oss_v2.PutObjectRequest(bucket=bucket, key=key, body=b"x")
        ),
        ("oss-v2", "multipart"): lambda key: _v2_multipart(v2, bucket, key),
        ("oss-v2", "copy"): lambda key: v2.copy_object(
            oss_v2.CopyObjectRequest(bucket=bucket, key=key, source_key=source)
        ),
    }


def _outcome(action: Callable[[], Any]) -> tuple[int, str]:
    try:
        action()
    except (oss2.exceptions.OssError, oss_v2.exceptions.OperationError) as exc:
        try:
            return oss_error_code(exc)
        except AssertionError:
            return 0, type(exc).__name__  # refused by the SDK itself, before any request
    except _Refused as exc:
        return exc.status, exc.code
    return 200, ""


def _assert_stored_inside(config: SandboxConfig, before: set[str], writer: int) -> set[str]:
    now = set(stored_keys(config))
    for key in now - before:
        assert legit(key, writer), f"user {writer} wrote {key!r} outside its prefix"
    return now


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_python_sdks_write_only_inside_the_prefix(iso_sandbox: Sandbox, attacker: int, victim: int) -> None:
    config = iso_sandbox.config
    creds = credentials_for(config, attacker)
    source = f"user/{attacker}/source.bin"
    oss2_bucket(iso_sandbox.oss_endpoint, config.bucket, creds).put_object(source, b"source")
    operations = python_operations(iso_sandbox.oss_endpoint, config.bucket, creds, source)
    stored = set(stored_keys(config))
    for key in keys_to_try(config, attacker, victim):
        for (sdk, operation), run in operations.items():
            allowed = legit(key, attacker) and addressable(key) and operation not in READS_THE_SOURCE
            status, code = _outcome(lambda run=run, key=key: run(key))
            REPORT[f"e2e cases: {sdk} {operation}"] += 1
            if allowed and status == 200:
                assert key in stored_keys(config)
            elif allowed:  # only a client that rewrote the path may fail a key the policy allows
                assert rewritten_by_clients(key) and (status, code) == (403, "SignatureDoesNotMatch"), (
                    sdk,
                    operation,
                    key,
                    status,
                    code,
                )
                REPORT["e2e cases: allowed key the client rewrote (./..)"] += 1
            elif status == 0:  # the SDK refused to send it (alibabacloud-oss-v2 checks the name's length)
                assert not addressable(key), (sdk, operation, key, code)
            else:
                assert (status, code) in expected_refusals(key), (sdk, operation, key, status, code)
        stored = _assert_stored_inside(config, stored, attacker)
        REPORT["e2e keys"] += 1
        REPORT["e2e keys with ':'"] += ":" in key


@pytest.mark.skipif(shutil.which("node") is None, reason="Node is needed for ali-oss")
@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_ali_oss_node_writes_only_inside_the_prefix(
    iso_sandbox: Sandbox, attacker: int, victim: int, v4: bool
) -> None:
    config = iso_sandbox.config
    creds = credentials_for(config, attacker)
    source = f"user/{attacker}/source.bin"
    oss2_bucket(iso_sandbox.oss_endpoint, config.bucket, creds).put_object(source, b"source")
    keys = [key for key in keys_to_try(config, attacker, victim) if addressable(key)]
    operations = ["put", "multipart", "copy", "post"]
    stored = set(stored_keys(config))
    job = {
        "endpoint": iso_sandbox.oss_endpoint,
        "bucket": config.bucket,
        "region": config.region,
        "credentials": {
            "accessKeyId": creds.access_key_id,
            "accessKeySecret": creds.access_key_secret,
            "stsToken": creds.security_token,
        },
        "source": source,
        "keys": keys,
        "operations": operations,
        "v4": v4,
    }
    done = subprocess.run(
        ["node", str(DRIVER)], input=json.dumps(job), capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(keys) * len(operations)
    for result in results:
        REPORT[f"e2e cases: ali-oss-{'v4' if v4 else 'v1'} {result['operation']}"] += 1
        key, status, code = result["key"], result["status"], result.get("code", "")
        if result["operation"] in READS_THE_SOURCE:
            assert not result["ok"] and (status, code) in expected_refusals(key), result
        elif legit(key, attacker) and not result["ok"]:
            assert rewritten_by_clients(key) and (status, code) == (403, "SignatureDoesNotMatch"), result
            REPORT["e2e cases: allowed key the client rewrote (./..)"] += 1
        elif not legit(key, attacker):
            assert not result["ok"] and (status, code) in expected_refusals(key), result
    _assert_stored_inside(config, stored, attacker)
    REPORT["e2e keys (ali-oss)"] += len(keys)


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_victim_cannot_read_a_colon_key_planted_in_its_folder(iso_sandbox: Sandbox, attacker, victim) -> None:
    """The read half of the attack: even if such an object existed, its folder's owner cannot read it."""
    config = iso_sandbox.config
    storage = Storage(config.data_dir)
    victim_creds = credentials_for(config, victim)
    v1 = oss2_bucket(iso_sandbox.oss_endpoint, config.bucket, victim_creds)
    v4 = oss2_bucket(iso_sandbox.oss_endpoint, config.bucket, victim_creds, version="v4")
    for key in colon_tricks(config.bucket, victim, attacker, config.owner_account_id, config.region):
        if not key.startswith(f"user/{victim}/") or ":" not in key:
            continue
        staged = storage.stage(io.BytesIO(b"planted"))
        storage.commit(config.bucket, key, staged, content_type="text/plain", user_meta={})
        for client in (v1, v4):
            with pytest.raises(oss2.exceptions.AccessDenied):
                client.get_object(key)
            REPORT["e2e cases: planted colon key read by its folder's owner"] += 1
        storage.delete(config.bucket, key)
