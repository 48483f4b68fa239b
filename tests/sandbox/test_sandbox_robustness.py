"""Garbage aimed at the sandbox gets Alibaba-shaped 4xx answers, never a 500."""

import time
import uuid

import pytest
import requests


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
