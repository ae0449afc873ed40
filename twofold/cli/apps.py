"""``twofold app``: a practice's apps behind Twofold, added, changed, listed and removed.

``app add`` gathers its options into one set of fields for ``AppService.add_app``, so a
protocol that needs more of an app (OpenID Connect's redirect URIs, say) adds its options
and fields here without another command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from twofold.cli.common import console, fail, find_practice, load_services
from twofold.context import RequestContext
from twofold.errors import TwofoldError

if TYPE_CHECKING:
    from twofold.core.oidc.clients import RegisteredClient
    from twofold.core.practice.apps import AppView

app = typer.Typer(
    help="A practice's apps behind Twofold: add, change, list, remove, rotate an OpenID Connect secret.",
    no_args_is_help=True,
)


def app_json(view: AppView, client: RegisteredClient | None = None, secret: str | None = None) -> dict[str, Any]:
    """An app as the API answers it (``GET /api/v1/practice/apps/{id}``); ``secret`` only when just made."""
    answer: dict[str, Any] = {
        "id": view.id,
        "name": view.name,
        "url": view.url,
        "allowed_roles": view.allowed_roles,
        "bypass_paths": view.bypass_paths,
        "reauth_minutes": view.reauth_minutes,
        "enabled": view.enabled,
        "client_id": None,
        "public": None,
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "backchannel_logout_uri": None,
    }
    if client is not None:
        answer.update(client.describe())
    if secret is not None:
        answer["client_secret"] = secret
    return answer


def print_client(client: RegisteredClient, secret: str | None) -> None:
    console.print(f"client_id:     {client.client_id}", markup=False)
    if secret is not None:
        console.print(f"client_secret: {secret}", markup=False)
        console.print("Copy the client secret now: it is shown only this once.", style="bold")


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
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="OpenID Connect: where the app receives sign-ins (exact; repeat)."),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--post-logout-redirect-uri", help="OpenID Connect: where sign-out may return to (repeat)."),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="OpenID Connect: a client without a secret (PKCE only).")
    ] = False,
    backchannel_logout_uri: Annotated[
        str | None,
        typer.Option(help="OpenID Connect: where Twofold posts a logout token when a member's session ends."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the app as one JSON object.")] = False,
) -> None:
    """Register an app of a practice (audited). With --redirect-uri it is an OpenID Connect client:
    its client_id and (unless --public) its client_secret are printed, the secret this once."""
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
        view, credentials = services.oidc_clients.add_app(
            practice_id=found.id,
            actor_id=None,
            context=RequestContext.system(),
            redirect_uris=redirect_uri or [],
            post_logout_redirect_uris=post_logout_redirect_uri or [],
            public=public,
            backchannel_logout_uri=backchannel_logout_uri,
            **fields,
        )
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    client, secret = (credentials.client, credentials.client_secret) if credentials else (None, None)
    if as_json:
        print(json.dumps(app_json(view, client, secret)))
        return
    console.print(f"Added app {view.id}: {view.name} ({view.url or 'no address'}).", markup=False)
    if client is not None:
        print_client(client, secret)


@app.command("rotate-secret")
def rotate_secret(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    app_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1, help="The app's id (see app list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the app as one JSON object.")] = False,
) -> None:
    """A new OpenID Connect client secret for an app (audited); the old one stops working at once."""
    services = load_services()
    found = find_practice(services, practice)
    try:
        made = services.oidc_clients.rotate_secret(practice_id=found.id, app_id=app_id, context=RequestContext.system())
        view = services.apps.get_app(practice_id=found.id, app_id=app_id)
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    if as_json:
        print(json.dumps(app_json(view, made.client, made.client_secret)))
        return
    console.print(f"New client secret for app {view.id}: {view.name}.", markup=False)
    print_client(made.client, made.client_secret)


@app.command("change")
def change(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    app_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1, help="The app's id (see app list).")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    url: Annotated[str | None, typer.Option(help="A new address (an app behind the proxy keeps one).")] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="The roles that may use the app from now on (repeat).")
    ] = None,
    bypass_path: Annotated[
        list[str] | None,
        typer.Option("--bypass-path", help="The path prefixes served without sign-in from now on (repeat)."),
    ] = None,
    no_bypass_paths: Annotated[bool, typer.Option("--no-bypass-paths", help="Serve no path without sign-in.")] = False,
    reauth_minutes: Annotated[
        int | None, typer.Option(help="Ask for password and code again when the last sign-in is older.")
    ] = None,
    no_reauth: Annotated[
        bool, typer.Option("--no-reauth", help="No limit of its own on how old the last sign-in may be.")
    ] = False,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Disabled: every member is refused at the proxy and at sign-in."),
    ] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="OpenID Connect: the redirect URIs from now on (exact; repeat)."),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--post-logout-redirect-uri", help="OpenID Connect: the post-logout URIs from now on (repeat)."),
    ] = None,
    no_post_logout_redirect_uris: Annotated[
        bool, typer.Option("--no-post-logout-redirect-uris", help="OpenID Connect: no post-logout URI.")
    ] = False,
    backchannel_logout_uri: Annotated[
        str | None, typer.Option(help="OpenID Connect: where Twofold posts a logout token when a session ends.")
    ] = None,
    no_backchannel_logout_uri: Annotated[
        bool, typer.Option("--no-backchannel-logout-uri", help="OpenID Connect: no back-channel logout.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the app as one JSON object.")] = False,
) -> None:
    """Change an app of a practice (audited). Only the options given change; a repeated option
    (--role, --bypass-path, --redirect-uri) replaces the whole list. Nothing is written if any
    value is refused."""
    if bypass_path and no_bypass_paths:
        fail("Give --bypass-path or --no-bypass-paths, not both.")
    if reauth_minutes is not None and no_reauth:
        fail("Give --reauth-minutes or --no-reauth, not both.")
    if post_logout_redirect_uri and no_post_logout_redirect_uris:
        fail("Give --post-logout-redirect-uri or --no-post-logout-redirect-uris, not both.")
    if backchannel_logout_uri and no_backchannel_logout_uri:
        fail("Give --backchannel-logout-uri or --no-backchannel-logout-uri, not both.")
    logout_uri = "" if no_backchannel_logout_uri else backchannel_logout_uri
    asked: dict[str, Any] = {
        "name": name,
        "url": url,
        "allowed_roles": role or None,
        "bypass_paths": [] if no_bypass_paths else (bypass_path or None),
        "reauth_minutes": reauth_minutes,
        "enabled": enabled,
    }
    changes = {field: value for field, value in asked.items() if value is not None}
    if no_reauth:
        changes["reauth_minutes"] = None
    logout_uris = [] if no_post_logout_redirect_uris else (post_logout_redirect_uri or None)
    if not changes and redirect_uri is None and logout_uris is None and logout_uri is None:
        fail("Nothing to change: give at least one option (see twofold app change --help).")
    services = load_services()
    found = find_practice(services, practice)
    try:
        view, client = services.oidc_clients.change_app(
            practice_id=found.id,
            app_id=app_id,
            changes=changes,
            redirect_uris=redirect_uri or None,
            post_logout_redirect_uris=logout_uris,
            backchannel_logout_uri=logout_uri,
            context=RequestContext.system(),
        )
    except TwofoldError as exc:
        fail(exc.message)
    finally:
        services.close()
    if as_json:
        print(json.dumps(app_json(view, client)))
        return
    console.print(f"Changed app {view.id}: {view.name} ({'enabled' if view.enabled else 'disabled'}).", markup=False)


@app.command("list")
def list_(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of the apps.")] = False,
) -> None:
    """List a practice's apps."""
    services = load_services()
    found = find_practice(services, practice)
    apps = services.apps.list_apps(practice_id=found.id)
    clients = services.oidc_clients.of_apps(practice_id=found.id)
    services.close()
    if as_json:
        print(json.dumps([app_json(view, clients.get(view.id)) for view in apps]))
        return
    if not apps:
        console.print(
            f"{escape(practice)} has no apps. Add one with: twofold app add --practice NAME --name NAME --url URL"
        )
        return
    table = Table(title=f"Apps of {escape(practice)}")
    for column in ("id", "name", "url", "roles", "bypass paths", "ask again after", "enabled", "client_id"):
        table.add_column(column, no_wrap=column == "url")
    for view in apps:
        table.add_row(
            str(view.id),
            escape(view.name),
            escape(view.url or "—"),
            ", ".join(view.allowed_roles),
            escape(" ".join(view.bypass_paths) or "—"),
            f"{view.reauth_minutes} min" if view.reauth_minutes else "—",
            "yes" if view.enabled else "no",
            clients[view.id].client_id if view.id in clients else "—",
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
