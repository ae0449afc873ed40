"""How the web layer answers people: the one template environment and ``render``, the notices
pages show after a redirect, Twofold's cookies, and safe redirect targets.

Every page route renders through ``render`` and sets cookies through ``set_cookies``, so a
template helper, a cookie attribute or the rule for where a redirect may go is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from twofold.audit import EVENT_LABELS, event_label
from twofold.clock import local
from twofold.core.remembered import BrowserCookie
from twofold.errors import InvalidInput
from twofold.store.models import ROLES

# -- templates ------------------------------------------------------------------------------

HOME = "/account/security"

ROLE_LABELS = {"admin": "Admin", "provider": "Provider", "staff": "Staff"}


def page_time_zone(context) -> str:
    """The zone a page shows times in: the page's ``time_zone``, else the signed-in member's practice's."""
    zone_name = context.get("time_zone")
    if zone_name:
        return str(zone_name)
    policy = getattr(context.get("session"), "policy", None)
    return getattr(policy, "time_zone", None) or "UTC"


@pass_context
def when(context, moment: datetime | None, seconds: bool = False) -> str:
    """A moment as pages show it, in the practice's local time with its zone: ``05 Mar 2025, 09:02 EST``."""
    if not moment:
        return "—"
    shown = local(moment, page_time_zone(context))
    return f"{shown:%d %b %Y, %H:%M{':%S' if seconds else ''} %Z}"


@pass_context
def day(context, moment: datetime | None) -> str:
    """A date as people write it, in the practice's zone: ``3 Jan 2027``."""
    if not moment:
        return "—"
    shown = local(moment, page_time_zone(context))
    return f"{shown.day} {shown:%b %Y}"


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(
    when=when, day=day, role_labels=ROLE_LABELS, roles=ROLES, event_label=event_label, event_labels=EVENT_LABELS
)


def render(request: Request, name: str, context: dict | None = None, status: int = 200) -> Response:
    """The page ``name`` (a path under templates/) with ``context``, answered with ``status``."""
    context = {"method_labels": request.app.state.services.factors.labels(), **(context or {})}  # the registry's
    return templates.TemplateResponse(request, name, context, status_code=status)


# -- notices: what a page says after a redirect (``?notice=<key>``) -------------------------------

# Shown by the sign-in page and the Security page.
NOTICES = {
    # sign-in and sign-out
    "signed_out": "You are signed out.",
    "moved_practice": "Your account now belongs to the practice that invited you. You were signed out everywhere: sign in again to continue.",
    "timed_out": "You were signed out after a period without activity. Sign in again to continue where you were.",
    "signed_out_everywhere": "You are signed out everywhere: on this browser and on every other.",
    "unlocked": "Sign-in is unlocked on this browser. Sign in with your email and password.",
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
    "added": "Member added. They were emailed a link that works once, for 72 hours, to set up their sign-in.",
    "role": "Role changed. The member was signed out everywhere and signs in again with the new role.",
    "unlocked": "Sign-in unlocked: the member's failed passwords and codes are forgotten.",
    "deactivated": "Member deactivated: their sessions and remembered browsers have ended.",
    "reactivated": "Member reactivated.",
    "link_sent": "Set-up link sent. It works once, for 72 hours; any earlier link no longer works.",
    "enrolled": "Two-factor authentication is on for this member.",
    "reset": "Two-factor authentication was reset. The member was signed out, emailed, and will set it up again at their next sign-in.",
    "policy": "Policy saved. It applies from each member's next request.",
    "app_added": "App added. Put it behind your proxy as Protect an app describes; members can then open it.",
    "app_saved": "App saved. The proxy's next request follows the new settings.",
    "app_removed": "App removed. Its address is now refused at the proxy.",
    "workstation_marked": "This browser is now a shared workstation. Sign-ins here never remember the browser.",
    "workstation_renamed": "Workstation renamed.",
    "workstation_unmarked": "Workstation unmarked. Its browser is an ordinary browser again from its next sign-in.",
    "alerts": "Alert choices saved.",
    "alert_dismissed": "Alert dismissed for every admin of the practice.",
}


def back_home(notice: str) -> RedirectResponse:
    """To the Security page, which then says ``NOTICES[notice]``."""
    return RedirectResponse(f"{HOME}?notice={notice}", status_code=303)


def signed_out(request: Request, notice: str) -> Response:
    """To the sign-in page, which then says ``NOTICES[notice]``, with the session cookie deleted."""
    return set_cookies(request, RedirectResponse(f"/sign-in?notice={notice}", status_code=303), end_session=True)


