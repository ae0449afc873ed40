from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class RememberedBrowser(Base):
    """A browser whose second factor was proven, trusted to skip the code for a while.

    Only a keyed hash of the cookie's token is stored, so a copy of the table lets
    no one skip a code. The row, not the cookie, decides: revoking it (user, admin,
    password change, 2FA off) takes effect on the next sign-in in every process.
    Trust ends at ``expires_at`` (set at grant from the practice policy, 30 days at
    most), after the policy's idle days without use, or at ``revoked_at``.
    """

    __tablename__ = "remembered_browsers"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
