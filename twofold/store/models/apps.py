"""A practice's web apps that Twofold protects (forward-auth for a reverse proxy, OpenID Connect)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from twofold.store.models.base import Base, UTCDateTime


class App(Base):
    """One web app of a practice, and who may use it.

    ``url`` is where members open it (``https://files.riverside.example``); ``host`` is its
    lower-cased host and non-default port, which is how a proxy's request is matched to the
    app, so one address belongs to one app. An app signed in to only by OpenID Connect has
    neither. ``allowed_roles`` lists the roles that may use it; ``bypass_paths`` are path
    prefixes the proxy may serve without a sign-in; ``reauth_minutes``, when set, asks for
    the password and code again once the session's last sign-in is older than that.
    """

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    host: Mapped[str | None] = mapped_column(String(262), unique=True, nullable=True)
    allowed_roles: Mapped[list] = mapped_column(JSON, default=list)
    bypass_paths: Mapped[list] = mapped_column(JSON, default=list)
    reauth_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppAccess(Base):
    """A member's first use of an app in one session: audited once, then only looked up."""

    __tablename__ = "app_accesses"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    app_id: Mapped[int] = mapped_column(
        ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True, autoincrement=False, index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
