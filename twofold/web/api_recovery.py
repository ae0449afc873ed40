"""JSON API: Backup codes, email codes and the lost-phone path (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from twofold.web.api import ERRORS
from twofold.web.deps import Context, Enrolling, ServicesDep, SignedIn
from twofold.web.schemas import ErrorPublic, ReauthRequest, StatusPublic, TotpEnrollmentPublic
from twofold.web.schemas_recovery import CodeRequest, CodeSentPublic, EmailMethodAddedPublic, RecoveryCodesPublic

router = APIRouter(prefix="/api/v1", responses=ERRORS)

SENDING = {
    409: {"model": ErrorPublic, "description": "Not possible in this state"},
    429: {"model": ErrorPublic, "description": "Send limit (one per 30 s, 5 per hour per account); see retry_after"},
    503: {"model": ErrorPublic, "description": "`email_not_sent`: the first try failed; retried in the background"},
}


def _sent(sent) -> JSONResponse:
    body = CodeSentPublic(sent_to=sent.sent_to, expires_in=sent.expires_in, resend_after=sent.resend_after)
    return JSONResponse(body.model_dump(), status_code=202)


@router.post(
    "/sign-in/{flow_id}/email-code",
    status_code=202,
    response_model=CodeSentPublic,
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}, **SENDING},
    summary="Email an 8-digit sign-in code",
    description="Sends a code valid 10 minutes, once; a newer code replaces it. Only when the flow's `methods` "
    "lists `email`. Complete with `second-factor` and `{\"method\": \"email\", \"code\"}`.",
)
def sign_in_email_code(flow_id: str, services: ServicesDep, context: Context):
    return _sent(services.sign_in.begin_challenge(flow_id=flow_id, method="email", context=context))


@router.post(
    "/me/recovery-codes",
    response_model=RecoveryCodesPublic,
    summary="Generate new backup codes",
    description="Needs the password and a code (app, backup or emailed). Every earlier backup code stops working.",
)
def regenerate_recovery_codes(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    codes = services.recovery.regenerate_recovery_codes(
        user=active.user, password=body.password, code=body.code, context=context
    )
    return RecoveryCodesPublic(recovery_codes=codes)


@router.post(
    "/me/email-method",
    status_code=202,
    response_model=CodeSentPublic,
    responses={403: {"model": ErrorPublic, "description": "Not allowed by the practice, or an admin without an app"}, **SENDING},
    summary="Start adding email codes: email a confirming code",
)
def start_email_method(active: Enrolling, services: ServicesDep, context: Context):
    return _sent(services.recovery.start_email_method(user=active.user, context=context))


@router.post(
    "/me/email-method/confirm",
    response_model=EmailMethodAddedPublic,
    response_model_exclude_none=True,
    summary="Add email codes with the emailed code",
    description="When this turns 2FA on, the answer carries the account's 10 backup codes, shown this once.",
)
def confirm_email_method(body: CodeRequest, active: Enrolling, services: ServicesDep, context: Context):
    added = services.recovery.confirm_email_method(user=active.user, code=body.code, context=context)
    return EmailMethodAddedPublic(recovery_codes=added.recovery_codes or None)


@router.delete(
    "/me/email-method",
    response_model=StatusPublic,
    responses={409: {"model": ErrorPublic, "description": "Not added, or the last method besides backup codes"}},
    summary="Remove email codes",
    description="Needs the password and a code (app, backup or emailed).",
)
def remove_email_method(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    services.recovery.remove_email_method(user=active.user, password=body.password, code=body.code, context=context)
    return StatusPublic(status="removed")


@router.post(
    "/me/email-code",
    status_code=202,
    response_model=CodeSentPublic,
    responses=SENDING,
    summary="Email a code to confirm a security change with",
    description="For accounts with email codes: the code then works as the `code` of a re-authentication.",
)
def send_reauth_code(active: SignedIn, services: ServicesDep, context: Context):
    return _sent(services.recovery.send_reauth_code(user=active.user, context=context))


@router.post(
    "/me/totp/replace",
    response_model=TotpEnrollmentPublic,
    summary="Start replacing the authenticator app",
    description="Needs the password and a code (a backup code when the phone is lost). The old app keeps "
    "working until the new one is confirmed with `POST /me/totp/confirm`, which answers `replaced`.",
)
def replace_totp(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    enrollment = services.recovery.start_totp_replacement(
        user=active.user, password=body.password, code=body.code, context=context
    )
    return TotpEnrollmentPublic(
        enrollment_id=enrollment.enrollment_id, secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri,
        qr_svg=enrollment.qr_svg,
    )
