"""Health routes for load balancers, orchestrators and operators. None needs a session or changes anything.

- ``GET /api/v1/health/live``: the process answers (liveness: restart it when this fails).
- ``GET /api/v1/health``: the database answers and is migrated.
- ``GET /api/v1/health/ready``: everything a sign-in needs answers, the database and Redis
  (readiness: send it traffic only while this is 200).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from twofold.web.blocking import database_work
from twofold.web.deps import ServicesDep
from twofold.web.schemas import ERRORS, ErrorPublic, ReadinessPublic, StatusPublic

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


@api.get(
    "/health/live",
    response_model=StatusPublic,
    summary="Is this process alive?",
    description='Liveness: `{"status":"ok"}` whenever the process answers HTTP; asks no dependency, so an '
    "outage of the database or Redis does not get every process restarted.",
)
async def live():
    return JSONResponse({"status": "ok"})


@api.get(
    "/health/ready",
    response_model=ReadinessPublic,
    summary="Can this process sign people in?",
    description='Readiness: `{"status":"ok","checks":{"database":"ok","redis":"ok"}}` when the database '
    "answers and is migrated and Redis (when configured) answers; otherwise 503 `unavailable` with "
    "`Retry-After` and the same `checks`, naming what is down.",
    responses={503: {"model": ErrorPublic, "description": "The database or Redis does not answer"}},
)
async def ready(services: ServicesDep):
    # Always in a thread: a Redis that does not answer must not stall the event loop for its timeout.
    readiness = await run_in_threadpool(services.health.ready)
    if readiness.error is None:
        return JSONResponse({"status": "ok", "checks": readiness.checks})
    error = readiness.error
    return JSONResponse(
        {
            "error": error.code,
            "message": error.message,
            "retry_after": error.retry_after,
            "checks": readiness.checks,
        },
        status_code=503,
        headers={"Retry-After": str(error.retry_after)},
    )
