"""``twofold app``: a practice's apps behind Twofold, added, listed and removed.

``app add`` gathers its options into one set of fields for ``AppService.add_app``, so a
protocol that needs more of an app (OpenID Connect's redirect URIs, say) adds its options
and fields here without another command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from twofold.cli.common import console, fail, find_practice, load_services
from twofold.context import RequestContext
from twofold.errors import TwofoldError

if TYPE_CHECKING:
    from twofold.core.practice.apps import AppView

app = typer.Typer(help="A practice's apps behind Twofold: add, list, remove.", no_args_is_help=True)


def app_json(view: AppView) -> dict[str, Any]:
    """An app as the API answers it (``GET /api/v1/practice/apps/{id}``)."""
    return {
        "id": view.id,
        "name": view.name,
        "url": view.url,
        "allowed_roles": view.allowed_roles,
        "bypass_paths": view.bypass_paths,
        "reauth_minutes": view.reauth_minutes,
        "enabled": view.enabled,
    }


@app.command("add")
def add(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    name: Annotated[str, typer.Option(help="The app's name, as admins see it.")],
    url: Annotated[
        str | None, typer.Option(help="Where members open the app, such as https://files.riverside.example.")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role that may use the app (repeat; default: every role).")
    ] = None,
    bypass_path: Annotated[
        list[str] | None,
        typer.Option("--bypass-path", help="A path prefix served without sign-in, such as /health (repeat)."),
    ] = None,
    reauth_minutes: Annotated[
        int | None, typer.Option(help="Ask for password and code again when the last sign-in is older.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the app as one JSON object.")] = False,
) -> None:
    """Register an app of a practice (audited)."""
    fields: dict[str, Any] = {
        "name": name,
        "url": url,
        "allowed_roles": role or None,
        "bypass_paths": bypass_path or [],
        "reauth_minutes": reauth_minutes,
    }
    services = load_services()
    found = find_practice(services, practice)
    try:
        view = services.apps.add_app(practice_id=found.id, actor_id=None, context=RequestContext.system(), **fields)
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    if as_json:
        print(json.dumps(app_json(view)))
    else:
        console.print(f"Added app {view.id}: {view.name} ({view.url or 'no address'}).", markup=False)


@app.command("list")
def list_(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of the apps.")] = False,
) -> None:
    """List a practice's apps."""
    services = load_services()
    found = find_practice(services, practice)
    apps = services.apps.list_apps(practice_id=found.id)
    services.close()
    if as_json:
        print(json.dumps([app_json(view) for view in apps]))
        return
    if not apps:
        console.print(f"{practice} has no apps. Add one with: twofold app add --practice NAME --name NAME --url URL")
        return
    table = Table(title=f"Apps of {practice}")
    for column in ("id", "name", "url", "roles", "bypass paths", "ask again after", "enabled"):
        table.add_column(column, no_wrap=column == "url")
    for view in apps:
        table.add_row(
            str(view.id),
            view.name,
            view.url or "—",
            ", ".join(view.allowed_roles),
            " ".join(view.bypass_paths) or "—",
            f"{view.reauth_minutes} min" if view.reauth_minutes else "—",
            "yes" if view.enabled else "no",
        )
    console.print(table)


@app.command("remove")
def remove(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    app_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1, help="The app's id (see app list).")],
) -> None:
    """Remove an app of a practice (audited): its address is refused at the proxy from then on."""
    services = load_services()
    found = find_practice(services, practice)
    try:
        services.apps.remove_app(practice_id=found.id, actor_id=None, app_id=app_id, context=RequestContext.system())
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    console.print(f"Removed app {app_id}.")
