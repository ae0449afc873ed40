"""The ``twofold`` command: serve, database, practices and users."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from twofold.context import RequestContext
from twofold.errors import TwofoldError
from twofold.settings import ConfigurationError, Settings

app = typer.Typer(help="Twofold: two-factor sign-in for medical practices.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
practice_app = typer.Typer(help="Practices.", no_args_is_help=True)
user_app = typer.Typer(help="Users (practice members).", no_args_is_help=True)
members_app = typer.Typer(help="A practice's members as CSV: import and export.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: verify its hash chains, export it.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(practice_app, name="practice")
app.add_typer(user_app, name="user")
app.add_typer(members_app, name="members")
app.add_typer(audit_app, name="audit")

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _services(settings: Settings | None = None, *, migrate: bool = True):
    from twofold.wiring import build_services
    from twofold.store.migrate import upgrade

    settings = settings or Settings()
    try:
        services = build_services(settings)
    except ConfigurationError as exc:
        fail(str(exc))
    if migrate:
        upgrade(services.db.engine)
    return services


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed a demo practice on a first development run.")] = True,
) -> None:
    """Create or upgrade the database, seed the demo practice on first run, and serve."""
    import uvicorn

    from twofold.web.server import HTTP_PROTOCOL

    settings = Settings()
    host = host or settings.host
    port = port or settings.port
    services = _services(settings)
    logins = None
    if demo and not settings.production:
        from twofold.cli.demo import seed_demo

        logins = seed_demo(services)
    services.close()
    console.print(f"[bold]Twofold[/] is serving on [link]http://{host}:{port}[/link]  (database: {_redact(settings.resolved_database_url)})")
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
        "twofold.web.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=False,
        http=HTTP_PROTOCOL,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    services = _services()
    console.print(f"Database is up to date: {_redact(services.settings.resolved_database_url)}")
    services.close()


@practice_app.command("create")
def practice_create(name: Annotated[str, typer.Argument(help="The practice's name, shown as the authenticator app's issuer.")]) -> None:
    """Create a practice."""
    services = _services()
    try:
        practice = services.accounts.create_practice(name=name, context=RequestContext.system())
    except TwofoldError as exc:
        fail(exc.message)
    console.print(f"Created practice {practice.name!r} (id {practice.id}).")
    services.close()


@user_app.command("add")
def user_add(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[str, typer.Option(help="admin, provider or staff.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")] = False,
) -> None:
    """Add a member to a practice. The password is read from standard input, never from arguments."""
    if not password_stdin:
        fail("Pass --password-stdin and give the password on standard input (it must not appear in arguments or history).", 2)
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("No password on standard input.", 2)
    services = _services()
    found = services.accounts.find_practice(practice)
    if found is None:
        fail(f"No practice named {practice!r}. Create it with: twofold practice create NAME")
    try:
        user = services.accounts.add_member(
            practice_id=found.id, email=email, name=name, role=role, password=password, context=RequestContext.system()
        )
    except TwofoldError as exc:
        fail(exc.message)
    console.print(f"Added {user.email} ({user.role}) to {found.name}.")
    services.close()


from twofold.cli import practice as cli_admin  # noqa: E402 - registers the administration commands on the groups above

cli_admin.register(user_app=user_app, members_app=members_app, audit_app=audit_app)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "(unparseable URL)"


def main() -> None:
    app()
