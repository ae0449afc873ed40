"""Server-rendered pages: sign-in, the code step and Account Settings > Security."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.crypto.otp import normalize_code
from twofold.web.deps import SESSION_COOKIE, Context, Enrolling, MaybeSignedIn, ServicesDep, SignedIn, apply_browser_cookie, cookie_secure
from twofold.web.sections_recovery import recovery_sections
from twofold.web.trust_context import remember_option, security_context

router = APIRouter(include_in_schema=False)

HOME = "/account/security"

NOTICES = {
    "enabled": "Two-factor authentication is on. From now on, sign-in asks for a code from your app.",
    "disabled": "Two-factor authentication is off. Sign-in now asks for your password only.",
    "signed_out": "You are signed out.",
}


def render(request: Request, name: str, context: dict | None = None, status: int = 200):
    from twofold.web.app import render as _render

    return _render(request, name, context, status)


def safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no protocol-relative '//' trick.

    Control characters are refused too: URL parsers drop tabs and newlines, so
    "/\t/evil.example" would otherwise become "//evil.example" on the way.
    """
    if (
        not target or not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 500
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return HOME
    return target


def _with_session(request: Request, response, token: str):
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=cookie_secure(request), path="/")
    return response


@router.get("/")
def index(active: MaybeSignedIn):
    return RedirectResponse(HOME if active else "/sign-in", status_code=303)


@router.get("/sign-in")
def sign_in_page(request: Request, active: MaybeSignedIn, next: str | None = None, notice: str | None = None):
    if active:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "sign_in.html", {"next": safe_next(next) if next else "", "notice": NOTICES.get(notice or "")})


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    services: ServicesDep,
    context: Context,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
):
    form = {"email": email, "next": next}
    if not email.strip() or not password:
        return render(request, "sign_in.html", {**form, "error": "Enter your email and your password."}, 422)
    try:
        result = services.sign_in.start_sign_in(
            email=email, password=password, context=context, return_to=safe_next(next), remembered_cookies=request.cookies
        )
    except (core.InvalidCredentials, core.Throttled) as exc:
        return render(request, "sign_in.html", {**form, "error": exc.message}, 429 if isinstance(exc, core.Throttled) else 401)
    if result.status == "signed_in":
        target = safe_next(next)
        if services.enforcement.requirement_for(result.user_id).outstanding:
            target = f"/account/two-factor?next={quote(target, safe='')}"  # the practice wants 2FA: enrol first
        response = _with_session(request, RedirectResponse(target, status_code=303), result.session_token)
    else:
        response = RedirectResponse(f"/sign-in/{result.flow_id}/code", status_code=303)
    apply_browser_cookie(request, response, result.browser_cookie)
    return response


@router.get("/sign-in/{flow_id}/code")
def code_page(request: Request, flow_id: str, services: ServicesDep):
    try:
        _flow, user, methods = services.sign_in.flow_methods(flow_id)
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, 410 if isinstance(exc, core.FlowExpired) else 404)
    remember_days = services.accounts.policy_for(user).remember_browser_days
    return render(request, "code.html", {"flow_id": flow_id, "methods": methods, "remember_days": remember_days})


@router.post("/sign-in/{flow_id}/code")
def code_submit(
    request: Request,
    flow_id: str,
    services: ServicesDep,
    context: Context,
    code: Annotated[str, Form(max_length=64)] = "",
    method: Annotated[str, Form(max_length=32)] = "totp",
    remember_browser: Annotated[str, Form(max_length=8)] = "",
):
    remember = remember_browser in ("1", "on", "true")
    try:
        result = services.sign_in.verify_second_factor(
            flow_id=flow_id, method=method, code=code, context=context, remember_browser=remember
        )
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, 410)
    except core.Throttled as exc:
        return render(request, "code.html", {**code_page_context(services, flow_id, method, error=exc.message), **remember_option(services, flow_id, remember)}, 429)
    except (core.InvalidCode, core.InvalidInput, core.MethodNotAvailable) as exc:
        return render(request, "code.html", {**code_page_context(services, flow_id, method, error=exc.message), **remember_option(services, flow_id, remember)}, 401)
    response = _with_session(request, RedirectResponse(safe_next(result.return_to), status_code=303), result.session_token)
    apply_browser_cookie(request, response, result.browser_cookie)
    return response


