"""A local OIDC provider for `AssumeRoleWithOIDC` (Alibaba's RRSA), and the token file it projects.

On ACK, RRSA gives a pod a service-account token (a JWT signed RS256 by the cluster's issuer,
audience ``sts.aliyuncs.com``) in a file named by ``ALIBABA_CLOUD_OIDC_TOKEN_FILE``; the kubelet
replaces it before it expires, and the pod trades it with STS `AssumeRoleWithOIDC` (unsigned: no
AccessKey) for the role named by ``ALIBABA_CLOUD_ROLE_ARN``, provided the role's trust policy
names the provider (``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``, ``acs:ram::<account>:oidc-provider/<name>``)
in ``Principal.Federated``. (Alibaba: "Use RRSA to authorize different pods to access different
cloud services"; "AssumeRoleWithOIDC".)

Here the sandbox is the issuer: an RS256 key kept in ``<data_dir>/oidc/signing-key.pem``
(mode 0600, reused across restarts), tokens with ``iss``/``aud``/``sub``/``iat``/``exp``, a
`TokenProjector` that writes a fresh token to ``SandboxConfig.oidc_token_file`` every
``oidc_token_rotate_seconds`` (default: at 80 % of the token's lifetime, as the kubelet rotates
projected tokens), and `OidcIssuer.verify`, which STS uses. Refusals carry the codes of Alibaba's
STS error-code page ("api-sts-2015-04-01-errorcodes"): 401 ``AuthenticationFail.OIDCToken.Invalid``,
``.InvalidSignature``, ``.Expired``, ``.AudienceNotMatch``. A wrong issuer's code is not on the
part of that page we could read: ``AuthenticationFail.OIDCToken.IssuerNotMatch`` is our guess, in
the same family and with the same status, so a client that handles the family handles it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from sandbox.config import SandboxConfig

__all__ = ["OidcError", "OidcIssuer", "TokenProjector"]

logger = logging.getLogger(__name__)

KEY_FILE = "signing-key.pem"
MAX_TOKEN_CHARS = 16 * 1024
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp"]


class OidcError(Exception):
    """STS's answer to an OIDC token it does not accept (HTTP 401)."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> OidcError:
    return OidcError("AuthenticationFail.OIDCToken.Invalid", message)


class OidcIssuer:
    """The sandbox's OIDC issuer for one `SandboxConfig`: its key, minting and verification."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.key_path = Path(config.data_dir) / "oidc" / KEY_FILE
        self._key = _load_or_create_key(self.key_path)
        self.public_key = self._key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:16]).rstrip(b"=").decode()

    def mint(
        self,
        *,
        now: datetime | None = None,
        ttl_seconds: int | None = None,
        subject: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """A signed service-account token; each argument defaults to the config's (tests vary them)."""
        config = self.config
        issued = (now or config.faults.now()).replace(microsecond=0)
        ttl = config.oidc_token_ttl_seconds if ttl_seconds is None else ttl_seconds
        claims = {
            "iss": issuer or config.oidc_issuer,
            "aud": [audience or config.oidc_audience],
            "sub": subject or config.oidc_subject,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int((issued + timedelta(seconds=ttl)).timestamp()),
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def verify(
        self, token: str, *, issuer: str, audiences: list[str], now: datetime | None = None
    ) -> dict[str, Any]:
        """The token's claims if this issuer signed it, for `issuer` and one of `audiences`, unexpired.

        Raises OidcError (401) with Alibaba's `AuthenticationFail.OIDCToken.*` codes; any input,
        however malformed, ends in one of them.
        """
        if not token:
            raise _invalid("The OIDCToken can not empty.")
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise _invalid("The number of Jwt field should be divided into 3 parts with '.' .")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid("Cannot decode base64 encoded response(format invalided).") from None
        algorithm = header.get("alg")
        if algorithm != "RS256":
            raise _invalid(f"The algorithm {str(algorithm)[:32]} that be specified in Jwt header is unknown.")
        if header.get("kid") not in (None, self.key_id):
            raise OidcError(
                "AuthenticationFail.OIDCToken.InvalidSignature",
                "OIDC token validate failed: invalid signature.",
            )
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                # The times are checked below against the sandbox's (possibly skewed) clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise OidcError(
                "AuthenticationFail.OIDCToken.InvalidSignature",
                "OIDC token validate failed: invalid signature.",
            ) from None
        except jwt.InvalidTokenError:
            raise _invalid("The Jwt content is invalid that cannot be recognized.") from None
        return _check_claims(claims, issuer=issuer, audiences=audiences, now=now or self.config.faults.now())

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWK set (what an issuer publishes at its `jwks_uri`)."""
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {"keys": [{**jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}


def _check_claims(
    claims: dict[str, Any], *, issuer: str, audiences: list[str], now: datetime
) -> dict[str, Any]:
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", claims.get("iat"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat, nbf)):
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    timestamp = now.timestamp()
    if timestamp >= exp:
        raise OidcError("AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.")
    if nbf > timestamp + 60:  # a token from the future: one minute's leeway for clocks
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    if claims.get("iss") != issuer:
        raise OidcError("AuthenticationFail.OIDCToken.IssuerNotMatch", "Invalid issuer.")
    audience = claims.get("aud")
    token_audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(token_audiences, list) or not set(map(str, token_audiences)) & set(audiences):
        raise OidcError("AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _invalid("The Jwt content is invalid that cannot be recognized.")
    return claims


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            return key
    except (OSError, ValueError, TypeError):
        pass
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, readable by the owner only (the token file is a credential too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


class TokenProjector:
    """Writes a fresh token to `config.oidc_token_file` now and then every rotation interval.

    Like the kubelet's projected service-account token: a reader that opens the file again
    always finds a token with most of its lifetime left; the file is replaced atomically, so a
    reader never sees half a token.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.path = Path(config.oidc_token_file or Path(config.data_dir) / "oidc" / "token")
        ttl = config.oidc_token_ttl_seconds
        self.interval = float(config.oidc_token_rotate_seconds or ttl * 0.8)
        self.written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self) -> str:
        """Mint and write one token now; return it."""
        token = self.config.oidc.mint()
        _write_private(self.path, token.encode("ascii"))
        self.written += 1
        logger.info(
            "sandbox OIDC: wrote token #%d to %s (valid %ss, next in %.0fs)",
            self.written,
            self.path,
            self.config.oidc_token_ttl_seconds,
            self.interval,
        )
        return token

    def start(self) -> TokenProjector:
        self.write()
        self._thread = threading.Thread(target=self._run, name="sandbox-oidc-projector", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError:
                logger.exception("sandbox OIDC: cannot write the token file %s", self.path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
