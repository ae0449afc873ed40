"""``twofold db``: the database's schema."""

from __future__ import annotations

import typer

from twofold.cli.common import console, load_services, redact

app = typer.Typer(help="Database commands.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration."""
    services = load_services()
    console.print(f"Database is up to date: {redact(services.settings.resolved_database_url)}")
    services.close()
