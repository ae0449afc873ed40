"""Sessions: where you are signed in (the Security page's forms and ``/api/v1/me/sessions``),
and this session's time left and "Stay signed in" (``/api/v1/me/session``).

``DELETE /api/v1/me/sessions`` ends every *other* session ("sign out other sessions") and
keeps the caller signed in; with ``?include_current=true`` it ends this one too ("sign out
everywhere").
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from twofold.core.account_security import SessionView
from twofold.core.sessions import ActiveSession
from twofold.web.account.schemas import RevokedPublic, SessionListPublic, SessionPublic, SessionStatePublic
from twofold.web.deps import Context, Enrolling, RowId, ServicesDep, SignedIn, SignedInUntouched
from twofold.web.rendering import back_home, set_cookies, signed_out
from twofold.web.schemas import ERRORS, ErrorPublic, Responses

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)

NOT_FOUND: Responses = {404: {"model": ErrorPublic, "description": "Not one of your live sessions or browsers"}}
WARN_BEFORE_SECONDS = 60


def _session_public(view: SessionView) -> SessionPublic:
    return SessionPublic(
        id=view.id,
        label=view.label,
        created_at=view.created_at.isoformat(),
        last_seen_at=view.last_seen_at.isoformat(),
        expires_at=view.expires_at.isoformat(),
        ip=view.ip,
        current=view.current,
    )


def session_state(active: ActiveSession, now) -> SessionStatePublic:
    return SessionStatePublic(
        id=active.session_id,
        expires_at=active.expires_at.isoformat(),
        # Rounded up: a page that goes to sign-in at 0 must not leave while the server still
        # holds the session (and a request there must not find it alive and extend it).
        seconds_left=max(0, math.ceil((active.expires_at - now).total_seconds())),
        idle_timeout_seconds=int(active.policy.idle_timeout.total_seconds()),
        warn_before_seconds=WARN_BEFORE_SECONDS,
    )


def _revoked(request: Request, body: RevokedPublic) -> JSONResponse:
    return set_cookies(request, JSONResponse(body.model_dump()), end_session=body.signed_out)


# -- this session: how long is left, and "Stay signed in" ------------------------


@api.get(
    "/me/session",
    response_model=SessionStatePublic,
    summary="How long this session has left",
    description="Does not count as activity, so a page may ask it repeatedly to warn before the idle sign-out.",
)
def current_session_state(active: SignedInUntouched, services: ServicesDep):
    return session_state(active, services.clock.now())


@api.post(
    "/me/session/keep-alive",
    response_model=SessionStatePublic,
    summary='"Stay signed in": count as activity',
    description="Restarts the idle timeout. The absolute limit (default 12 hours) still holds. Open to a member "
    "held at enrolment, like `GET /me/session`: the enrolment page warns before the idle sign-out too.",
)
def keep_alive(active: Enrolling, services: ServicesDep):
    return session_state(active, services.clock.now())


# -- sessions --------------------------------------------------------------------


@api.get("/me/sessions", response_model=SessionListPublic, summary="Your active sessions")
def list_sessions(active: SignedIn, services: ServicesDep):
    views = services.account_security.sessions_of(active=active)
    return SessionListPublic(sessions=[_session_public(view) for view in views])


@api.get("/me/sessions/{session_id}", response_model=SessionPublic, summary="One of your sessions", responses=NOT_FOUND)
def get_session(session_id: RowId, active: SignedIn, services: ServicesDep):
    return _session_public(services.account_security.session_of(active=active, session_id=session_id))


@api.delete(
    "/me/sessions/{session_id}",
    response_model=RevokedPublic,
    summary="End one of your sessions",
    description="Takes effect on that session's next request. Ending your own session signs you out.",
    responses=NOT_FOUND,
)
def end_session(session_id: RowId, request: Request, active: SignedIn, services: ServicesDep, context: Context):
    was_current = services.account_security.end_session(active=active, session_id=session_id, context=context)
    return _revoked(request, RevokedPublic(count=1, signed_out=was_current))


@api.delete(
    "/me/sessions",
    response_model=RevokedPublic,
    summary="Sign out other sessions, or everywhere",
    description="Ends every other session and keeps this one. With `include_current=true` ends this one too "
    "(sign out everywhere). Remembered browsers are not forgotten: see `DELETE /api/v1/me/remembered-browsers`.",
)
def end_sessions(
    request: Request, active: SignedIn, services: ServicesDep, context: Context, include_current: bool = False
):
    count = services.account_security.end_sessions(active=active, context=context, include_current=include_current)
    return _revoked(request, RevokedPublic(count=count, signed_out=include_current))


@pages.post("/account/security/sessions/{session_id}/end")
def end_session_form(request: Request, session_id: RowId, active: SignedIn, services: ServicesDep, context: Context):
    if services.account_security.end_session(active=active, session_id=session_id, context=context):
        return signed_out(request, "signed_out")
    return back_home("session_ended")


@pages.post("/account/security/sessions/end-others")
def end_other_sessions(active: SignedIn, services: ServicesDep, context: Context):
    services.account_security.end_sessions(active=active, context=context)
    return back_home("other_sessions_ended")


@pages.post("/account/security/sessions/end-all")
def sign_out_everywhere(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    services.account_security.end_sessions(active=active, context=context, include_current=True)
    return signed_out(request, "signed_out_everywhere")
