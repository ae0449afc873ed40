"""``twofold practice``: practices."""

from __future__ import annotations

from typing import Annotated

import typer

from twofold.cli.common import console, fail, load_services
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="Practices.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The practice's name, shown as the authenticator app's issuer.")],
) -> None:
    """Create a practice."""
    services = load_services()
    try:
        practice = services.accounts.create_practice(name=name, context=RequestContext.system())
    except TwofoldError as exc:
        fail(exc.message)
    console.print(f"Created practice {practice.name!r} (id {practice.id}).")
    services.close()
