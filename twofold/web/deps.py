"""Request dependencies, named for the rule they enforce."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from twofold.core.context import RequestContext
from twofold.core.errors import NotAuthenticated
from twofold.core.services import Services
from twofold.core.sessions import ActiveSession

SESSION_COOKIE = "twofold_session"


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` one in the
# thread pool, a round trip that costs more than the function itself.


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def request_context(request: Request) -> RequestContext:
    client = request.client.host if request.client else None
    return RequestContext(ip=client, user_agent=request.headers.get("user-agent", "")[:512] or None)


def optional_session(request: Request) -> ActiveSession | None:
    cached = getattr(request.state, "active_session", False)
    if cached is not False:
        return cached
    services: Services = request.app.state.services
    active = services.sessions.resolve(request.cookies.get(SESSION_COOKIE))
    request.state.active_session = active
    return active


def current_session(active: Annotated[ActiveSession | None, Depends(optional_session)]) -> ActiveSession:
    if active is None:
        raise NotAuthenticated()
    return active


ServicesDep = Annotated[Services, Depends(get_services)]
Context = Annotated[RequestContext, Depends(request_context)]
MaybeSignedIn = Annotated[ActiveSession | None, Depends(optional_session)]
SignedIn = Annotated[ActiveSession, Depends(current_session)]


def cookie_secure(request: Request) -> bool:
    """Secure cookies everywhere but plain-HTTP localhost in development."""
    services: Services = request.app.state.services
    if services.settings.production:
        return True
    host = (request.url.hostname or "").lower()
    return not (request.url.scheme == "http" and host in ("localhost", "127.0.0.1", "::1", "testserver"))
