"""Backup codes, email codes, the email method and undelivered security mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class RecoveryCode(Base):
    """One backup code. Only its keyed hash is stored; ``used_at`` is set once, atomically.

    A code is consumed by ``UPDATE ... SET used_at WHERE id = ? AND used_at IS NULL``:
    of two requests racing with the same code, exactly one changes the row.
    """

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_id_code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ShownRecoveryCodes(Base):
    """The batch of backup codes just shown to one session, sealed, for its download and "I saved them" pages.

    The pages work from this, never from codes a client sends back (which would let anyone test
    guessed codes). It belongs to one session (gone with it), is replaced by a newer batch, is
    deleted once the member says they saved the codes, and is not read after ``expires_at``.
    """

    __tablename__ = "shown_recovery_codes"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sealed_codes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EmailCode(Base):
    """An emailed one-time code: for a sign-in or re-authentication, or to confirm the address.

    Issuing a code deletes the earlier ones of the same purpose, so only the newest
    can ever be accepted. Only a keyed hash of the code is stored.
    """

    __tablename__ = "email_codes"
    __table_args__ = (Index("ix_email_codes_user_id_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EmailMethod(Base):
    """Email codes as a second-factor method, for the address that was confirmed.

    It counts only while ``address`` is still the account's address: a changed
    address must be confirmed again.
    """

    __tablename__ = "email_methods"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    address: Mapped[str] = mapped_column(String(320))
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UndeliveredMail(Base):
    """A message to a member that could not be delivered after every retry (shown on their Security page)."""

    __tablename__ = "undelivered_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer)
