"""``GET /api/v1/health``: for load balancers and operators, is this process able to serve?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from twofold.web.blocking import database_work
from twofold.web.deps import ServicesDep
from twofold.web.schemas import ERRORS, ErrorPublic, StatusPublic

api = APIRouter(prefix="/api/v1", responses=ERRORS)


@api.get(
    "/health",
    response_model=StatusPublic,
    summary="Is this process able to serve?",
    description='For load balancers and operators: `{"status":"ok"}` after one primary-key read '
    "from the database, or 503 `unavailable` when the database does not answer or is not migrated. "
    "Needs no session and changes nothing.",
    responses={503: {"model": ErrorPublic, "description": "The database does not answer, or is not migrated"}},
)
async def health(services: ServicesDep):
    await database_work(services, services.health.check)
    return JSONResponse({"status": "ok"})
