"""The provider's ID token signing keys: RS256 (RFC 7518 §3.3) key pairs made with joserfc.

The private half is sealed with the secret key (crypto/secret_box) before it reaches the
database; the public half is published at the JWKS endpoint under its RFC 7638 thumbprint as
``kid``. Rotating makes a new key the signer and keeps the old one in JWKS until every ID token
it signed has expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from threading import Lock
from typing import Any

from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto.secret_box import SecretBox
from twofold.store.db import Database
from twofold.store.models import OidcSigningKey

ALGORITHM = "RS256"
KEY_BITS = 2048


def _context(kid: str) -> str:
    return f"oidc-signing-key:{kid}"


@dataclass(kw_only=True)
class SigningKeys:
    db: Database
    clock: Clock
    box: SecretBox
    audit: AuditLog
    # How long an ID token lives: a retired key stays published this long after its retirement.
    id_token_lifetime: timedelta
    _opened: dict[str, RSAKey] = field(default_factory=dict, repr=False)
    _lock: Lock = field(default_factory=Lock, repr=False)

    def ensure(self) -> str:
        """The signing key's ``kid``, creating the first key when there is none (first start)."""
        with self.db.reading() as s:
            current = self._current_row(s)
            if current is not None:
                return current.kid
        with self.db.transaction() as s:
            current = self._current_row(s)
            if current is not None:  # another process made it meanwhile
                return current.kid
            return self._create(s).kid

    def signer(self, s: Session) -> tuple[str, RSAKey]:
        """The current private key and its ``kid``, read in the caller's writing transaction (made
        there when there is none yet); the opened key is cached per process."""
        row = self._current_row(s) or self._create(s)
        with self._lock:
            key = self._opened.get(row.kid)
            if key is None:
                plain = self.box.open(row.private_jwk_sealed, context=_context(row.kid))
                key = RSAKey.import_key(json.loads(plain))
                self._opened[row.kid] = key
        return row.kid, key

    def public_keys(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517 §5): the current key and every retired one still in use."""
        cutoff = self.clock.now() - self.id_token_lifetime
        with self.db.reading() as s:
            rows = s.scalars(
                select(OidcSigningKey)
                .where(or_(OidcSigningKey.retired_at.is_(None), OidcSigningKey.retired_at > cutoff))
                .order_by(OidcSigningKey.id.desc())
            ).all()
        return {"keys": [{**row.public_jwk, "use": "sig", "alg": ALGORITHM} for row in rows]}

    def verification_keys(self) -> list[OctKey | RSAKey | ECKey | OKPKey]:
        """Every key this provider ever signed with (public halves): for an ``id_token_hint``, which may be old."""
        with self.db.reading() as s:
            rows = s.scalars(select(OidcSigningKey)).all()
        return [RSAKey.import_key(row.public_jwk) for row in rows]

    def rotate(self, *, context: RequestContext) -> str:
        """Make a new signing key; the old one is retired (still published until its tokens expire)."""
        now = self.clock.now()
        with self.db.transaction() as s:
            old = list(s.scalars(select(OidcSigningKey).where(OidcSigningKey.retired_at.is_(None))))
            for row in old:
                row.retired_at = now
            created = self._create(s)
            self.audit.record(
                s,
                EventTag.OIDC_SIGNING_KEY_ROTATED,
                context=context,
                practice_id=None,
                details={"kid": created.kid, "retired": [row.kid for row in old]},
            )
            return created.kid

    def _current_row(self, s: Session) -> OidcSigningKey | None:
        return s.scalars(
            select(OidcSigningKey).where(OidcSigningKey.retired_at.is_(None)).order_by(OidcSigningKey.id.desc())
        ).first()

    def _create(self, s: Session) -> OidcSigningKey:
        key = RSAKey.generate_key(KEY_BITS, private=True, auto_kid=True)
        kid = key.kid
        if kid is None:
            raise RuntimeError("joserfc made a key without a kid")
        private = json.dumps(key.as_dict(private=True)).encode()
        row = OidcSigningKey(
            kid=kid,
            private_jwk_sealed=self.box.seal(private, context=_context(kid)),
            public_jwk=key.as_dict(private=False),
            created_at=self.clock.now(),
            retired_at=None,
        )
        s.add(row)
        s.flush()
        return row
