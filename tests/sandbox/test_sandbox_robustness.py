"""Garbage aimed at the sandbox gets Alibaba-shaped 4xx answers, never a 500."""

import io
import os
import time
import uuid

import pytest
import requests

from sandbox.storage import ABANDONED_WRITE_SECONDS, Storage


def test_presigned_url_with_non_ascii_expiry_is_403_not_500(sandbox, bucket_name):
    response = requests.get(
        f"{sandbox.oss_endpoint}/{bucket_name}/user/7/x",
        params={"OSSAccessKeyId": "a", "Expires": "²", "Signature": "x"},
        timeout=5,
    )
    assert 400 <= response.status_code < 500
    assert b"<Code>" in response.content


@pytest.mark.parametrize("part_number", ["²", "-1", "0", "10001", "1.5"])
def test_odd_part_numbers_are_4xx(sandbox, bucket_name, part_number):
    response = requests.put(
        f"{sandbox.oss_endpoint}/{bucket_name}/user/7/x",
        params={"partNumber": part_number, "uploadId": "0" * 32},
        data=b"x",
        timeout=5,
    )
    assert 400 <= response.status_code < 500


def _rpc_params(**extra: str) -> dict[str, str]:
    return {
        "Action": "AssumeRole",
        "Format": "json",
        "Version": "2015-04-01",
        "AccessKeyId": "test-ram-user-key",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "SignatureNonce": uuid.uuid4().hex,
        "RoleArn": "acs:ram::1234567890123456:role/oss-uploader",
        "RoleSessionName": "user-7",
        **extra,
    }


@pytest.mark.parametrize("signature", ["é", "\u00ff" * 28, "ΣΣΣ"])
def test_sts_non_ascii_signature_is_signature_mismatch(sandbox, signature):
    response = requests.post(
        f"http://{sandbox.sts_endpoint}/", params=_rpc_params(Signature=signature), timeout=5
    )
    assert response.status_code == 400
    assert response.json()["Code"] == "SignatureDoesNotMatch"


def test_sts_acs3_non_ascii_signature_is_4xx(sandbox):
    response = requests.post(
        f"http://{sandbox.sts_endpoint}/",
        headers={
            "Authorization": "ACS3-HMAC-SHA256 Credential=test-ram-user-key,SignedHeaders=host,Signature=\u00e9",
            "x-acs-action": "AssumeRole",
        },
        timeout=5,
    )
    assert 400 <= response.status_code < 500
    assert response.json()["Code"]


def _sign_v2(params: dict[str, str], secret: str) -> str:
    import base64
    import hashlib
    import hmac
    from urllib.parse import quote

    canonical = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params.items()))
    string_to_sign = f"POST&%2F&{quote(canonical, safe='~')}"
    return base64.b64encode(
        hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()


def test_sts_request_without_nonce_is_refused_so_it_cannot_be_replayed(sandbox):
    params = _rpc_params()
    del params["SignatureNonce"]
    params["Signature"] = _sign_v2(params, sandbox.config.access_key_secret)

    response = requests.post(f"http://{sandbox.sts_endpoint}/", params=params, timeout=5)

    assert response.status_code == 400
    assert response.json()["Code"] == "MissingSignatureNonce"


def test_sts_same_nonce_twice_is_refused(sandbox):
    params = _rpc_params()
    params["Signature"] = _sign_v2(params, sandbox.config.access_key_secret)
    first = requests.post(f"http://{sandbox.sts_endpoint}/", params=params, timeout=5)
    replay = requests.post(f"http://{sandbox.sts_endpoint}/", params=params, timeout=5)
    assert first.status_code == 200, first.text
    assert replay.json()["Code"] == "SignatureNonceUsed"


def test_restart_sweeps_temporary_files_of_a_write_that_died(tmp_path):
    """A sandbox killed mid-upload leaves temporary files; the next start removes the old ones only."""
    storage = Storage(tmp_path)
    staged = storage.stage(io.BytesIO(b"half an upload"))  # never committed
    meta_dir = storage.objects / "ab"
    meta_dir.mkdir()
    dead_meta = meta_dir / ".tmp-1234.json"
    dead_meta.write_text("{")
    in_flight = storage.tmp / "stage-in-flight"
    in_flight.write_bytes(b"another process, still writing")
    long_ago = time.time() - ABANDONED_WRITE_SECONDS - 60
    for path in (staged.path, dead_meta):
        os.utime(path, (long_ago, long_ago))

    Storage(tmp_path)

    assert not staged.path.exists()
    assert not dead_meta.exists()
    assert in_flight.exists()
