"""Pydantic schemas of the second factors' routes: the authenticator app, backup codes and email codes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from twofold.web.schemas import Strict


class TotpConfirm(Strict):
    enrollment_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)


class TotpEnrollmentPublic(BaseModel):
    enrollment_id: str
    secret: str
    otpauth_uri: str
    qr_svg: str


class CodeRequest(Strict):
    code: str = Field(min_length=1, max_length=64)


class TotpConfirmedPublic(BaseModel):
    status: str = Field(description="`enabled` (2FA turned on), `added` (2FA was on by email) or `replaced`")
    recovery_codes: list[str] | None = Field(
        default=None, description="The 10 backup codes, present only when this turned 2FA on. Shown once."
    )


class RecoveryCodesPublic(BaseModel):
    recovery_codes: list[str] = Field(
        description="10 new backup codes (`xxxx-xxxx`); every earlier one stopped working"
    )


class CodeSentPublic(BaseModel):
    status: str = "sent"
    sent_to: str
    expires_in: int = Field(description="seconds the code works")
    resend_after: int = Field(description="seconds before another code may be asked for")


class EmailMethodAddedPublic(BaseModel):
    status: str = "added"
    recovery_codes: list[str] | None = Field(
        default=None, description="The 10 backup codes, present only when this turned 2FA on. Shown once."
    )
