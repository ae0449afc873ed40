"""OpenID Connect provider rows: clients, signing keys, subjects, pending authorisations,
authorisation codes and tokens.

No credential is stored readable: client secrets, codes and tokens as keyed hashes, the
private signing keys sealed with the secret key (crypto/secret_box).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class OidcClient(Base):
    """An app's OpenID Connect registration: where codes may go, and how the app proves itself.

    The app (its practice, name, allowed roles, enabled) is the ``apps`` row; removing the app
    removes its client, codes and tokens.
    """

    __tablename__ = "oidc_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # None for a public client (PKCE only); else the keyed hash of the secret, shown once.
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    # OpenID Connect Back-Channel Logout: where Twofold posts a logout token when a session ends.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OidcSigningKey(Base):
    """An RS256 key pair. The newest unretired one signs; retired ones stay in JWKS until ``retired_at``
    plus the ID token lifetime, so every token they signed can still be checked."""

    __tablename__ = "oidc_signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_jwk_sealed: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OidcSubject(Base):
    """The stable, opaque ``sub`` of a member: random, never the email or the row id."""

    __tablename__ = "oidc_subjects"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True)


class OidcAuthorizationRequest(Base):
    """An app's authorisation request waiting for the member to sign in (ten minutes at most).

    The browser carries only its id through the sign-in pages. ``login_after`` is set when the app
    asked for a fresh sign-in (``prompt=login``, ``max_age``): only a sign-in after it completes it.
    """

    __tablename__ = "oidc_authorization_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    login_after: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OidcAuthorizationCode(Base):
    """A code handed to an app: single use, 60 seconds, bound to the client, redirect URI and PKCE."""

    __tablename__ = "oidc_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(500))
    nonce: Mapped[str | None] = mapped_column(String(500), nullable=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OidcToken(Base):
    """An access token and, with ``offline_access``, its refresh token; keyed hashes only.

    Tokens from one code share a ``family``: a refresh rotates to a new row of the family, and a
    rotated refresh token presented again (or the code presented again) revokes the whole family.
    """

    __tablename__ = "oidc_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Indexed: a session's end looks up the apps it gave tokens to (back-channel logout).
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    family: Mapped[str] = mapped_column(String(32), index=True)
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("oidc_authorization_codes.id", ondelete="SET NULL"), nullable=True, index=True
    )
    scope: Mapped[str] = mapped_column(String(500))
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refresh_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime())
    amr: Mapped[str] = mapped_column(String(64))


class OidcLogoutNotice(Base):
    """A back-channel logout owed to an app: a Twofold session it holds tokens from has ended.

    Holds what the logout token will say (``sub``, ``sid``: both already given to the app), never a
    token; the token is signed when it is sent. Tried until the app answers 200, on a widening
    schedule; ``given_up_at`` after the last try.
    """

    __tablename__ = "oidc_logout_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oidc_clients.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
