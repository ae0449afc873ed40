"""``twofold serve``: migrate, seed the demo practice on a first development run, and serve."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.table import Table

from twofold.cli.common import console, load_services, redact
from twofold.settings import Settings

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
    services = load_services(settings)
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
    )
