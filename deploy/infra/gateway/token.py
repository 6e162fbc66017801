"""The gateway's credential towards Apicurio: short-lived JWTs signed with a key only the gateway holds.

Apicurio 3.3.3's ``quarkus.http.ssl.client-auth`` is fixed at build time (to NONE) in the published
distribution, so client certificates cannot be required at run time. Its OIDC layer, however, verifies bearer
tokens locally against ``quarkus.oidc.public-key`` (no OIDC server): `liaison infra up` generates an RSA key
pair per start, gives Apicurio the public half and the gateway the private half (0600); Apicurio then refuses
every request to its API without a token signed by that key (401), whoever reaches its port.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path

__all__ = ["ISSUER", "AUDIENCE", "SUBJECT", "generate_key", "public_key_b64", "mint", "TokenSource"]

ISSUER = "liaison-registry-gateway"
AUDIENCE = "liaison-apicurio"
SUBJECT = "registry-gateway"
LIFETIME = 600.0


def _b64url(b: bytes) -> bytes:
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def generate_key() -> bytes:
    """A fresh RSA-2048 private key, PEM (PKCS#8, unencrypted: the file is 0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_b64(private_pem: bytes) -> str:
    """The public half as Quarkus' ``quarkus.oidc.public-key`` wants it: base64 of the DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def mint(private_pem: bytes, lifetime: float = LIFETIME, now: float | None = None) -> tuple[str, float]:
    """(RS256 JWT, expiry epoch seconds)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(private_pem, None)
    now = time.time() if now is None else now
    exp = int(now + lifetime)
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "preferred_username": SUBJECT,
              "iat": int(now), "exp": exp, "jti": uuid.uuid4().hex}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(key.sign(header + b"." + payload, padding.PKCS1v15(), hashes.SHA256()))
    return (header + b"." + payload + b"." + signature).decode(), float(exp)


class TokenSource:
    """The current token, minted again when less than a third of its life is left."""

    def __init__(self, key_file: Path):
        self._pem = Path(key_file).read_bytes()
        self._token, self._exp = "", 0.0
        self._lock = threading.Lock()

    def header(self) -> str:
        with self._lock:
            if time.time() > self._exp - LIFETIME / 3:
                self._token, self._exp = mint(self._pem)
            return f"Bearer {self._token}"
