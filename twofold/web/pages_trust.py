"""Pages: sessions, remembered browsers and password change in Account Settings > Security (issue 3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.core.sessions import ActiveSession
from twofold.web import pages
from twofold.web.deps import SESSION_COOKIE, Context, RowId, ServicesDep, SignedIn, apply_browser_cookie, cookie_secure
from twofold.web.trust_context import security_context

router = APIRouter(include_in_schema=False)

HOME = pages.HOME

# The notices these pages redirect with, shown by the sign-in and security pages.
pages.NOTICES.update(
    {
        "timed_out": "You were signed out after a period without activity. Sign in again to continue where you were.",
        "signed_out_everywhere": "You are signed out everywhere: on this browser and on every other.",
        "password_changed": "Your password is changed. Every other session was signed out and every remembered browser forgotten.",
        "session_ended": "That session is signed out.",
        "other_sessions_ended": "Every other session is signed out.",
        "browser_forgotten": "That browser is forgotten: its next sign-in asks for a code.",
        "browsers_forgotten": "Every remembered browser is forgotten: each asks for a code at its next sign-in.",
    }
)


def _security_page(request: Request, active: ActiveSession, services, status: int, **extra):
    context = {
        "user": active.user,
        "status": services.accounts.two_factor_status(active.user),
        "session": active,
        **security_context(request, active, services),
        **extra,
    }
    return pages.render(request, "security.html", context, status)


def _back(notice: str) -> RedirectResponse:
    return RedirectResponse(f"{HOME}?notice={notice}", status_code=303)


def _signed_out(request: Request, notice: str) -> RedirectResponse:
    response = RedirectResponse(f"/sign-in?notice={notice}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
    return response


@router.post("/account/security/password")
def change_password(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    new_password_confirm: Annotated[str, Form(max_length=1024)] = "",
):
    if not current_password or not new_password:
        return _security_page(request, active, services, 422, password_error="Enter your current password and a new one.")
    if new_password != new_password_confirm:
        return _security_page(request, active, services, 422, password_error="The two new passwords are not the same.")
    try:
        services.account_security.change_password(
            active=active, current_password=current_password, new_password=new_password, context=context
        )
    except (core.InvalidCredentials, core.InvalidInput, core.Throttled) as exc:
        status = 429 if isinstance(exc, core.Throttled) else 401 if isinstance(exc, core.InvalidCredentials) else 422
        return _security_page(request, active, services, status, password_error=exc.message)
    return _back("password_changed")


@router.post("/account/security/sessions/{session_id}/end")
def end_session(request: Request, session_id: RowId, active: SignedIn, services: ServicesDep, context: Context):
    if services.account_security.end_session(active=active, session_id=session_id, context=context):
        return _signed_out(request, "signed_out")
    return _back("session_ended")


@router.post("/account/security/sessions/end-others")
def end_other_sessions(active: SignedIn, services: ServicesDep, context: Context):
    services.account_security.end_sessions(active=active, context=context)
    return _back("other_sessions_ended")


@router.post("/account/security/sessions/end-all")
def sign_out_everywhere(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    services.account_security.end_sessions(active=active, context=context, include_current=True)
    return _signed_out(request, "signed_out_everywhere")


@router.post("/account/security/remembered-browsers/{browser_id}/forget")
def forget_browser(request: Request, browser_id: RowId, active: SignedIn, services: ServicesDep, context: Context):
    cookie = services.account_security.forget_browser(
        user=active.user, browser_id=browser_id, cookies=request.cookies, context=context
    )
    response = _back("browser_forgotten")
    apply_browser_cookie(request, response, cookie)
    return response


@router.post("/account/security/remembered-browsers/forget-all")
def forget_browsers(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    _count, cookie = services.account_security.forget_browsers(user=active.user, context=context)
    response = _back("browsers_forgotten")
    apply_browser_cookie(request, response, cookie)
    return response
