"""The FastAPI application: one per process, holding one ``Services``."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from twofold import __version__
from twofold.wiring import Services, build_services
from twofold.settings import Settings
from twofold.web import errors
from twofold.web.api import router as api_router
from twofold.web.api_practice import router as api_practice_router
from twofold.web.api_recovery import router as api_recovery_router
from twofold.web.api_trust import router as api_trust_router
from twofold.web.pages_admin import router as pages_admin_router
from twofold.web.pages import router as pages_router
from twofold.web.pages_trust import router as pages_trust_router
from twofold.web.pages_recovery import router as pages_recovery_router
from twofold.web.security import SecurityMiddleware
from twofold.web.server import redact_access_log

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def render(request: Request, name: str, context: dict | None = None, status: int = 200):
    return templates.TemplateResponse(request, name, context or {}, status_code=status)


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    redact_access_log()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Sync routes run in AnyIO's thread pool; sized with the database pool (see Settings).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        checkpointer = services.db.wal_checkpointer()
        if checkpointer is not None:
            checkpointer.start()
        app.state.wal_checkpointer = checkpointer
        try:
            yield
        finally:
            if checkpointer is not None:
                checkpointer.stop()
            services.notifier.flush(timeout=5)

    app = FastAPI(
        title="Twofold",
        version=__version__,
        description="Two-factor sign-in for medical practices. Every error is "
        '`{"error": <stable code>, "message": <human sentence>}`.',
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=settings.max_body_bytes,
        public_origin=settings.public_origin,
        hsts=settings.production,
    )
    errors.install(app, render)
    app.include_router(api_router)
    app.include_router(api_trust_router)
    app.include_router(api_recovery_router)
    app.include_router(api_practice_router)
    app.include_router(pages_router)
    app.include_router(pages_trust_router)
    app.include_router(pages_recovery_router)
    app.include_router(pages_admin_router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``twofold serve``): one app per server process.

    What start-up built (routes, models, the mapper, templates) lives as long as the
    process, so it is frozen out of the garbage collector's sight: a full collection
    would otherwise walk it all, a pause of about 100 ms here that every request in
    flight waits out.
    """
    app = create_app(build_services(Settings()))
    gc.collect()
    gc.freeze()
    return app
