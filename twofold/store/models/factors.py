from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class TotpCredential(Base):
    """An authenticator app. Pending until a first code confirms it.

    ``secret_sealed`` is AES-GCM ciphertext bound to this row's id; the key lives
    only in configuration. ``last_used_step`` is the RFC 6238 §5.2 replay guard:
    a code is accepted only for a step after it, set by one conditional UPDATE.
    """

    __tablename__ = "totp_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_sealed: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class WebAuthnCredential(Base):
    """A security key or passkey (a WebAuthn public-key credential) of a member.

    Nothing here is secret: the public key verifies signatures, it cannot make one.
    ``credential_id`` is the authenticator's id for it (base64url), unique across
    every account, so an assertion names its one owner. ``user_handle`` is the random
    handle given to the authenticator for the member (the same for all their keys);
    a passkey returns it at sign-in. ``sign_count`` is the last signature counter
    seen (WebAuthn §6.1.1).
    """

    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    user_handle: Mapped[str] = mapped_column(String(128))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(64))
    # Backup eligibility (§6.1.3): False for a key that cannot leave its authenticator (a YubiKey),
    # True for a synced passkey; None when the authenticator did not say.
    device_bound: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    discoverable: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    transports: Mapped[list] = mapped_column(JSON, default=list)
    aaguid: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebAuthnChallenge(Base):
    """A challenge given to a browser for one WebAuthn ceremony: random, single use, at most 5 minutes.

    ``purpose`` is ``register`` (adding a key), ``sign_in`` (the second step of the
    sign-in flow ``flow_id``), ``reauth`` (confirming a security change) or ``passkey``
    (signing in with a passkey alone: no user yet). Only a keyed hash of the challenge
    is stored; a response is matched to its row by that hash and the row is deleted as
    it is used. ``rp_id`` and ``origin`` are those the ceremony must be answered for.
    """

    __tablename__ = "webauthn_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=True)
    flow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rp_id: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(255))
    user_verification: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
