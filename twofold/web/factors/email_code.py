"""Codes by email as a sign-in method: add it (an emailed code confirms the address), remove it,
and "email me a code" to confirm a security change with; the Security page's forms and
``/api/v1/me/email-method``, ``/api/v1/me/email-code``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from twofold import errors as core
from twofold.web.account.security import reauth_field, security_page
from twofold.web.deps import Context, Enrolling, ServicesDep, SignedIn
from twofold.web.errors import status_for
from twofold.web.factors.recovery_codes import recovery_codes_page
from twofold.web.factors.schemas import CodeRequest, CodeSentPublic, EmailMethodAddedPublic
from twofold.web.rendering import HOME, back_home, render, set_cookies
from twofold.web.schemas import (
    ERRORS,
    CodeField,
    ErrorPublic,
    PasswordField,
    ReauthRequest,
    Responses,
    StatusPublic,
    require_password_and_code,
)

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)

SENDING: Responses = {
    409: {"model": ErrorPublic, "description": "Not possible in this state"},
    429: {"model": ErrorPublic, "description": "Send limit (one per 30 s, 5 per hour per account); see retry_after"},
    503: {"model": ErrorPublic, "description": "`email_not_sent`: the first try failed; retried in the background"},
}


def code_sent(sent) -> JSONResponse:
    """202: where an emailed code went, how long it works, and when another may be asked for."""
    body = CodeSentPublic(sent_to=sent.sent_to, expires_in=sent.expires_in, resend_after=sent.resend_after)
    return JSONResponse(body.model_dump(), status_code=202)


# -- JSON ------------------------------------------------------------------------------------


@api.post(
    "/me/email-method",
    status_code=202,
    response_model=CodeSentPublic,
    responses={
        403: {"model": ErrorPublic, "description": "Not allowed by the practice, or an admin without an app"},
        **SENDING,
    },
    summary="Start adding email codes: email a confirming code",
)
def start_email_method(active: Enrolling, services: ServicesDep, context: Context):
    return code_sent(services.email_enrollment.start_email_method(user=active.user, context=context))


@api.post(
    "/me/email-method/confirm",
    response_model=EmailMethodAddedPublic,
    response_model_exclude_none=True,
    summary="Add email codes with the emailed code",
    description="When this turns 2FA on, the answer carries the account's 10 backup codes, shown this once.",
)
def confirm_email_method(
    body: CodeRequest, request: Request, active: Enrolling, services: ServicesDep, context: Context
):
    added = services.email_enrollment.confirm_email_method(
        user=active.user, code=body.code, context=context, session_id=active.session_id
    )
    answer = JSONResponse(
        EmailMethodAddedPublic(recovery_codes=added.recovery_codes or None).model_dump(exclude_none=True)
    )
    return set_cookies(request, answer, session_token=added.session_token)


@api.delete(
    "/me/email-method",
    response_model=StatusPublic,
    responses={409: {"model": ErrorPublic, "description": "Not added, or the last method besides backup codes"}},
    summary="Remove email codes",
    description="Needs the password and a code (app, backup or emailed).",
)
def remove_email_method(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    services.email_enrollment.remove_email_method(
        user=active.user, password=body.password, code=body.code, context=context
    )
    return StatusPublic(status="removed")


@api.post(
    "/me/email-code",
    status_code=202,
    response_model=CodeSentPublic,
    responses=SENDING,
    summary="Email a code to confirm a security change with",
    description="For accounts with email codes: the code then works as the `code` of a re-authentication.",
)
def send_reauth_code(active: SignedIn, services: ServicesDep, context: Context):
    return code_sent(services.email_enrollment.send_reauth_code(user=active.user, context=context))


# -- pages ------------------------------------------------------------------------------------


@pages.post("/account/security/email-method")
def start_email_method_form(request: Request, active: Enrolling, services: ServicesDep, context: Context):
    try:
        services.email_enrollment.start_email_method(user=active.user, context=context)
    except core.DeliveryFailed as exc:
        return render(
            request, "email_method_confirm.html", {"user": active.user, "session": active, "error": exc.message}, 503
        )
    except core.TwofoldError as exc:
        # Not allowed, already added, or an admin without an app: nothing on the page to correct.
        return render(
            request,
            "error.html",
            {"title": "Email codes not added", "message": exc.message, "back": HOME, "session": active},
            status_for(exc),
        )
    return render(request, "email_method_confirm.html", {"user": active.user, "session": active})


@pages.post("/account/security/email-method/confirm")
def confirm_email_method_form(
    request: Request,
    active: Enrolling,
    services: ServicesDep,
    context: Context,
    code: CodeField = "",
):
    try:
        added = services.email_enrollment.confirm_email_method(
            user=active.user, code=code, context=context, session_id=active.session_id
        )
    except (core.InvalidCode, core.InvalidInput, core.Throttled) as exc:
        return render(
            request,
            "email_method_confirm.html",
            {"user": active.user, "session": active, "error": exc.message},
            status_for(exc),
        )
    except core.TwofoldError as exc:
        return security_page(request, active, services, status=status_for(exc), form="email", error=exc.message)
    if added.recovery_codes:
        return recovery_codes_page(
            request,
            active,
            services,
            added.recovery_codes,
            headline="Two-factor authentication is on, with codes by email. Save your backup codes now.",
            session_token=added.session_token,
        )
    return back_home("email_added")


@pages.post("/account/security/email-method/remove")
def remove_email_method_form(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: PasswordField = "",
    code: CodeField = "",
):
    try:
        require_password_and_code(password, code)
        services.email_enrollment.remove_email_method(user=active.user, password=password, code=code, context=context)
    except core.TwofoldError as exc:
        return security_page(
            request,
            active,
            services,
            status=status_for(exc),
            form="email_remove",
            error=exc.message,
            field=reauth_field(exc, password),
        )
    return back_home("email_removed")


@pages.post("/account/security/email-code")
def send_reauth_code_form(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    try:
        services.email_enrollment.send_reauth_code(user=active.user, context=context)
    except core.TwofoldError as exc:
        return security_page(request, active, services, status=status_for(exc), form="email", error=exc.message)
    return back_home("reauth_code_sent")
