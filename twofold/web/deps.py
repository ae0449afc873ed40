"""Request dependencies, named for the rule they enforce."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from twofold.context import RequestContext
from twofold.core.sessions import ActiveSession
from twofold.core.signin import FLOW_COOKIE
from twofold.core.workstations import COOKIE_NAME as WORKSTATION_COOKIE
from twofold.errors import NotAuthenticated
from twofold.store.models import MAX_ID
from twofold.web.rendering import session_token, twofold_cookies
from twofold.wiring import Services

# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` one in the
# thread pool, a round trip that costs more than the function itself.


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def request_context(request: Request) -> RequestContext:
    client = request.client.host if request.client else None
    cookies = twofold_cookies(request)
    return RequestContext(
        ip=client,
        user_agent=request.headers.get("user-agent", "")[:512] or None,
        flow_binding=cookies.get(FLOW_COOKIE),
        workstation=cookies.get(WORKSTATION_COOKIE),
    )


def optional_session(request: Request) -> ActiveSession | None:
    if hasattr(request.state, "active_session"):  # resolved already for this request
        cached: ActiveSession | None = request.state.active_session
        return cached
    services: Services = request.app.state.services
    active = services.sessions.resolve(session_token(request))
    request.state.active_session = active
    return active


def enrolling_session(active: Annotated[ActiveSession | None, Depends(optional_session)]) -> ActiveSession:
    """Signed in, whether or not the practice still waits for this member to set up 2FA."""
    if active is None:
        raise NotAuthenticated()
    return active


def current_session(request: Request, active: Annotated[ActiveSession, Depends(enrolling_session)]) -> ActiveSession:
    """Signed in and not held at enrolment: past the grace period, only enrolment routes are open."""
    request.app.state.services.enforcement.check(active)
    return active


def practice_admin(request: Request, active: Annotated[ActiveSession, Depends(enrolling_session)]) -> ActiveSession:
    """A signed-in admin of the practice who has two-factor authentication on (403 otherwise)."""
    request.app.state.services.enforcement.check_admin(active)
    return active


ServicesDep = Annotated[Services, Depends(get_services)]
Context = Annotated[RequestContext, Depends(request_context)]
MaybeSignedIn = Annotated[ActiveSession | None, Depends(optional_session)]
SignedIn = Annotated[ActiveSession, Depends(current_session)]
# For the routes a member uses to set up 2FA (and nothing else): open even when enrolment is overdue.
Enrolling = Annotated[ActiveSession, Depends(enrolling_session)]
PracticeAdmin = Annotated[ActiveSession, Depends(practice_admin)]


def peek_session(request: Request) -> ActiveSession | None:
    """The live session without counting this request as activity (for "how long is left?")."""
    services: Services = request.app.state.services
    return services.sessions.resolve(session_token(request), touch=False)


# For pages a browser reaches by itself (the idle sign-out's redirect to sign-in): never activity.
MaybeSignedInUntouched = Annotated[ActiveSession | None, Depends(peek_session)]


def current_session_untouched(active: Annotated[ActiveSession | None, Depends(peek_session)]) -> ActiveSession:
    if active is None:
        raise NotAuthenticated()
    return active


SignedInUntouched = Annotated[ActiveSession, Depends(current_session_untouched)]


# A row id in a path: a positive integer no larger than an id column holds (MAX_ID: 32 bits on
# PostgreSQL), so no database is handed a number it cannot store.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _fits_an_id_column(value: int) -> int:
    if not -MAX_ID - 1 <= value <= MAX_ID:
        raise ValueError("is not an id")
    return value


# A member's id in a path: any integer an id column can hold (one that matches no member answers 404
# "not found", as it always has), refused with 422 beyond that, where the database would raise. The
# check is a validator, not a Path bound, so the published OpenAPI schema of these routes stays a plain integer.
MemberId = Annotated[int, AfterValidator(_fits_an_id_column)]
