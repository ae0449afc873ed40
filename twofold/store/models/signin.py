from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class SignInFlow(Base):
    """A sign-in between the password and the second factor. It grants nothing.

    ``id`` is a keyed hash of the flow id the client holds, and ``binding_hash`` a keyed
    hash of the flow cookie set on the browser that passed the password step: a copy of
    the database, or a flow id seen in a log or a URL, finishes no sign-in.
    """

    __tablename__ = "sign_in_flows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    return_to: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # the page asked for
    binding_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class UserSession(Base):
    """A signed-in browser or client. Only a keyed hash of its id is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When the member last proved who they are here (password, and second factor when asked), and how:
    # RFC 8176 method references, space-separated ("pwd otp mfa"). Apps may ask for a recent proof.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    amr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The shared workstation the session started on (its shorter idle timeout applies); None elsewhere.
    workstation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
