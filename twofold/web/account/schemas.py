"""Pydantic schemas of the account routes: /me, sessions, remembered browsers and the password."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from twofold.web.schemas import Strict


class TwoFactorPublic(BaseModel):
    enabled: bool
    methods: list[str]
    recovery_codes_left: int = 0


class PracticePublic(BaseModel):
    id: int
    name: str


class MePublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    practice: PracticePublic
    two_factor: TwoFactorPublic
    session_expires_at: str


class SessionPublic(BaseModel):
    id: int
    label: str = Field(description='Readable browser and system, e.g. "Chrome on Windows"')
    created_at: str
    last_seen_at: str
    expires_at: str = Field(description="When it ends unless used again: the earlier of the idle and the absolute end")
    ip: str | None
    current: bool = Field(description="True for the session making this request")


class SessionListPublic(BaseModel):
    sessions: list[SessionPublic]


class SessionStatePublic(BaseModel):
    id: int
    expires_at: str
    seconds_left: int
    idle_timeout_seconds: int
    warn_before_seconds: int


class RememberedBrowserPublic(BaseModel):
    id: int
    label: str = Field(description='Readable browser and system, e.g. "Chrome on Windows"')
    created_at: str = Field(description="When it was remembered")
    last_used_at: str
    expires_at: str = Field(
        description="When the trust ends unless used again (idle days) or at the latest (policy days)"
    )
    ip: str | None = Field(description="Address it was remembered from")
    last_ip: str | None = Field(description="Address it was last used from")
    current: bool = Field(description="True for the browser making this request")


class RememberedBrowserListPublic(BaseModel):
    remembered_browsers: list[RememberedBrowserPublic]


class RevokedPublic(BaseModel):
    status: Literal["revoked"] = "revoked"
    count: int = Field(description="How many were revoked")
    signed_out: bool = Field(default=False, description="True when this request's own session ended")


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordChangedPublic(BaseModel):
    status: Literal["changed"] = "changed"
    sessions_ended: int
    browsers_forgotten: int
