"""The ``twofold`` command: serve, database, practices, users, members, the audit log and alerts.

Each command group lives in its own module and defines its own Typer group; this module
only puts them together (the console script ``twofold`` and ``python -m twofold`` call
``main``).
"""

from __future__ import annotations

import typer

from twofold.cli import alerts, apps, audit, db, members, oidc, practice, users, workstations
from twofold.cli.serve import serve

app = typer.Typer(help="Twofold: two-factor sign-in for medical practices.", no_args_is_help=True, add_completion=False)
app.command()(serve)
app.add_typer(db.app, name="db")
app.add_typer(practice.app, name="practice")
app.add_typer(users.app, name="user")
app.add_typer(members.app, name="members")
app.add_typer(audit.app, name="audit")
app.add_typer(oidc.app, name="oidc")
app.add_typer(apps.app, name="app")
app.add_typer(workstations.app, name="workstation")
app.add_typer(alerts.app, name="alerts")


def main() -> None:
    app()
