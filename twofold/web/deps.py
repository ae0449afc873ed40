"""Request dependencies, named for the rule they enforce."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import AfterValidator

from twofold.context import RequestContext
from twofold.core.sessions import ActiveSession
from twofold.errors import Forbidden, NotAuthenticated
from twofold.web.rendering import session_token
from twofold.wiring import Services

# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` one in the
# thread pool, a round trip that costs more than the function itself.


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def request_context(request: Request) -> RequestContext:
    client = request.client.host if request.client else None
    return RequestContext(ip=client, user_agent=request.headers.get("user-agent", "")[:512] or None)


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


def practice_admin(active: Annotated[ActiveSession, Depends(current_session)]) -> ActiveSession:
    if active.user.role != "admin":
        raise Forbidden("Only practice admins can do this.")
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


def current_session_untouched(active: Annotated[ActiveSession | None, Depends(peek_session)]) -> ActiveSession:
    if active is None:
        raise NotAuthenticated()
    return active


SignedInUntouched = Annotated[ActiveSession, Depends(current_session_untouched)]


# A row id in a path: a positive 64-bit integer, so no database is handed a number it cannot store.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _fits_64_bits(value: int) -> int:
    if not -(2**63) <= value <= 2**63 - 1:
        raise ValueError("is not an id")
    return value


# A member's id in a path: any 64-bit integer (one that matches no member answers 404 "not found", as
# it always has), refused with 422 beyond that, where SQLite would raise. The check is a validator,
# not a Path bound, so the published OpenAPI schema of these routes stays a plain integer.
MemberId = Annotated[int, AfterValidator(_fits_64_bits)]
