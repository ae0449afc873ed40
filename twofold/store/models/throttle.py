from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class ThrottleFailure(Base):
    """One failed attempt against a throttle key, when Redis is not configured."""

    __tablename__ = "throttle_failures"
    __table_args__ = (Index("ix_throttle_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
