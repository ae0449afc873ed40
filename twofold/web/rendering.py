"""How the web layer answers people: the one template environment and ``render``, the notices
pages show after a redirect, Twofold's cookies, and safe redirect targets.

Every page route renders through ``render`` and sets cookies through ``set_cookies``, so a
template helper, a cookie attribute or the rule for where a redirect may go is written once.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TypeVar

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from twofold.core.remembered import BrowserCookie
from twofold.store.models import ROLES

# -- templates ------------------------------------------------------------------------------

HOME = "/account/security"

ROLE_LABELS = {"admin": "Admin", "provider": "Provider", "staff": "Staff"}


def when(moment: datetime | None) -> str:
    """A moment as the admin pages and set-up links show it: ``05 Mar 2025, 14:02 UTC``."""
    return moment.strftime("%d %b %Y, %H:%M UTC") if moment else "—"


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(when=when, role_labels=ROLE_LABELS, roles=ROLES)


def render(request: Request, name: str, context: dict | None = None, status: int = 200) -> Response:
    """The page ``name`` (a path under templates/) with ``context``, answered with ``status``."""
    context = {"method_labels": request.app.state.services.factors.labels(), **(context or {})}  # the registry's
    return templates.TemplateResponse(request, name, context, status_code=status)


# -- notices: what a page says after a redirect (``?notice=<key>``) -------------------------------

# Shown by the sign-in page and the Security page.
NOTICES = {
    # sign-in and sign-out
    "signed_out": "You are signed out.",
    "timed_out": "You were signed out after a period without activity. Sign in again to continue where you were.",
    "signed_out_everywhere": "You are signed out everywhere: on this browser and on every other.",
    # two-factor authentication
    "enabled": "Two-factor authentication is on. From now on, sign-in asks for a code from your app.",
    "disabled": "Two-factor authentication is off. Sign-in now asks for your password only.",
    "added": "Your authenticator app is added. Sign-in can now use the codes it shows.",
    "replaced": "Your new authenticator app is confirmed. Codes from the old app no longer work.",
    "codes_saved": "Your backup codes are saved. Each one works once; keep them away from your phone.",
    "email_added": 'Email codes are added. At sign-in, choose "Email me a code" when you do not have your app.',
    "email_removed": "Email codes are removed from your sign-in methods.",
    "reauth_code_sent": "We emailed you an 8-digit code. Enter it with your password to confirm the change; it works for 10 minutes.",
    "webauthn_added": "Your security key or passkey is added. At sign-in, choose it after your password.",
    "webauthn_renamed": "The key is renamed.",
    "webauthn_removed": "The security key or passkey is removed: it no longer signs you in.",
    "undelivered_dismissed": "Noted. We will show new delivery problems here.",
    # password, sessions and remembered browsers
    "password_changed": "Your password is changed. Every other session was signed out and every remembered browser forgotten.",
    "session_ended": "That session is signed out.",
    "other_sessions_ended": "Every other session is signed out.",
    "browser_forgotten": "That browser is forgotten: its next sign-in asks for a code.",
    "browsers_forgotten": "Every remembered browser is forgotten: each asks for a code at its next sign-in.",
}

# Shown by the practice administration pages (a member's page, the policy page).
PRACTICE_NOTICES = {
    "added": "Member added. They were emailed a link to choose a password and set up two-factor authentication.",
    "role": "Role changed.",
    "deactivated": "Member deactivated: their sessions and remembered browsers have ended.",
    "reactivated": "Member reactivated.",
    "link_sent": "Set-up link sent. It works once, for 72 hours; any earlier link no longer works.",
    "enrolled": "Two-factor authentication is on for this member.",
    "reset": "Two-factor authentication was reset. The member was signed out, emailed, and will set it up again at their next sign-in.",
    "policy": "Policy saved. It applies from each member's next request.",
}


def back_home(notice: str) -> RedirectResponse:
    """To the Security page, which then says ``NOTICES[notice]``."""
    return RedirectResponse(f"{HOME}?notice={notice}", status_code=303)


def signed_out(request: Request, notice: str) -> Response:
    """To the sign-in page, which then says ``NOTICES[notice]``, with the session cookie deleted."""
    return set_cookies(request, RedirectResponse(f"/sign-in?notice={notice}", status_code=303), end_session=True)


# -- safe redirects ---------------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no protocol-relative '//' trick.

    Control characters are refused too: URL parsers drop tabs and newlines, so
    "/\t/evil.example" would otherwise become "//evil.example" on the way.
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or len(target) > 500
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return HOME
    return target


def link_base(request: Request) -> str:
    """Where emailed links point: TWOFOLD_PUBLIC_ORIGIN, or the address this request came to."""
    return (request.app.state.services.settings.public_origin or str(request.base_url)).rstrip("/")


# -- cookies -------------------------------------------------------------------------------------------

SESSION_COOKIE = "twofold_session"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})


# set_cookies hands back the response it was given, with its own type (JSONResponse, ...).
ResponseT = TypeVar("ResponseT", bound=Response)


def set_cookies(
    request: Request,
    response: ResponseT,
    *,
    session_token: str | None = None,
    end_session: bool = False,
    browser: BrowserCookie | None = None,
) -> ResponseT:
    """Set or delete Twofold's cookies on ``response``; returns it.

    ``session_token`` starts a session cookie (no Max-Age: it ends with the browser, and
    the server ends the session sooner by its own clock); ``end_session`` deletes it;
    ``browser`` (a ``BrowserCookie`` from the core) sets a remembered-browser cookie with
    the trust's lifetime as Max-Age, so the browser drops it when the server would, or
    deletes it. Every cookie is HttpOnly, SameSite=Lax, path /, and Secure outside
    plain-HTTP localhost.
    """
    secure = cookie_secure(request)
    if session_token is not None:
        response.set_cookie(SESSION_COOKIE, session_token, httponly=True, samesite="lax", secure=secure, path="/")
    elif end_session:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
    if browser is not None:
        if browser.value is None:
            response.delete_cookie(browser.name, path="/", httponly=True, samesite="lax", secure=secure)
        else:
            response.set_cookie(
                browser.name,
                browser.value,
                max_age=browser.max_age,
                path="/",
                httponly=True,
                samesite="lax",
                secure=secure,
            )
    return response


def cookie_secure(request: Request) -> bool:
    """Secure cookies everywhere but plain-HTTP localhost in development."""
    if request.app.state.services.settings.production:
        return True
    if request.scope.get("scheme") != "http":
        return True
    return request_hostname(request) not in LOCAL_HOSTS


def request_hostname(request: Request) -> str:
    """The host the client asked for (Host header, else the server address), without the port.

    What ``request.url.hostname`` gives, without building and parsing a URL on
    every sign-in.
    """
    host = request.headers.get("host")
    if not host:
        server = request.scope.get("server")
        return str(server[0]).lower() if server else ""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host[1:]
    name, _, _port = host.partition(":")
    return name
