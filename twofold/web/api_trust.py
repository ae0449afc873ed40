"""JSON API: remembered browsers, sessions and password change (issue 3).

``DELETE /api/v1/me/sessions`` ends every *other* session ("sign out other
sessions") and keeps the caller signed in; with ``?include_current=true`` it ends
this one too ("sign out everywhere"). ``DELETE /api/v1/me/remembered-browsers``
forgets every remembered browser, this one included.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from twofold.core.remembered import BrowserView
from twofold.core.account_security import SessionView
from twofold.core.sessions import ActiveSession
from twofold.web.api import ERRORS
from twofold.web.deps import (
    SESSION_COOKIE,
    Context,
    RowId,
    ServicesDep,
    SignedIn,
    SignedInUntouched,
    apply_browser_cookie,
    cookie_secure,
)
from twofold.web.schemas import ErrorPublic
from twofold.web.schemas_trust import (
    PasswordChange,
    PasswordChangedPublic,
    RememberedBrowserListPublic,
    RememberedBrowserPublic,
    RevokedPublic,
    SessionListPublic,
    SessionPublic,
    SessionStatePublic,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)

NOT_FOUND = {404: {"model": ErrorPublic, "description": "Not one of your live sessions or browsers"}}
WARN_BEFORE_SECONDS = 60


def _session_public(view: SessionView) -> SessionPublic:
    return SessionPublic(
        id=view.id, label=view.label, created_at=view.created_at.isoformat(), last_seen_at=view.last_seen_at.isoformat(),
        expires_at=view.expires_at.isoformat(), ip=view.ip, current=view.current,
    )


def _browser_public(view: BrowserView) -> RememberedBrowserPublic:
    return RememberedBrowserPublic(
        id=view.id, label=view.label, created_at=view.created_at.isoformat(), last_used_at=view.last_used_at.isoformat(),
        expires_at=view.expires_at.isoformat(), ip=view.ip, last_ip=view.last_ip, current=view.current,
    )


def session_state(active: ActiveSession, now) -> SessionStatePublic:
    return SessionStatePublic(
        id=active.session_id,
        expires_at=active.expires_at.isoformat(),
        seconds_left=max(0, int((active.expires_at - now).total_seconds())),
        idle_timeout_seconds=int(active.policy.idle_timeout.total_seconds()),
        warn_before_seconds=WARN_BEFORE_SECONDS,
    )


def _signed_out(request: Request, body: RevokedPublic) -> JSONResponse:
    response = JSONResponse(body.model_dump())
    if body.signed_out:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
    return response


# -- this session: how long is left, and "Stay signed in" ------------------------


@router.get(
    "/me/session",
    response_model=SessionStatePublic,
    summary="How long this session has left",
    description="Does not count as activity, so a page may ask it repeatedly to warn before the idle sign-out.",
)
def current_session_state(active: SignedInUntouched, services: ServicesDep):
    return session_state(active, services.clock.now())


@router.post(
    "/me/session/keep-alive",
    response_model=SessionStatePublic,
    summary='"Stay signed in": count as activity',
    description="Restarts the idle timeout. The absolute limit (default 12 hours) still holds.",
)
def keep_alive(active: SignedIn, services: ServicesDep):
    return session_state(active, services.clock.now())


# -- sessions --------------------------------------------------------------------


@router.get("/me/sessions", response_model=SessionListPublic, summary="Your active sessions")
def list_sessions(active: SignedIn, services: ServicesDep):
    views = services.account_security.sessions_of(active=active)
    return SessionListPublic(sessions=[_session_public(view) for view in views])


@router.get("/me/sessions/{session_id}", response_model=SessionPublic, summary="One of your sessions", responses=NOT_FOUND)
def get_session(session_id: RowId, active: SignedIn, services: ServicesDep):
    return _session_public(services.account_security.session_of(active=active, session_id=session_id))


@router.delete(
    "/me/sessions/{session_id}",
    response_model=RevokedPublic,
    summary="End one of your sessions",
    description="Takes effect on that session's next request. Ending your own session signs you out.",
    responses=NOT_FOUND,
)
def end_session(session_id: RowId, request: Request, active: SignedIn, services: ServicesDep, context: Context):
    was_current = services.account_security.end_session(active=active, session_id=session_id, context=context)
    return _signed_out(request, RevokedPublic(count=1, signed_out=was_current))


@router.delete(
    "/me/sessions",
    response_model=RevokedPublic,
    summary="Sign out other sessions, or everywhere",
    description="Ends every other session and keeps this one. With `include_current=true` ends this one too "
    "(sign out everywhere). Remembered browsers are not forgotten: see `DELETE /api/v1/me/remembered-browsers`.",
)
def end_sessions(request: Request, active: SignedIn, services: ServicesDep, context: Context, include_current: bool = False):
    count = services.account_security.end_sessions(active=active, context=context, include_current=include_current)
    return _signed_out(request, RevokedPublic(count=count, signed_out=include_current))


# -- remembered browsers ---------------------------------------------------------------


@router.get("/me/remembered-browsers", response_model=RememberedBrowserListPublic, summary="Your remembered browsers")
def list_browsers(request: Request, active: SignedIn, services: ServicesDep):
    views = services.account_security.browsers_of(user=active.user, cookies=request.cookies)
    return RememberedBrowserListPublic(remembered_browsers=[_browser_public(view) for view in views])


@router.get(
    "/me/remembered-browsers/{browser_id}",
    response_model=RememberedBrowserPublic,
    summary="One of your remembered browsers",
    responses=NOT_FOUND,
)
def get_browser(browser_id: RowId, request: Request, active: SignedIn, services: ServicesDep):
    view = services.account_security.browser_of(user=active.user, cookies=request.cookies, browser_id=browser_id)
    return _browser_public(view)


@router.delete(
    "/me/remembered-browsers/{browser_id}",
    response_model=RevokedPublic,
    summary="Forget one remembered browser",
    description="Its next sign-in asks for a code again.",
    responses=NOT_FOUND,
)
def forget_browser(browser_id: RowId, request: Request, active: SignedIn, services: ServicesDep, context: Context):
    cookie = services.account_security.forget_browser(
        user=active.user, browser_id=browser_id, cookies=request.cookies, context=context
    )
    response = JSONResponse(RevokedPublic(count=1).model_dump())
    apply_browser_cookie(request, response, cookie)
    return response


@router.delete(
    "/me/remembered-browsers",
    response_model=RevokedPublic,
    summary="Forget every remembered browser",
    description="Every browser, this one included, asks for a code at its next sign-in.",
)
def forget_browsers(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    count, cookie = services.account_security.forget_browsers(user=active.user, context=context)
    response = JSONResponse(RevokedPublic(count=count).model_dump())
    apply_browser_cookie(request, response, cookie)
    return response


# -- password ----------------------------------------------------------------------------


@router.post(
    "/me/password",
    response_model=PasswordChangedPublic,
    summary="Change your password",
    description="Needs the current password (401 `invalid_credentials` when wrong, throttled like sign-in). "
    "Ends every other session and forgets every remembered browser; this session stays.",
)
def change_password(body: PasswordChange, active: SignedIn, services: ServicesDep, context: Context):
    changed = services.account_security.change_password(
        active=active, current_password=body.current_password, new_password=body.new_password, context=context
    )
    return PasswordChangedPublic(sessions_ended=changed.sessions_ended, browsers_forgotten=changed.browsers_forgotten)
