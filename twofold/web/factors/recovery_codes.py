"""Backup codes: new codes (the Security page's form and ``POST /api/v1/me/recovery-codes``), and
the page that shows a new set once, with its download and "I have saved them"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from twofold import errors as core
from twofold.core.security_mail import format_when
from twofold.core.sessions import ActiveSession
from twofold.web.account.security import reauth_field, security_page
from twofold.web.deps import Context, ServicesDep, SignedIn
from twofold.web.errors import status_for
from twofold.web.factors.schemas import RecoveryCodesPublic
from twofold.web.rendering import HOME, back_home, render, set_cookies
from twofold.web.schemas import ERRORS, CodeField, PasswordField, ReauthRequest, require_password_and_code

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)


def recovery_codes_page(
    request: Request,
    active: ActiveSession,
    services,
    codes: list[str],
    *,
    headline: str | None = None,
    error: str | None = None,
    status: int = 200,
    hold: bool = True,
    session_token: str | None = None,
) -> Response:
    """The page that shows a new set of backup codes, once (they are kept only as hashes).

    The set is also kept sealed for this session alone, so the page's download and "I saved them"
    work from it: the forms send no codes, and codes a client sends are never looked up.

    ``session_token``: turning 2FA on gave this browser a new session; the set is kept for that
    one (the old one has ended) and the page sets its cookie.
    """
    held_in = active.session_id
    if session_token:
        renewed = services.sessions.resolve(session_token, touch=False)
        held_in = renewed.session_id if renewed is not None else held_in
    if hold:
        services.recovery_code_enrollment.hold_shown(session_id=held_in, user=active.user, codes=codes)
    page = render(
        request,
        "recovery_codes.html",
        {
            "user": active.user,
            "session": active,
            "codes": codes,
            "headline": headline,
            "error": error,
            "made_at": format_when(services.clock.now(), active.policy.time_zone),
        },
        status,
    )
    return set_cookies(request, page, session_token=session_token) if session_token else page


def signed_in_with_first_codes(
    request: Request, services, *, session_token: str, codes: list[str], headline: str
) -> Response:
    """A member just signed in (``session_token``, set as the cookie) who gets their first backup
    codes now: the codes page, in place of the redirect a sign-in otherwise answers."""
    active = services.sessions.resolve(session_token, touch=False)
    if active is None:  # the session cannot end within its own request; guard the type
        raise core.NotAuthenticated()
    page = recovery_codes_page(request, active, services, codes, headline=headline)
    return set_cookies(request, page, session_token=session_token)


@api.post(
    "/me/recovery-codes",
    response_model=RecoveryCodesPublic,
    summary="Generate new backup codes",
    description="Needs the password and a code (app, backup or emailed). Every earlier backup code stops working.",
)
def regenerate_recovery_codes(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    codes = services.recovery_code_enrollment.regenerate_recovery_codes(
        user=active.user, password=body.password, code=body.code, context=context
    )
    return RecoveryCodesPublic(recovery_codes=codes)


@pages.post("/account/security/recovery-codes")
def regenerate_recovery_codes_form(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: PasswordField = "",
    code: CodeField = "",
):
    try:
        require_password_and_code(password, code)
        codes = services.recovery_code_enrollment.regenerate_recovery_codes(
            user=active.user, password=password, code=code, context=context
        )
    except core.TwofoldError as exc:
        return security_page(
            request,
            active,
            services,
            status=status_for(exc),
            form="regen",
            error=exc.message,
            field=reauth_field(exc, password),
        )
    return recovery_codes_page(
        request, active, services, codes, headline="New backup codes are ready. Your earlier codes no longer work."
    )


@pages.post("/account/security/recovery-codes/download")
def download_recovery_codes(request: Request, active: SignedIn, services: ServicesDep):
    """The codes just shown in this session, as a text file (those still unused)."""
    codes = services.recovery_code_enrollment.shown_codes(session_id=active.session_id, user=active.user)
    if not codes:
        return render(
            request,
            "error.html",
            {
                "title": "Nothing to download",
                "back": HOME,
                "session": active,
                "message": "These backup codes are no longer valid. Generate new codes in your security settings.",
            },
            410,
        )
    lines = [
        f"Twofold backup codes for {active.user.email} ({active.user.practice.name})",
        f"Made {format_when(services.clock.now(), active.policy.time_zone)}. Each code works once, in place of a code from your app.",
        "Keep this file somewhere safe, away from your phone.",
        "",
        *codes,
        "",
    ]
    return PlainTextResponse(
        "\n".join(lines),
        headers={"Content-Disposition": 'attachment; filename="twofold-backup-codes.txt"'},
    )


@pages.post("/account/security/recovery-codes/saved")
def recovery_codes_saved(
    request: Request, active: SignedIn, services: ServicesDep, saved: Annotated[str, Form(max_length=8)] = ""
):
    if saved == "yes":
        services.recovery_code_enrollment.forget_shown(session_id=active.session_id)
        return back_home("codes_saved")
    codes = services.recovery_code_enrollment.shown_codes(session_id=active.session_id, user=active.user)
    if not codes:
        return RedirectResponse(HOME, status_code=303)
    return recovery_codes_page(
        request,
        active,
        services,
        codes,
        hold=False,
        status=422,
        error="Tick the box to confirm you have saved the codes: you will not see them again.",
    )