# -- safe redirects ---------------------------------------------------------------------------------


# The longest page a sign-in returns to (an app's address with its query included); the sign-in
# flow stores it (sign_in_flows.return_to). Longer ones land on the home page.
MAX_RETURN_URL = 2048


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
        or len(target) > MAX_RETURN_URL
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return HOME
    return target


def return_candidate(target: str | None) -> str:
    """Where a sign-in may go back to, as far as can be told before knowing who signs in: a path on
    this site (``safe_next``), or a plain http(s) URL an app's proxy sent (``rd``), checked again by
    ``return_target`` once the member is known. Anything else is the home page."""
    if target and target.startswith(("https://", "http://")):
        try:
            parts = urlsplit(target)
            parts.port  # noqa: B018 - raises for a malformed port
        except ValueError:
            return HOME
        if (
            len(target) <= MAX_RETURN_URL
            and parts.hostname
            and parts.username is None
            and "\\" not in target
            and not any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target)
        ):
            return target
        return HOME
    return safe_next(target)


def return_target(request: Request, target: str | None, user_id: int) -> str:
    """Where the sign-in of ``user_id`` goes: a path on this site, Twofold's own origin, or an address of an
    enabled app of the member's practice. Anything else (another host, an app of another practice, a
    disabled app) lands on the home page: no open redirect."""
    target = return_candidate(target)
    if target.startswith("/"):
        return target
    origin = request.app.state.services.settings.public_origin or str(request.base_url)
    if target.startswith(origin.rstrip("/") + "/") or target == origin.rstrip("/"):
        return target
    if request.app.state.services.apps.may_return_to(user_id=user_id, url=target):
        return target
    return HOME


def go_to(request: Request, target: str) -> Response:
    """Where a sign-in form's answer sends the browser: a 303 on this site; to an app's address, a page
    that moves on by itself. The form pages' CSP (``form-action 'self'``) also governs the redirects
    that follow a form, so a 303 to another host would be blocked by the browser."""
    if target.startswith("/"):
        return RedirectResponse(target, status_code=303)
    return render(request, "continue.html", {"target": target})


def may_be_return_target(request: Request, url: str) -> bool:
    """Before anyone signs in: whether ``url`` is Twofold's own origin or the address of some enabled app."""
    origin = (request.app.state.services.settings.public_origin or str(request.base_url)).rstrip("/")
    return url == origin or url.startswith(origin + "/") or request.app.state.services.apps.is_app_address(url)


def link_base(request: Request) -> str:
    """Where emailed links point: ``Settings.resolved_public_origin()``, never the request's ``Host``."""
    return request.app.state.services.settings.resolved_public_origin()


# -- cookies -------------------------------------------------------------------------------------------

SESSION_COOKIE = "twofold_session"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})
# RFC 6265bis cookie prefixes: a browser keeps a "__Host-" cookie only if it is Secure, Path=/
# and has no Domain, so no other host (a sibling subdomain, say) can plant or overwrite it; a
# "__Secure-" cookie (the session, when TWOFOLD_COOKIE_DOMAIN shares it) must at least be Secure,
# so a plain-HTTP page cannot plant one.
HOST_PREFIX = "__Host-"
SECURE_PREFIX = "__Secure-"


class DuplicateSessionCookie(InvalidInput):
    code = "duplicate_session_cookie"
    message = (
        "This browser sent two Twofold session cookies, so we cannot tell which is yours. "
        "They have been cleared: sign in again."
    )


# set_cookies hands back the response it was given, with its own type (JSONResponse, ...).
ResponseT = TypeVar("ResponseT", bound=Response)


def _cookie_domain(request: Request) -> str | None:
    return request.app.state.services.settings.cookie_domain


def session_cookie_name(request: Request, secure: bool | None = None) -> str:
    """The session cookie's name for this request (or a page ``secure`` or not): prefixed whenever it is Secure."""
    if not (cookie_secure(request) if secure is None else secure):
        return SESSION_COOKIE
    return (SECURE_PREFIX if _cookie_domain(request) else HOST_PREFIX) + SESSION_COOKIE


def _cookie_pairs(request: Request) -> list[tuple[str, str]]:
    """Every cookie of the request in order, repeats kept (``request.cookies`` keeps the last of each name)."""
    pairs = []
    for header in request.headers.getlist("cookie"):
        for chunk in header.split(";"):
            name, sep, value = chunk.strip().partition("=")
            if sep:
                pairs.append((name.strip(), value.strip().strip('"')))
    return pairs


