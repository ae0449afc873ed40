"""Admin alerts: what happened to a member that their practice's admins are told about, each
admin's choice of which alerts and how, and the daily digests already sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class Alert(Base):
    """One alert about a member of a practice, written in the transaction of the event it reports.

    ``details`` holds counts only (backup codes left, seconds locked): never a code, secret or token.
    Acknowledging is for the whole practice: once one admin has dealt with it, the others see that.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_practice_id_at", "practice_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AlertPreference(Base):
    """How one admin gets one kind of alert: ``immediate`` (an email each), ``digest`` (one a day) or
    ``off``. No row means the default, immediate."""

    __tablename__ = "alert_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertDigest(Base):
    """A daily digest sent (or found empty) for one admin and one day of the practice's calendar:
    the row is claimed before the email goes, so a day is never sent twice."""

    __tablename__ = "alert_digests"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))  # the practice's local date, YYYY-MM-DD
    alerts: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
