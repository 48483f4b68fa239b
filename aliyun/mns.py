"""The seam for Simple Message Queue (formerly MNS) HTTP pushes: their signing certificate and signature.

A topic subscription pushes each message to our HTTP endpoint signed with Alibaba's RSA key
("Verify a signature on an HTTP server" in the SMQ guide, also "HttpEndpoint"):

- ``Authorization`` is Base64 of an RSA PKCS#1 v1.5 SHA-1 signature over ``POST\\n<Content-MD5>\\n
  <Content-Type>\\n<Date>\\n`` + every ``x-mns-*`` header as ``name:value\\n`` (names lower-cased,
  sorted) + the request path;
- ``x-mns-signing-cert-url`` is Base64 of the URL of the X.509 certificate holding the public key;
  Alibaba says to accept only URLs under ``https://mnstest.oss-cn-hangzhou.aliyuncs.com/``.

This is not an Alibaba SDK call (there is no SDK for the receiving side): the certificate is a
plain HTTPS GET, made with a short timeout, never following redirects, read up to 16 KiB, and kept
per process and in the shared cache for a day, so a push costs no fetch once the certificate is known.
A URL that failed is not fetched again for a minute (a flood of forged pushes costs one fetch).
"""

import base64
import binascii
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import cache

from aliyun.errors import AliyunError

logger = logging.getLogger(__name__)

MAX_CERTIFICATE_BYTES = 16 * 1024
CERTIFICATE_CACHE_SECONDS = 24 * 3600
FAILURE_CACHE_SECONDS = 60
_LOCAL_MAX = 64


class MnsError(AliyunError):
    """A push could not be verified. ``code``: ``cert_url_refused`` (the URL is not under an allowed
    prefix, or not a URL), ``cert_unavailable`` (the certificate could not be fetched or read: a
    retry may work), ``bad_signature`` (missing, malformed or wrong)."""


def string_to_sign(
    *, content_md5: str, content_type: str, date: str, headers: Mapping[str, str], path: str
) -> str:
    """What MNS signs for an HTTP push (see the module docstring)."""
    mns = sorted(
        (name.lower(), value.strip()) for name, value in headers.items() if name.lower().startswith("x-mns-")
    )
    canonical = "".join(f"{name}:{value}\n" for name, value in mns)
    return f"POST\n{content_md5}\n{content_type}\n{date}\n{canonical}{path}"


def certificate_url(header_value: str, *, allowed_prefixes: Iterable[str]) -> str:
    """The certificate URL a push names (Base64 in ``x-mns-signing-cert-url``), if it starts with one
    of ``allowed_prefixes`` (each ending in ``/``) and is a plain URL; else ``MnsError``."""
    try:
        url = base64.b64decode(header_value.encode("ascii"), validate=True).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise MnsError("cert_url_refused", "The certificate URL is not Base64 of an ASCII URL.") from None
    parts = urlsplit(url)
    plain = (
        parts.scheme in ("http", "https")
        and not parts.username
        and not parts.password
        and not parts.query
        and not parts.fragment
        and ".." not in parts.path
        and "\\" not in url
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in url)
    )
    if not plain or not any(prefix.endswith("/") and url.startswith(prefix) for prefix in allowed_prefixes):
        raise MnsError("cert_url_refused", "The certificate URL is not under an allowed prefix.")
    return url


_local: dict[str, rsa.RSAPublicKey] = {}
_local_lock = threading.Lock()


def local_certificates_clear() -> None:
    """Forget this process's certificates (tests)."""
    with _local_lock:
        _local.clear()


def _cache_key(url: str, kind: str) -> str:
    return f"aliyun:mns:{kind}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"


def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    certificate = x509.load_pem_x509_certificate(pem)
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA certificate")
    return key


def signing_key(url: str, *, timeout_seconds: float) -> rsa.RSAPublicKey:
    """The RSA public key of the certificate at ``url`` (already checked by ``certificate_url``).

    Raises ``MnsError("cert_unavailable")`` when it cannot be fetched or read.
    """
    with _local_lock:
        known = _local.get(url)
    if known is not None:
        return known
    pem = cache.get(_cache_key(url, "pem"))
    if pem is None:
        if cache.get(_cache_key(url, "failed")):
            raise MnsError("cert_unavailable", "The certificate could not be fetched moments ago.")
        pem = _fetch(url, timeout_seconds)
    try:
        key = _public_key(pem)
    except ValueError:
        cache.set(_cache_key(url, "failed"), True, timeout=FAILURE_CACHE_SECONDS)
        raise MnsError("cert_unavailable", "The certificate URL does not hold an RSA certificate.") from None
    cache.set(_cache_key(url, "pem"), pem, timeout=CERTIFICATE_CACHE_SECONDS)
    with _local_lock:
        if len(_local) >= _LOCAL_MAX:
            _local.clear()
        _local[url] = key
    return key


def _fetch(url: str, timeout_seconds: float) -> bytes:
    started = time.monotonic()
    try:
        with requests.get(url, timeout=timeout_seconds, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise OSError(f"HTTP {response.status_code}")
            body = b""
            for chunk in response.iter_content(4096):
                body += chunk
                if len(body) > MAX_CERTIFICATE_BYTES:
                    raise OSError("certificate too large")
                if time.monotonic() - started > timeout_seconds:
                    raise OSError("certificate too slow")
            return body
    except (OSError, requests.RequestException) as exc:
        cache.set(_cache_key(url, "failed"), True, timeout=FAILURE_CACHE_SECONDS)
        logger.warning("Could not fetch the MNS signing certificate: %s", type(exc).__name__)
        raise MnsError("cert_unavailable", "The signing certificate could not be fetched.") from None


def signature_verify(key: rsa.RSAPublicKey, *, authorization: str, text: str) -> None:
    """Check ``authorization`` (Base64 RSA-SHA1) over ``text``; ``MnsError("bad_signature")`` if wrong."""
    try:
        signature = base64.b64decode(authorization.strip().encode("ascii"), validate=True)
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - MNS's algorithm
    except (binascii.Error, UnicodeError, ValueError, InvalidSignature):
        raise MnsError("bad_signature", "The push's signature does not verify.") from None
