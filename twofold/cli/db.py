"""``twofold db``: the database's schema."""

from __future__ import annotations

import typer
from rich.table import Table

from twofold.cli.common import console, load_services, redact

app = typer.Typer(help="Database commands.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every pending migration."""
    services = load_services()
    console.print(f"Database is up to date: {redact(services.settings.resolved_database_url)}")
    services.close()


@app.command("purge")
def purge() -> None:
    """Delete what has ended: expired sign-in flows and codes, ended sessions, remembered browsers and
    set-up links (after TWOFOLD_PURGE_AFTER_DAYS), old throttle failures. The audit log is kept whole."""
    services = load_services()
    try:
        counts = services.retention.purge()
    finally:
        services.close()
    table = Table(title="Purged", show_lines=False)
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    console.print(table)