def session_token(request: Request, secure: bool | None = None) -> str | None:
    """The session cookie's value; ``DuplicateSessionCookie`` when the browser sent it twice.

    Two cookies of one name reach us when another host of a shared cookie domain planted one
    (or a path-scoped copy shadows ours). Taking either would let the planter choose the
    session (fixation), so neither is taken.
    """
    name = session_cookie_name(request, secure)
    values = [value for key, value in _cookie_pairs(request) if key == name]
    if len(values) > 1:
        raise DuplicateSessionCookie()
    return values[0] if values else None


_browser_session_token = session_token  # set_cookies takes a parameter of the same name


def _end_replaced_session(request: Request, new_token: str) -> None:
    """A new session replaces the one this browser held (signing in again for an app that asks for a
    recent sign-in, or someone else at the same browser): the old one ends now, not at its idle end."""
    try:
        old = _browser_session_token(request)
    except DuplicateSessionCookie:
        return  # neither copy is taken for anything
    if old and old != new_token:
        request.app.state.services.sessions.end_replaced(old)


def twofold_cookies(request: Request) -> dict[str, str]:
    """The request's host-only cookies (remembered browsers) by their unprefixed names.

    When cookies are Secure, only "__Host-" cookies count: a cookie of the same name
    without the prefix may have been planted by another host and is ignored.
    """
    if not cookie_secure(request):
        return dict(request.cookies)
    return {name[len(HOST_PREFIX) :]: value for name, value in request.cookies.items() if name.startswith(HOST_PREFIX)}


def set_cookies(
    request: Request,
    response: ResponseT,
    *,
    session_token: str | None = None,
    end_session: bool = False,
    browser: BrowserCookie | None = None,
    cookies: Iterable[BrowserCookie] = (),
) -> ResponseT:
    """Set or delete Twofold's cookies on ``response``; returns it.

    ``session_token`` starts a session cookie (no Max-Age: it ends with the browser, and
    the server ends the session sooner by its own clock); ``end_session`` deletes it;
    ``browser`` (a ``BrowserCookie`` from the core) sets a remembered-browser cookie with
    the trust's lifetime as Max-Age, so the browser drops it when the server would, or
    deletes it; ``cookies`` are more such cookies from the core (a sign-in's flow and
    device cookies). Every cookie is HttpOnly, SameSite=Lax, path /, and Secure outside
    plain-HTTP localhost; Secure cookies carry the "__Host-" prefix, or "__Secure-" for the
    session cookie when TWOFOLD_COOKIE_DOMAIN shares it with the practice's other hosts.
    """
    secure = cookie_secure(request)
    domain = _cookie_domain(request)
    name = session_cookie_name(request)
    if session_token is not None:
        _end_replaced_session(request, session_token)
        response.set_cookie(name, session_token, httponly=True, samesite="lax", secure=secure, path="/", domain=domain)
    elif end_session:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure, domain=domain)
    for cookie in (browser, *cookies):
        if cookie is None:
            continue
        cookie_name = (HOST_PREFIX if secure else "") + cookie.name
        if cookie.value is None:
            response.delete_cookie(cookie_name, path="/", httponly=True, samesite="lax", secure=secure)
        else:
            response.set_cookie(
                cookie_name,
                cookie.value,
                max_age=cookie.max_age,
                path="/",
                httponly=True,
                samesite="lax",
                secure=secure,
            )
    return response


def clear_session_cookies(request: Request, response: ResponseT) -> ResponseT:
    """Delete the session cookie in every form another host could have planted it in."""
    name = session_cookie_name(request)
    secure = cookie_secure(request)
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
    domain = _cookie_domain(request)
    if domain:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure, domain=domain)
    return response


def cookie_secure(request: Request) -> bool:
    """Secure cookies everywhere but plain-HTTP localhost in development."""
    return secure_cookies_for(request, str(request.scope.get("scheme")), request_hostname(request))


def secure_cookies_for(request: Request, scheme: str, hostname: str) -> bool:
    """Whether cookies are Secure for a page at ``scheme``://``hostname``: always in production, else but
    for plain HTTP on a loopback name (``localhost``, RFC 6761's ``*.localhost``, 127.0.0.1, ::1)."""
    if request.app.state.services.settings.production or scheme != "http":
        return True
    return hostname not in LOCAL_HOSTS and not hostname.endswith(".localhost")


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
