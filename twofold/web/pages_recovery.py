"""Pages: backup codes, email codes, the lost-phone path (issue 4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse

from twofold import errors as core
from twofold.core.security_mail import format_when
from twofold.web.deps import Context, Enrolling, ServicesDep, SignedIn
from twofold.web.pages import HOME, NOTICES, code_page_context, render, render_recovery_codes
from twofold.web.sections_recovery import recovery_sections

router = APIRouter(include_in_schema=False)

NOTICES.update(
    {
        "added": "Your authenticator app is added. Sign-in can now use the codes it shows.",
        "replaced": "Your new authenticator app is confirmed. Codes from the old app no longer work.",
        "codes_saved": "Your backup codes are saved. Each one works once; keep them away from your phone.",
        "email_added": "Email codes are added. At sign-in, choose \"Email me a code\" when you do not have your app.",
        "email_removed": "Email codes are removed from your sign-in methods.",
        "reauth_code_sent": "We emailed you an 8-digit code. Enter it with your password to confirm the change; it works for 10 minutes.",
        "undelivered_dismissed": "Noted. We will show new delivery problems here.",
    }
)

CodeField = Annotated[str, Form(max_length=64)]
PasswordField = Annotated[str, Form(max_length=1024)]


def _security_page(request: Request, active, services, *, status: int = 400, **extra):
    return render(
        request,
        "security.html",
        {
            "user": active.user, "session": active, "status": services.accounts.two_factor_status(active.user),
            **recovery_sections(services, active.user), **extra,
        },
        status,
    )


def _error_status(exc: core.TwofoldError) -> int:
    from twofold.web.errors import status_for

    return status_for(exc)


# -- the code step -------------------------------------------------------------------


@router.post("/sign-in/{flow_id}/email-code")
def sign_in_email_code(request: Request, flow_id: str, services: ServicesDep, context: Context):
    try:
        sent = services.sign_in.begin_challenge(flow_id=flow_id, method="email", context=context)
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, _error_status(exc))
    except (core.Throttled, core.DeliveryFailed, core.MethodNotAvailable) as exc:
        return render(request, "code.html", code_page_context(services, flow_id, "email", error=exc.message), _error_status(exc))
    notice = f"We emailed a code to {sent.sent_to}. It works once, for 10 minutes."
    return render(request, "code.html", code_page_context(services, flow_id, "email", notice=notice))


@router.get("/help/lost-phone")
def lost_phone(request: Request):
    return render(request, "lost_phone.html", {})


# -- backup codes --------------------------------------------------------------------


@router.post("/account/security/recovery-codes")
def regenerate_recovery_codes(
    request: Request, active: SignedIn, services: ServicesDep, context: Context,
    password: PasswordField = "", code: CodeField = "",
):
    if not password or not code.strip():
        return _security_page(request, active, services, status=422, regen_error="Enter your password and a code.")
    try:
        codes = services.recovery.regenerate_recovery_codes(user=active.user, password=password, code=code, context=context)
    except core.TwofoldError as exc:
        return _security_page(request, active, services, status=_error_status(exc), regen_error=exc.message)
    return render_recovery_codes(
        request, active, codes, headline="New backup codes are ready. Your earlier codes no longer work."
    )


def _codes_from(values: list[str]) -> list[str]:
    return [value for value in values if len(value) <= 32][:20]


@router.post("/account/security/recovery-codes/download")
def download_recovery_codes(
    request: Request, active: SignedIn, services: ServicesDep, code: Annotated[list[str], Form()] = [],  # noqa: B006
):
    """The codes just shown, as a text file. The page sends them back (the server keeps only hashes);
    only the account's own unused codes are written out."""
    codes = services.recovery.unused_recovery_codes(user=active.user, codes=_codes_from(code))
    if not codes:
        return render(request, "error.html", {
            "title": "Nothing to download", "back": HOME, "session": active,
            "message": "These backup codes are no longer valid. Generate new codes in your security settings.",
        }, 410)
    lines = [
        f"Twofold backup codes for {active.user.email} ({active.user.practice.name})",
        f"Made {format_when(services.clock.now())}. Each code works once, in place of a code from your app.",
        "Keep this file somewhere safe, away from your phone.",
        "",
        *codes,
        "",
    ]
    return PlainTextResponse(
        "\n".join(lines),
        headers={"Content-Disposition": 'attachment; filename="twofold-backup-codes.txt"'},
    )


