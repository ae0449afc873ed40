"""Practice administration: set-up links and enrolment demands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class SetupLink(Base):
    """A one-time link that takes a member through password and two-factor set-up.

    Only a keyed hash of the link's token is stored. A link is live while it is
    neither used, revoked (a newer link revokes the older ones) nor past
    ``expires_at`` (72 hours after it was sent).
    """

    __tablename__ = "setup_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class EnrolmentDemand(Base):
    """A member who must set up two-factor authentication by ``due_at``, whatever the policy.

    Written by an admin reset (due at once: the member lost their phone and must
    enrol a new one at the next sign-in). Cleared once the member has a method again.
    """

    __tablename__ = "enrolment_demands"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
