"""Secrets at rest: AES-GCM for what must be read back, keyed hashes for the rest.

Keys are derived from the configured secret key with HKDF, one per purpose, so a
leaked session-hash key says nothing about the TOTP encryption key. The secret
key itself never reaches the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(Exception):
    """A stored ciphertext could not be opened with any configured key."""


def _derive(secret_key: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"twofold", info=purpose.encode()).derive(
        secret_key.encode()
    )


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one ``purpose``, derived from the secret key with HKDF-SHA256 (RFC 5869)."""
    return _derive(secret_key, purpose)


class SecretBox:
    """AES-256-GCM with key rotation.

    A ciphertext reads ``v1.<key id>.<base64(nonce | ciphertext | tag)>``. The key id
    names which configured key sealed it, so after a rotation old rows still open
    (``needs_rotation`` tells the caller to re-seal them). ``context`` is bound as
    associated data: a ciphertext copied to another row or purpose does not open.
    """

    def __init__(self, secret_key: str, old_secret_keys: list[str] | tuple[str, ...] = ()) -> None:
        self._keys: dict[str, AESGCM] = {}
        self._current = ""
        for index, key in enumerate([secret_key, *old_secret_keys]):
            material = _derive(key, "twofold/secret-box/v1")
            key_id = hashlib.sha256(material).hexdigest()[:8]
            self._keys.setdefault(key_id, AESGCM(material))
            if index == 0:
                self._current = key_id

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, context.encode())
        return f"v1.{self._current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, context: str) -> bytes:
        try:
            version, key_id, body = token.split(".", 2)
            raw = base64.urlsafe_b64decode(body.encode())
        except (ValueError, TypeError) as exc:
            raise DecryptionError("malformed ciphertext") from exc
        aead = self._keys.get(key_id)
        if version != "v1" or aead is None or len(raw) < 28:
            raise DecryptionError("ciphertext sealed with an unknown key")
        try:
            return aead.decrypt(raw[:12], raw[12:], context.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not open under its key") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(f"v1.{self._current}.")


class TokenHasher:
    """HMAC-SHA256 under a derived key, for high-entropy values looked up by hash.

    Session ids, remembered-browser tokens and backup codes carry 50 to 256 bits
    of entropy, so a slow password hash would add latency and no strength; the key
    means a copy of the database alone cannot even test a guess.
    """

    def __init__(self, secret_key: str, purpose: str) -> None:
        self._key = _derive(secret_key, f"twofold/token-hash/{purpose}")

    def hash(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token; 32 bytes = 256 bits."""
    return secrets.token_urlsafe(nbytes)
