"""``twofold oidc``: the OpenID Connect provider's signing keys."""

from __future__ import annotations

import typer

from twofold.cli.common import console, load_services
from twofold.context import RequestContext

app = typer.Typer(help="The OpenID Connect provider.", no_args_is_help=True)


@app.command("rotate-key")
def rotate_key() -> None:
    """Make a new ID token signing key (audited). The old key stays in the JWKS until every ID token it
    signed has expired, so apps that cached the JWKS keep working."""
    services = load_services()
    try:
        kid = services.oidc_keys.rotate(context=RequestContext.system())
    finally:
        services.close()
    console.print(f"New signing key {kid}; the previous key is published until its ID tokens have expired.")
