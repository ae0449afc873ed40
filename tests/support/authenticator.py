"""A software WebAuthn authenticator for API tests and the benchmark: real ES256 or RS256 keys made with
``cryptography``, real CBOR (cbor2) and real signatures over authenticatorData || SHA-256(clientDataJSON).

It answers options the way a browser and authenticator do together (the JSON of
``PublicKeyCredential.toJSON()``), and lets a test change one thing at a time: the
origin, the RP id, the counter, the user verification flag, the signing key.
The browser tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS, FLAG_AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftwareKey:
    """One credential on a software authenticator."""

    algorithm: str = "ES256"  # or "RS256"
    sign_count: int = 0
    synced: bool = False  # backup eligible and backed up (a synced passkey)
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    user_handle: bytes | None = None
    private_key: object = None

    def __post_init__(self) -> None:
        if self.private_key is None:
            self.private_key = (
                ec.generate_private_key(ec.SECP256R1())
                if self.algorithm == "ES256"
                else rsa.generate_private_key(public_exponent=65537, key_size=2048)
            )

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def cose_public_key(self) -> bytes:
        public = self.private_key.public_key()  # type: ignore[attr-defined]
        if self.algorithm == "ES256":
            numbers = public.public_numbers()
            return cbor2.dumps(
                {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
            )
        numbers = public.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return cbor2.dumps({1: 3, 3: -257, -1: n, -2: e})

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == "ES256":
            return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]

    def flags(self, user_verified: bool) -> int:
        value = FLAG_UP | (FLAG_UV if user_verified else 0)
        return value | (FLAG_BE | FLAG_BS if self.synced else 0)


def client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()


def register(
    options: dict,
    key: SoftwareKey,
    *,
    origin: str,
    rp_id: str | None = None,
    user_verified: bool = True,
    discoverable: bool = True,
) -> dict:
    """The JSON of ``navigator.credentials.create()`` for ``options``, attestation "none"."""
    rp_id = rp_id if rp_id is not None else options["rp"]["id"]
    key.user_handle = unb64url(options["user"]["id"])
    data = client_data("webauthn.create", options["challenge"], origin)
    attested = b"\x00" * 16 + struct.pack(">H", len(key.credential_id)) + key.credential_id + key.cose_public_key()
    auth_data = (
        hashlib.sha256(rp_id.encode()).digest()
        + bytes([key.flags(user_verified) | FLAG_AT])
        + struct.pack(">I", key.sign_count)
        + attested
    )
    attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
    return {
        "id": key.id,
        "rawId": key.id,
        "type": "public-key",
        "response": {
            "clientDataJSON": b64url(data),
            "attestationObject": b64url(attestation),
            "transports": ["internal"] if discoverable else ["usb"],
        },
        "clientExtensionResults": {"credProps": {"rk": discoverable}},
        "authenticatorAttachment": "platform" if discoverable else "cross-platform",
    }


def sign_in_with(
    options: dict,
    key: SoftwareKey,
    *,
    origin: str,
    rp_id: str | None = None,
    user_verified: bool = True,
    counter_step: int = 1,
    with_user_handle: bool = True,
) -> dict:
    """The JSON of ``navigator.credentials.get()`` for ``options``, the counter moved by ``counter_step``."""
    rp_id = rp_id if rp_id is not None else options["rpId"]
    key.sign_count += counter_step
    data = client_data("webauthn.get", options["challenge"], origin)
    auth_data = (
        hashlib.sha256(rp_id.encode()).digest()
        + bytes([key.flags(user_verified)])
        + struct.pack(">I", max(key.sign_count, 0))
    )
    signature = key.sign(auth_data + hashlib.sha256(data).digest())
    response = {
        "clientDataJSON": b64url(data),
        "authenticatorData": b64url(auth_data),
        "signature": b64url(signature),
    }
    if with_user_handle and key.user_handle is not None:
        response["userHandle"] = b64url(key.user_handle)
    return {
        "id": key.id,
        "rawId": key.id,
        "type": "public-key",
        "response": response,
        "clientExtensionResults": {},
        "authenticatorAttachment": "cross-platform",
    }
