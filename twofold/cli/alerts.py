"""``twofold alerts``: the admins' daily alert digests, for cron where no server process sends them."""

from __future__ import annotations

import typer

from twofold.cli.common import console, fail, load_services
from twofold.errors import TwofoldError

app = typer.Typer(help="Admin alerts: send the daily digests.", no_args_is_help=True)


@app.command("digest")
def digest() -> None:
    """Email each admin who chose a daily digest the previous day's alerts (the practice's calendar day).

    Safe to run as often as you like: each admin gets each day's digest once, whichever process or
    command sends it first.
    """
    services = load_services()
    try:
        sent = services.alerts.send_digests()
    except TwofoldError as exc:
        services.close()
        fail(exc.message)
    services.close()  # waits for the queued emails to go out
    console.print(f"{sent} digest email{'s' if sent != 1 else ''} sent.")
