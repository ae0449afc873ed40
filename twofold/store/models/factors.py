from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
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
