from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    UniqueConstraint,
    select,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from twofold.store.models.base import Base, UTCDateTime

ROLES = ("admin", "provider", "staff")


class Practice(Base):
    """A medical practice: its members and its security policy."""

    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Policy. Defaults are the product's defaults; see core/policy.py.
    require_two_factor: Mapped[bool] = mapped_column(Boolean, default=False)
    required_roles: Mapped[list] = mapped_column(JSON, default=list)
    grace_days: Mapped[int] = mapped_column(Integer, default=7)
    two_factor_required_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The optional second factors the practice allows, by kind. A new practice gets every
    # registered factor (core/account.py asks the factor registry); the store names none.
    allowed_methods: Mapped[list] = mapped_column(JSON, default=list)
    remember_browser_days: Mapped[int] = mapped_column(Integer, default=30)
    remember_browser_idle_days: Mapped[int] = mapped_column(Integer, default=14)
    idle_timeout_minutes: Mapped[int] = mapped_column(Integer, default=15)
    session_max_hours: Mapped[int] = mapped_column(Integer, default=12)
    # The idle timeout of a session started on a shared workstation (never longer than idle_timeout_minutes).
    shared_workstation_idle_minutes: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # Where the practice is (an IANA name): pages and emails show its local time; storage and the API stay UTC.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Passkeys: may members sign in with a passkey alone (no password), and which roles
    # must use a phishing-resistant method (a security key or passkey) once they have one.
    passkey_sign_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    phishing_resistant_roles: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    phishing_resistant_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    members: Mapped[list[User]] = relationship(back_populates="practice")


class User(Base):
    """A provider, staff member or admin of one practice.

    An address is unique within a practice, and among claimed accounts (those with a chosen
    password, ``password_changed_at`` set): one person, one account. A member an admin added
    who has not chosen a password yet is pending, and a pending row may share its address
    with an account in another practice (an invitation that account's owner may accept).
    Every lookup by address goes through ``account_by_email``, which picks the claimed account.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'provider', 'staff')", name="role"),
        UniqueConstraint("practice_id", "email", name="uq_users_practice_id_email"),
        Index(
            "uq_users_claimed_email",
            "email",
            unique=True,
            sqlite_where=text("password_changed_at IS NOT NULL"),
            postgresql_where=text("password_changed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    practice: Mapped[Practice] = relationship(back_populates="members", lazy="joined")


def account_by_email(email: str) -> Select[User]:
    """The account that signs in with ``email`` (already normalised): the claimed one if there is one.

    Pending member rows (no password chosen yet) may share an address across practices; they
    come after the claimed account, and only then by age, so the answer is one row and always
    the same one.
    """
    return select(User).where(User.email == email).order_by(User.password_changed_at.is_(None), User.id).limit(1)
