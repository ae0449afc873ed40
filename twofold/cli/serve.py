"""``twofold serve``: migrate, seed the demo practice on a first development run, and serve."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from twofold.cli.common import console, err, fail, load_services, redact
from twofold.settings import Settings

if TYPE_CHECKING:
    from twofold.wiring import Services

# What uvicorn serves, as import strings: uvicorn imports them in every worker process, and
# the CLI never imports the web package (front ends stand side by side; tests/cli/test_serve.py
# proves both strings resolve).
APP_FACTORY = "twofold.web.app:create_app_from_env"
HTTP_PROTOCOL = "twofold.web.server:TcpNoDelayHTTPProtocol"


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Seed a demo practice on a first development run.")
    ] = True,
) -> None:
    """Create or upgrade the database, seed the demo practice on first run, and serve."""
    import uvicorn

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    # The workers read their settings from the environment: they must know the address really
    # served, which development's emailed links point to (Settings.resolved_public_origin).
    os.environ["TWOFOLD_HOST"] = host
    os.environ["TWOFOLD_PORT"] = str(port)
    settings = Settings()
    bound_worker_memory()
    services = load_services(settings)
    check_dependencies(services, settings, workers=workers)
    open_files = raise_open_file_limit()
    wanted_files = settings.http_max_connections + (settings.db_pool_size or 0) + FILE_RESERVE
    if open_files is not None and open_files < wanted_files:
        warn(
            f"This process may open {open_files} files (ulimit -n) but TWOFOLD_HTTP_MAX_CONNECTIONS="
            f"{settings.http_max_connections} needs about {wanted_files}: raise the limit (LimitNOFILE= in a "
            "systemd unit) or lower TWOFOLD_HTTP_MAX_CONNECTIONS, or new connections fail silently when it runs out."
        )
    services.oidc_keys.ensure()  # the OpenID Connect signing key, made on the first start
    logins = None
    if demo and not settings.production:
        from twofold.cli.demo import seed_demo

        logins = seed_demo(services)
    services.close()
    console.print(
        f"[bold]Twofold[/] is serving on [link]http://{host}:{port}[/link]  "
        f"(database: {redact(settings.resolved_database_url)})"
    )
    if logins:
        table = Table(title="Demo practice logins", show_lines=False)
        table.add_column("role")
        table.add_column("email")
        table.add_column("password")
        for role, email, password in logins:
            table.add_row(role, email, password)
        console.print(table)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        http=HTTP_PROTOCOL,
        timeout_keep_alive=settings.http_keepalive_timeout,
    )


# File handles beyond client connections: database connections, log files, the listening
# socket, the SQLite files, Python's own.
FILE_RESERVE = 64
# glibc gives each thread that allocates its own arena (up to 8 per CPU) and rarely returns
# their memory: argon2's 19 MiB buffers, allocated by whichever request thread hashes, stay
# behind in each arena. Two arenas keep a worker near its working set (benchmarks/worker_memory.py).
MALLOC_ARENA_MAX = "2"
_M_ARENA_MAX = -8  # glibc malloc.h


def bound_worker_memory() -> None:
    """Cap glibc's malloc arenas: for worker processes through MALLOC_ARENA_MAX (read when a
    process starts), and for this process, already started, through mallopt(3).

    An operator's own MALLOC_ARENA_MAX is kept. A no-op where libc is not glibc.
    """
    arenas = os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENA_MAX)
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    with contextlib.suppress(ValueError):
        mallopt(_M_ARENA_MAX, int(arenas))


def raise_open_file_limit() -> int | None:
    """Raise this process's open-file limit to its hard limit (workers inherit it); the limit now in force."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def check_dependencies(services: Services, settings: Settings, *, workers: int) -> None:
    """Start-up checks of what the database and Redis promise: warnings, or a refusal where production depends on it."""
    from twofold.errors import Unavailable
    from twofold.store.db import connection_budget_problem

    try:
        budget = connection_budget_problem(
            services.db.engine, processes=workers, per_process=settings.db_pool_size or 1
        )
    except Unavailable:
        budget = None  # the database's own errors come up when it is used
    if budget:
        warn(budget)
    try:
        persistence = services.throttle.store.persistence_problem()
    except Unavailable:
        warn("Redis does not answer: sign-ins answer 503 until it does (GET /api/v1/health/ready says so).")
        return
    if persistence and settings.production:
        services.close()
        fail(persistence + " Production refuses to start on a Redis that forgets the throttle's counters.")
    if persistence:
        warn(persistence)


def warn(message: str) -> None:
    """A start-up warning, on standard error and in the log."""
    err.print(f"[bold yellow]warning:[/] {escape(message)}")
    logging.getLogger("twofold.serve").warning(message)
