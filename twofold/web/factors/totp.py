"""The authenticator app (TOTP): set it up, confirm it, replace it, and turn 2FA off, as the
Security page's forms and ``/api/v1/me/totp``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from twofold import errors as core
from twofold.crypto.otp import normalize_code
from twofold.web.account.security import reauth_field, security_page
from twofold.web.deps import Context, Enrolling, ServicesDep, SignedIn
from twofold.web.errors import status_for
from twofold.web.factors.recovery_codes import recovery_codes_page
from twofold.web.factors.schemas import TotpConfirm, TotpConfirmedPublic, TotpEnrollmentPublic
from twofold.web.rendering import HOME, NOTICES, render, set_cookies
from twofold.web.schemas import ERRORS, CodeField, PasswordField, ReauthRequest, StatusPublic, require_password_and_code

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)


def enrollment_public(enrollment) -> TotpEnrollmentPublic:
    """A new key, answered once: to show as a QR code or to type into the app."""
    return TotpEnrollmentPublic(
        enrollment_id=enrollment.enrollment_id,
        secret=enrollment.secret,
        otpauth_uri=enrollment.otpauth_uri,
        qr_svg=enrollment.qr_svg,
    )


def _require_digits(code: str) -> None:
    if normalize_code(code) is None:
        raise core.InvalidInput("A code is 6 digits (0-9) from your authenticator app.")


# -- JSON ------------------------------------------------------------------------------------


@api.post("/me/totp", response_model=TotpEnrollmentPublic, summary="Start setting up an authenticator app")
def start_totp(active: Enrolling, services: ServicesDep, context: Context):
    return enrollment_public(services.totp_enrollment.start_totp_enrollment(user=active.user, context=context))


@api.post(
    "/me/totp/confirm",
    response_model=TotpConfirmedPublic,
    response_model_exclude_none=True,
    summary="Confirm the app with its first code",
    description="When this turns 2FA on, the answer carries the account's 10 backup codes, shown this once.",
)
def confirm_totp(body: TotpConfirm, request: Request, active: Enrolling, services: ServicesDep, context: Context):
    _require_digits(body.code)
    result = services.totp_enrollment.confirm_totp(
        user=active.user,
        enrollment_id=body.enrollment_id,
        code=body.code,
        context=context,
        session_id=active.session_id,
    )
    answer = JSONResponse(
        TotpConfirmedPublic(status=result.status, recovery_codes=result.recovery_codes or None).model_dump(
            exclude_none=True
        )
    )
    return set_cookies(request, answer, session_token=result.session_token)


@api.delete(
    "/me/totp",
    response_model=StatusPublic,
    summary="Turn two-factor authentication off",
    description="Needs the password and a code: from the app, a backup code, or an emailed code.",
)
def disable_totp(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    services.accounts.disable_two_factor(user=active.user, password=body.password, code=body.code, context=context)
    return StatusPublic(status="disabled")


@api.post(
    "/me/totp/replace",
    response_model=TotpEnrollmentPublic,
    summary="Start replacing the authenticator app",
    description="Needs the password and a code (a backup code when the phone is lost). The old app keeps "
    "working until the new one is confirmed with `POST /me/totp/confirm`, which answers `replaced`.",
)
def replace_totp(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    enrollment = services.totp_enrollment.start_totp_replacement(
        user=active.user, password=body.password, code=body.code, context=context
    )
    return enrollment_public(enrollment)


# -- pages ------------------------------------------------------------------------------------


@pages.post("/account/security/totp")
def totp_setup(request: Request, active: Enrolling, services: ServicesDep, context: Context):
    try:
        enrollment = services.totp_enrollment.start_totp_enrollment(user=active.user, context=context)
    except core.Conflict as exc:
        return render(request, "error.html", {"title": "Already on", "message": exc.message, "back": HOME}, 409)
    return render(request, "totp_setup.html", {"user": active.user, "enrollment": enrollment, "session": active})


@pages.post("/account/security/totp/confirm")
def totp_confirm(
    request: Request,
    active: Enrolling,
    services: ServicesDep,
    context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "",
    code: CodeField = "",
):
    error = None
    if normalize_code(code) is None:
        error = "Enter the 6-digit code your app shows now (digits only)."
    else:
        try:
            result = services.totp_enrollment.confirm_totp(
                user=active.user, enrollment_id=enrollment_id, code=code, context=context, session_id=active.session_id
            )
            if result.recovery_codes:
                return recovery_codes_page(
                    request,
                    active,
                    services,
                    result.recovery_codes,
                    headline=NOTICES["enabled"],
                    session_token=result.session_token,
                )
            return RedirectResponse(f"{HOME}?notice={result.status}", status_code=303)
        except core.NotFound as exc:
            return render(request, "error.html", {"title": "Set-up expired", "message": exc.message, "back": HOME}, 404)
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    enrollment = services.totp_enrollment.pending_totp_enrollment(user=active.user, enrollment_id=enrollment_id)
    if enrollment is None:
        return render(
            request, "error.html", {"title": "Set-up expired", "message": "Start the set-up again.", "back": HOME}, 404
        )
    replacing = services.accounts.two_factor_status(active.user).enabled
    return render(
        request,
        "totp_setup.html",
        {"user": active.user, "enrollment": enrollment, "error": error, "session": active, "replacing": replacing},
        400,
    )


@pages.post("/account/security/totp/disable")
def totp_disable(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: PasswordField = "",
    code: CodeField = "",
):
    try:
        if not password or not code.strip():
            raise core.InvalidInput("Enter your password and the 6-digit code your app shows now (or a backup code).")
        services.accounts.disable_two_factor(user=active.user, password=password, code=code, context=context)
    except core.TwofoldError as exc:  # a malformed code too: the form again, never a dead end
        # This form has answered 400 for every refusal since it was made; kept so that no client sees a change.
        return security_page(
            request,
            active,
            services,
            status=400,
            form="disable",
            error=exc.message,
            field=reauth_field(exc, password),
        )
    return RedirectResponse(f"{HOME}?notice=disabled", status_code=303)


@pages.post("/account/security/totp/replace")
def replace_totp_form(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: PasswordField = "",
    code: CodeField = "",
):
    try:
        require_password_and_code(password, code)
        enrollment = services.totp_enrollment.start_totp_replacement(
            user=active.user, password=password, code=code, context=context
        )
    except core.TwofoldError as exc:
        return security_page(
            request,
            active,
            services,
            status=status_for(exc),
            form="replace",
            error=exc.message,
            field=reauth_field(exc, password),
        )
    return render(
        request,
        "totp_setup.html",
        {"user": active.user, "enrollment": enrollment, "session": active, "replacing": True},
    )