def code_page_context(services, flow_id: str, method: str, **extra) -> dict:
    """The code page again, offering every method of the flow, with ``method``'s form in front."""
    try:
        _flow, _user, methods = services.sign_in.flow_methods(flow_id)
    except core.TwofoldError:
        methods = [method]
    return {"flow_id": flow_id, "methods": methods, "active_method": method, **extra}


@router.post("/sign-out")
def sign_out(request: Request, services: ServicesDep, context: Context):
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services.accounts.sign_out(token=token, context=context)
    response = RedirectResponse("/sign-in?notice=signed_out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
    return response


@router.get("/account/security")
def security_page(request: Request, active: SignedIn, services: ServicesDep, notice: str | None = None):
    status = services.accounts.two_factor_status(active.user)
    return render(
        request,
        "security.html",
        {
            "user": active.user, "status": status, "notice": NOTICES.get(notice or ""), "session": active,
            **security_context(request, active, services), **recovery_sections(services, active.user),
        },
    )


@router.post("/account/security/totp")
def totp_setup(request: Request, active: Enrolling, services: ServicesDep, context: Context):
    try:
        enrollment = services.accounts.start_totp_enrollment(user=active.user, context=context)
    except core.Conflict as exc:
        return render(request, "error.html", {"title": "Already on", "message": exc.message, "back": HOME}, 409)
    return render(request, "totp_setup.html", {"user": active.user, "enrollment": enrollment, "session": active})


@router.post("/account/security/totp/confirm")
def totp_confirm(
    request: Request,
    active: Enrolling,
    services: ServicesDep,
    context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
):
    error = None
    if normalize_code(code) is None:
        error = "Enter the 6-digit code your app shows now (digits only)."
    else:
        try:
            result = services.accounts.confirm_totp(user=active.user, enrollment_id=enrollment_id, code=code, context=context)
            if result.recovery_codes:
                return render_recovery_codes(request, active, result.recovery_codes, headline=NOTICES["enabled"])
            return RedirectResponse(f"{HOME}?notice={result.status}", status_code=303)
        except core.NotFound as exc:
            return render(request, "error.html", {"title": "Set-up expired", "message": exc.message, "back": HOME}, 404)
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    enrollment = services.accounts.pending_totp_enrollment(user=active.user, enrollment_id=enrollment_id)
    if enrollment is None:
        return render(request, "error.html", {"title": "Set-up expired", "message": "Start the set-up again.", "back": HOME}, 404)
    replacing = services.accounts.two_factor_status(active.user).enabled
    return render(
        request, "totp_setup.html",
        {"user": active.user, "enrollment": enrollment, "error": error, "session": active, "replacing": replacing}, 400,
    )


@router.post("/account/security/totp/disable")
def totp_disable(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
):
    error = None
    if not password or not code.strip():
        error = "Enter your password and the 6-digit code your app shows now (or a backup code)."
    else:
        try:
            services.accounts.disable_two_factor(user=active.user, password=password, code=code, context=context)
            return RedirectResponse(f"{HOME}?notice=disabled", status_code=303)
        except (core.InvalidCode, core.InvalidCredentials, core.Throttled, core.Conflict) as exc:
            error = exc.message
    status = services.accounts.two_factor_status(active.user)
    return render(
        request, "security.html",
        {
            "user": active.user, "status": status, "disable_error": error, "session": active,
            **security_context(request, active, services), **recovery_sections(services, active.user),
        },
        400,
    )


def render_recovery_codes(request: Request, active, codes: list[str], *, headline: str | None = None, error: str | None = None, status: int = 200):
    """The page that shows a new set of backup codes, once (they are kept only as hashes)."""
    from twofold.core.security_mail import format_when

    services = request.app.state.services
    return render(
        request, "recovery_codes.html",
        {
            "user": active.user, "session": active, "codes": codes, "headline": headline, "error": error,
            "made_at": format_when(services.clock.now()),
        },
        status,
    )

