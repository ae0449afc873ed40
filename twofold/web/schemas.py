"""Pydantic schemas of the JSON API, by family."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SignInRequest(Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class SecondFactorRequest(Strict):
    method: str = Field(min_length=1, max_length=32)
    code: str = Field(min_length=1, max_length=64)
    remember_browser: bool = False


class TotpConfirm(Strict):
    enrollment_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)


class ReauthRequest(Strict):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=64)


class SignedInPublic(BaseModel):
    status: Literal["signed_in"] = "signed_in"


class SecondFactorRequiredPublic(BaseModel):
    status: Literal["second_factor_required"] = "second_factor_required"
    flow_id: str
    methods: list[str]


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


class TotpEnrollmentPublic(BaseModel):
    enrollment_id: str
    secret: str
    otpauth_uri: str
    qr_svg: str


class StatusPublic(BaseModel):
    status: str


class ErrorPublic(BaseModel):
    error: str
    message: str