@router.post("/account/security/recovery-codes/saved")
def recovery_codes_saved(
    request: Request, active: SignedIn, services: ServicesDep,
    code: Annotated[list[str], Form()] = [],  # noqa: B006
    saved: Annotated[str, Form(max_length=8)] = "",
):
    if saved == "yes":
        return RedirectResponse(f"{HOME}?notice=codes_saved", status_code=303)
    codes = services.recovery.unused_recovery_codes(user=active.user, codes=_codes_from(code))
    if not codes:
        return RedirectResponse(HOME, status_code=303)
    return render_recovery_codes(
        request, active, codes, status=422,
        error="Tick the box to confirm you have saved the codes: you will not see them again.",
    )


# -- email codes as a method ------------------------------------------------------------


@router.post("/account/security/email-method")
def start_email_method(request: Request, active: Enrolling, services: ServicesDep, context: Context):
    try:
        services.recovery.start_email_method(user=active.user, context=context)
    except core.DeliveryFailed as exc:
        return render(request, "email_method_confirm.html", {"user": active.user, "session": active, "error": exc.message}, 503)
    except core.TwofoldError as exc:
        return render(
            request, "error.html",
            {"title": "Email codes not added", "message": exc.message, "back": HOME, "session": active},
            _error_status(exc),
        )
    return render(request, "email_method_confirm.html", {"user": active.user, "session": active})


@router.post("/account/security/email-method/confirm")
def confirm_email_method(
    request: Request, active: Enrolling, services: ServicesDep, context: Context, code: CodeField = "",
):
    try:
        added = services.recovery.confirm_email_method(user=active.user, code=code, context=context)
    except (core.InvalidCode, core.InvalidInput, core.Throttled) as exc:
        return render(
            request, "email_method_confirm.html", {"user": active.user, "session": active, "error": exc.message},
            _error_status(exc),
        )
    except core.TwofoldError as exc:
        return _security_page(request, active, services, status=_error_status(exc), email_error=exc.message)
    if added.recovery_codes:
        return render_recovery_codes(
            request, active, added.recovery_codes,
            headline="Two-factor authentication is on, with codes by email. Save your backup codes now.",
        )
    return RedirectResponse(f"{HOME}?notice=email_added", status_code=303)


@router.post("/account/security/email-method/remove")
def remove_email_method(
    request: Request, active: SignedIn, services: ServicesDep, context: Context,
    password: PasswordField = "", code: CodeField = "",
):
    if not password or not code.strip():
        return _security_page(request, active, services, status=422, email_remove_error="Enter your password and a code.")
    try:
        services.recovery.remove_email_method(user=active.user, password=password, code=code, context=context)
    except core.TwofoldError as exc:
        return _security_page(request, active, services, status=_error_status(exc), email_remove_error=exc.message)
    return RedirectResponse(f"{HOME}?notice=email_removed", status_code=303)


@router.post("/account/security/email-code")
def send_reauth_code(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    try:
        services.recovery.send_reauth_code(user=active.user, context=context)
    except core.TwofoldError as exc:
        return _security_page(request, active, services, status=_error_status(exc), email_error=exc.message)
    return RedirectResponse(f"{HOME}?notice=reauth_code_sent", status_code=303)


# -- the authenticator app -------------------------------------------------------------


@router.post("/account/security/totp/replace")
def replace_totp(
    request: Request, active: SignedIn, services: ServicesDep, context: Context,
    password: PasswordField = "", code: CodeField = "",
):
    if not password or not code.strip():
        return _security_page(request, active, services, status=422, replace_error="Enter your password and a code.")
    try:
        enrollment = services.recovery.start_totp_replacement(
            user=active.user, password=password, code=code, context=context
        )
    except core.TwofoldError as exc:
        return _security_page(request, active, services, status=_error_status(exc), replace_error=exc.message)
    return render(
        request, "totp_setup.html", {"user": active.user, "enrollment": enrollment, "session": active, "replacing": True}
    )


# -- mail that did not arrive ---------------------------------------------------------------


@router.post("/account/security/undelivered/dismiss")
def dismiss_undelivered(active: SignedIn, services: ServicesDep):
    services.recovery.dismiss_undelivered_mail(active.user)
    return RedirectResponse(f"{HOME}?notice=undelivered_dismissed", status_code=303)
