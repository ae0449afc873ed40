"""Keyed hash chains and signed anchors: the audit log's cryptography.

A link is HMAC-SHA256 (RFC 2104) over the previous link and the canonical JSON of one
record, under a key derived from the secret key. Someone who can write to the database
but does not hold the secret key cannot recompute a chain after changing, removing or
moving a record in it.

An anchor is a statement of a chain's last link, signed with Ed25519 (RFC 8032) under a
key pair also derived from the secret key. It is kept outside the database, so cutting
the newest records and rewinding the chain shows against it; the public key lets anyone
check the signature without the secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from twofold.crypto.secret_box import derive_key

GENESIS = "0" * 64
LINK_PURPOSE = "twofold/audit-chain/v1"
ANCHOR_PURPOSE = "twofold/audit-anchor/v1"


def canonical(fields: Mapping[str, Any]) -> str:
    """One spelling of a record: sorted keys, no spaces; times and other values as ``str``."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def link_hash(key: bytes, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The link of one record: HMAC-SHA256(key, previous link, newline, canonical record), hex."""
    return hmac.new(key, f"{prev_hash}\n{canonical(fields)}".encode(), hashlib.sha256).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ChainKeys:
    """The audit chain's keys, derived from the secret key and from earlier secret keys.

    New links and anchors use the current key. Links and anchors made under an earlier key
    (``TWOFOLD_OLD_SECRET_KEYS``) still verify, for as long as that key stays configured.
    """

    def __init__(self, secret_key: str, old_secret_keys: Sequence[str] = ()) -> None:
        keys = [secret_key, *old_secret_keys]
        self._link_keys = [derive_key(key, LINK_PURPOSE) for key in keys]
        self._signing_keys = [Ed25519PrivateKey.from_private_bytes(derive_key(key, ANCHOR_PURPOSE)) for key in keys]
        self._public_keys = {
            _b64(signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)): signing.public_key()
            for signing in self._signing_keys
        }

    @property
    def link_key(self) -> bytes:
        """The current link key (for re-keying the chains written before links were keyed)."""
        return self._link_keys[0]

    def link(self, prev_hash: str, fields: Mapping[str, Any]) -> str:
        return link_hash(self._link_keys[0], prev_hash, fields)

    def holds(self, prev_hash: str, fields: Mapping[str, Any], digest: str) -> bool:
        """Whether ``digest`` is the link of ``fields`` after ``prev_hash`` under any configured key."""
        return any(hmac.compare_digest(link_hash(key, prev_hash, fields), digest) for key in self._link_keys)

    @property
    def public_key(self) -> str:
        """The current anchor-signing public key, base64url (raw 32 bytes)."""
        return next(iter(self._public_keys))

    def sign(self, payload: bytes) -> str:
        """An Ed25519 signature of ``payload`` under the current key, base64url."""
        return _b64(self._signing_keys[0].sign(payload))

    def signed_here(self, payload: bytes, *, public_key: str, signature: str) -> bool:
        """Whether ``signature`` is this installation's signature (current or earlier key) of ``payload``."""
        verifier: Ed25519PublicKey | None = self._public_keys.get(public_key)
        if verifier is None:
            return False
        try:
            verifier.verify(_unb64(signature), payload)
        except (InvalidSignature, ValueError):
            return False
        return True
