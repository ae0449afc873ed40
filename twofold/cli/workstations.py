"""``twofold workstation``: a practice's shared workstations, listed, renamed and unmarked.

Marking needs the browser itself (it receives the cookie), so it is done on Administration ›
Workstations from that browser, not here.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from twofold.cli.common import console, fail, find_practice, load_services
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="A practice's shared workstations: list, rename, unmark.", no_args_is_help=True)

Practice = Annotated[str, typer.Option(help="Name of the practice.")]
WorkstationId = Annotated[
    int, typer.Argument(metavar="ID", min=1, max=2**63 - 1, help="The workstation's id (see workstation list).")
]


@app.command("list")
def list_(
    practice: Practice,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of the workstations.")] = False,
) -> None:
    """List a practice's shared workstations."""
    services = load_services()
    found = find_practice(services, practice)
    items = services.workstations.list_workstations(practice_id=found.id, context=RequestContext.system())
    services.close()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "id": view.id,
                        "name": view.name,
                        "created_at": view.created_at.isoformat(),
                        "last_used_at": view.last_used_at.isoformat() if view.last_used_at else None,
                    }
                    for view in items
                ]
            )
        )
        return
    if not items:
        console.print(f"{escape(practice)} has no shared workstations. Mark one on Administration › Workstations.")
        return
    table = Table(title=f"Shared workstations of {escape(practice)}")
    for column in ("id", "name", "marked", "last sign-in"):
        table.add_column(column)
    for view in items:
        last = view.last_used_at.isoformat(timespec="minutes") if view.last_used_at else "—"
        table.add_row(str(view.id), escape(view.name), view.created_at.isoformat(timespec="minutes"), last)
    console.print(table)


@app.command("rename")
def rename(
    practice: Practice,
    workstation_id: WorkstationId,
    name: Annotated[str, typer.Option(help='The new name, such as "Front desk 1".')],
) -> None:
    """Rename a shared workstation (audited)."""
    services = load_services()
    found = find_practice(services, practice)
    try:
        view = services.workstations.rename(
            practice_id=found.id,
            workstation_id=workstation_id,
            name=name,
            actor_id=None,
            context=RequestContext.system(),
        )
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    console.print(f"Workstation {view.id} is now called {view.name}.", markup=False)


@app.command("unmark")
def unmark(practice: Practice, workstation_id: WorkstationId) -> None:
    """Unmark a shared workstation (audited): its browser is an ordinary one again from its next sign-in."""
    services = load_services()
    found = find_practice(services, practice)
    try:
        services.workstations.unmark(
            practice_id=found.id, workstation_id=workstation_id, actor_id=None, context=RequestContext.system()
        )
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    console.print(f"Unmarked workstation {workstation_id}.")
