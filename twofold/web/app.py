"""The FastAPI application: one per process, holding one ``Services``."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from twofold import __version__
from twofold.core.retention import ScheduledJob, ScheduledPurge
from twofold.settings import Settings
from twofold.web import errors, health, signin
from twofold.web.account import browsers, me, password, security, sessions, two_factor_required
from twofold.web.factors import email_code, recovery_codes, totp, webauthn
from twofold.web.practice import (
    alerts,
    apps,
    audit_log,
    enrolment,
    members,
    policy,
    report,
    resets,
    setup_links,
    workstations,
)
from twofold.web.protocols import forward_auth, oidc
from twofold.web.proxies import TrustedProxies
from twofold.web.security import SecurityMiddleware
from twofold.web.server import limit_connections, redact_access_log
from twofold.wiring import Services, build_services

STATIC = Path(__file__).parent / "static"

# The order routes are tried in. Only paths that could match the same request need care:
# members.pages registers "/admin/members/new" and "/admin/members/import" before
# "/admin/members/{member_id}"; no two modules hold such a pair. Forward-auth comes first: a proxy
# asks it before every request of every app, and each route tried before it costs a regex match.
API_ROUTERS = (
    forward_auth.api,
    health.api,
    signin.api,
    me.api,
    totp.api,
    sessions.api,
    browsers.api,
    password.api,
    recovery_codes.api,
    email_code.api,
    webauthn.api,
    members.api,
    setup_links.api,
    enrolment.api,
    resets.api,
    policy.api,
    audit_log.api,
    report.api,
    alerts.api,
    apps.api,
    workstations.api,
)
PAGE_ROUTERS = (
    signin.pages,
    security.pages,
    totp.pages,
    password.pages,
    sessions.pages,
    browsers.pages,
    recovery_codes.pages,
    email_code.pages,
    webauthn.pages,
    members.pages,
    setup_links.pages,
    enrolment.pages,
    resets.pages,
    policy.pages,
    audit_log.pages,
    report.pages,
    alerts.pages,
    apps.pages,
    workstations.pages,
    forward_auth.pages,
    two_factor_required.pages,
    oidc.router,
)


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    redact_access_log()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Sync routes run in AnyIO's thread pool; sized with the database pool (see Settings).
        request_threads = settings.request_threads
        if request_threads is None:  # Settings fills it in from the database URL when unset
            raise RuntimeError("settings.request_threads was not resolved")
        anyio.to_thread.current_default_thread_limiter().total_tokens = request_threads
        checkpointer = services.db.wal_checkpointer()
        if checkpointer is not None:
            checkpointer.start()
        app.state.wal_checkpointer = checkpointer
        purge = None
        if settings.purge_interval_seconds:
            purge = ScheduledPurge(services.retention, interval=settings.purge_interval_seconds)
            purge.start()
        app.state.scheduled_purge = purge
        digests = None
        if settings.alert_digest_interval_seconds:
            digests = ScheduledJob(
                services.alerts.send_digests, interval=settings.alert_digest_interval_seconds, name="alert-digest"
            )
            digests.start()
        app.state.scheduled_digests = digests
        logouts = None
        if settings.backchannel_retry_seconds:
            logouts = ScheduledJob(
                services.backchannel.deliver_due, interval=settings.backchannel_retry_seconds, name="backchannel-logout"
            )
            logouts.start()
        app.state.scheduled_logouts = logouts
        try:
            yield
        finally:
            if logouts is not None:
                logouts.stop()
            if digests is not None:
                digests.stop()
            if purge is not None:
                purge.stop()
            if checkpointer is not None:
                checkpointer.stop()
            services.backchannel.flush(timeout=5)  # logouts owed just before are tried before exit
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
        credential_paths=oidc.CREDENTIAL_PATHS,
    )
    # Added last, so it runs first: everything after it sees the client behind a trusted proxy.
    app.add_middleware(TrustedProxies, networks=settings.trusted_networks)
    errors.install(app)
    for router in (*API_ROUTERS, *PAGE_ROUTERS):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``twofold serve``): one app per server process.

    What start-up built (routes, models, the mapper, templates) lives as long as the
    process, so it is frozen out of the garbage collector's sight: a full collection
    would otherwise walk it all, a pause of about 100 ms here that every request in
    flight waits out.
    """
    settings = Settings()
    limit_connections(max_connections=settings.http_max_connections, header_timeout=settings.http_header_timeout)
    app = create_app(build_services(settings))
    gc.collect()
    gc.freeze()
    return app
