"""A practice's apps behind Twofold: Administration › Apps and ``/api/v1/practice/apps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from twofold import errors as core
from twofold.core.oidc.clients import RegisteredClient
from twofold.core.practice.apps import AppView
from twofold.web.deps import Context, PracticeAdmin, RowId, ServicesDep
from twofold.web.practice.common import CONFLICT, api_router
from twofold.web.practice.schemas import AppCreate, AppListPublic, AppPublic, AppUpdate
from twofold.web.rendering import PRACTICE_NOTICES, link_base, render
from twofold.web.schemas import ErrorPublic, Responses

api = api_router()
pages = APIRouter(include_in_schema=False)

APP_NOT_FOUND: Responses = {404: {"model": ErrorPublic, "description": "No such app in your practice"}}
FIELD_ERRORS = (
    "`invalid_name`, `invalid_url`, `url_required`, `unknown_role`, `invalid_bypass_path`, "
    "`invalid_reauth_minutes` (422), `duplicate_app_url` (409)"
)


# -- JSON ------------------------------------------------------------------------------------


@api.get("/apps", response_model=AppListPublic, summary="The practice's apps")
def list_apps(admin: PracticeAdmin, services: ServicesDep):
    apps = services.apps.list_apps(practice_id=admin.user.practice_id)
    clients = services.oidc_clients.of_apps(practice_id=admin.user.practice_id)
    return AppListPublic(items=[AppPublic.of(app, clients.get(app.id)) for app in apps], total=len(apps))


@api.post(
    "/apps",
    response_model=AppPublic,
    status_code=201,
    responses=CONFLICT,
    summary="Register an app",
    description="`url` is where members open the app; the proxy's requests for its host are answered for it. "
    "`allowed_roles` defaults to every role; `bypass_paths` are path prefixes served without sign-in; "
    f"`reauth_minutes` asks for password and code again when the last sign-in is older. "
    "With `redirect_uris` the app is also an OpenID Connect client (then `url` is optional): the answer "
    "carries its `client_id` and, unless `public`, its `client_secret`, shown this once. "
    f"Errors: {FIELD_ERRORS}.",
)
def add_app(body: AppCreate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    view, credentials = services.oidc_clients.add_app(
        practice_id=admin.user.practice_id,
        actor_id=admin.user.id,
        context=context,
        **body.model_dump(),
    )
    client, secret = (credentials.client, credentials.client_secret) if credentials else (None, None)
    return JSONResponse(AppPublic.of(view, client, secret).model_dump(), status_code=201)


@api.post(
    "/apps/{app_id}/rotate-secret",
    response_model=AppPublic,
    responses=APP_NOT_FOUND,
    summary="A new OpenID Connect client secret",
    description="The answer carries the new `client_secret`, shown this once; the old one stops working at once. "
    "422 `invalid_input` for a public client (it has no secret).",
)
def rotate_secret(app_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    made = services.oidc_clients.rotate_secret(
        practice_id=admin.user.practice_id, app_id=app_id, actor_id=admin.user.id, context=context
    )
    view = services.apps.get_app(practice_id=admin.user.practice_id, app_id=app_id)
    return AppPublic.of(view, made.client, made.client_secret)


@api.get("/apps/{app_id}", response_model=AppPublic, responses=APP_NOT_FOUND, summary="One app")
def get_app(app_id: RowId, admin: PracticeAdmin, services: ServicesDep):
    view = services.apps.get_app(practice_id=admin.user.practice_id, app_id=app_id)
    return AppPublic.of(view, services.oidc_clients.of_apps(practice_id=admin.user.practice_id).get(view.id))


@api.patch(
    "/apps/{app_id}",
    response_model=AppPublic,
    responses={**APP_NOT_FOUND, **CONFLICT},
    summary="Change, disable or enable an app",
    description=f"Fields left out keep their value; `enabled: false` refuses every member at the proxy. "
    f"Errors: {FIELD_ERRORS}.",
)
def update_app(app_id: RowId, body: AppUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    client_changes = body.client_changes()
    view, client = services.oidc_clients.change_app(
        practice_id=admin.user.practice_id,
        app_id=app_id,
        changes=body.changes(),
        redirect_uris=client_changes.get("redirect_uris"),
        post_logout_redirect_uris=client_changes.get("post_logout_redirect_uris"),
        backchannel_logout_uri=client_changes.get("backchannel_logout_uri"),
        context=context,
        actor_id=admin.user.id,
    )
    return AppPublic.of(view, client)


@api.delete("/apps/{app_id}", status_code=204, responses=APP_NOT_FOUND, summary="Remove an app")
def remove_app(app_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.apps.remove_app(practice_id=admin.user.practice_id, actor_id=admin.user.id, app_id=app_id, context=context)
    return Response(status_code=204)


# -- pages ------------------------------------------------------------------------------------

Text = Annotated[str, Form(max_length=2048)]
Lines = Annotated[str, Form(max_length=12_000)]
Roles = Annotated[list[str], Form()]


def _form_changes(name: str, url: str, allowed_roles: list[str], bypass_paths: str, reauth_minutes: str, enabled: bool):
    minutes = reauth_minutes.strip()
    if minutes and not minutes.isdigit():
        raise core.InvalidInput("Minutes before asking again must be a whole number, or empty.")
    return {
        "name": name,
        "url": url,
        "allowed_roles": allowed_roles[:10],
        "bypass_paths": [line.strip() for line in bypass_paths.splitlines() if line.strip()][:60],
        "reauth_minutes": int(minutes) if minutes else None,
        "enabled": enabled,
    }


def _form_of(view: AppView, client: RegisteredClient | None = None) -> dict:
    return {
        "name": view.name,
        "url": view.url or "",
        "allowed_roles": view.allowed_roles,
        "bypass_paths": "\n".join(view.bypass_paths),
        "reauth_minutes": view.reauth_minutes or "",
        "enabled": view.enabled,
        "redirect_uris": "\n".join(client.redirect_uris) if client else "",
        "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris) if client else "",
        "backchannel_logout_uri": (client.backchannel_logout_uri or "") if client else "",
    }


@pages.get("/admin/apps")
def apps_page(request: Request, admin: PracticeAdmin, services: ServicesDep, notice: str = ""):
    return render(
        request,
        "admin/apps.html",
        {
            "session": admin,
            "apps": services.apps.list_apps(practice_id=admin.user.practice_id),
            "form": {"allowed_roles": [], "enabled": True},
            "notice": PRACTICE_NOTICES.get(notice),
        },
    )


@pages.post("/admin/apps")
def add_app_submit(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Text = "",
    allowed_roles: Roles = [],  # noqa: B006 - FastAPI copies defaults
    bypass_paths: Lines = "",
    reauth_minutes: Annotated[str, Form(max_length=8)] = "",
    redirect_uris: Lines = "",
    post_logout_redirect_uris: Lines = "",
    public: Annotated[bool, Form()] = False,
    backchannel_logout_uri: Text = "",
):
    form = {
        "name": name,
        "url": url,
        "allowed_roles": allowed_roles,
        "bypass_paths": bypass_paths,
        "reauth_minutes": reauth_minutes,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "public": public,
        "backchannel_logout_uri": backchannel_logout_uri,
    }
    try:
        fields = _form_changes(name, url, allowed_roles, bypass_paths, reauth_minutes, True)
        view, credentials = services.oidc_clients.add_app(
            practice_id=admin.user.practice_id,
            actor_id=admin.user.id,
            context=context,
            name=fields["name"],
            url=fields["url"] or None,
            allowed_roles=fields["allowed_roles"] or None,
            bypass_paths=fields["bypass_paths"],
            reauth_minutes=fields["reauth_minutes"],
            redirect_uris=_lines(redirect_uris),
            post_logout_redirect_uris=_lines(post_logout_redirect_uris),
            public=public,
            backchannel_logout_uri=backchannel_logout_uri.strip() or None,
        )
    except (core.InvalidInput, core.Conflict) as exc:
        apps = services.apps.list_apps(practice_id=admin.user.practice_id)
        page = {"session": admin, "apps": apps, "form": form, "error": exc.message}
        return render(request, "admin/apps.html", page, 409 if isinstance(exc, core.Conflict) else 422)
    if credentials is not None:
        # The client secret is shown on this answer only (never in a URL, never again).
        return _app_page(request, admin, services, view, notice="app_added", client_secret=credentials.client_secret)
    return RedirectResponse("/admin/apps?notice=app_added", status_code=303)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()][:25]


def _app_page(
    request: Request, admin, services, view: AppView, *, notice: str = "", client_secret: str | None = None
) -> Response:
    """An app's page; with ``client_secret`` (just made) it shows it, this once."""
    client = services.oidc_clients.of_apps(practice_id=admin.user.practice_id).get(view.id)
    page = {
        "session": admin,
        "app": view,
        "form": _form_of(view, client),
        "notice": PRACTICE_NOTICES.get(notice),
        "client": client,
        "client_secret": client_secret,
        "issuer": link_base(request),
    }
    return render(request, "admin/app.html", page)


@pages.get("/admin/apps/{app_id}")
def app_page(request: Request, app_id: RowId, admin: PracticeAdmin, services: ServicesDep, notice: str = ""):
    view = services.apps.get_app(practice_id=admin.user.practice_id, app_id=app_id)
    return _app_page(request, admin, services, view, notice=notice)


@pages.post("/admin/apps/{app_id}")
def app_submit(
    request: Request,
    app_id: RowId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Text = "",
    allowed_roles: Roles = [],  # noqa: B006
    bypass_paths: Lines = "",
    reauth_minutes: Annotated[str, Form(max_length=8)] = "",
    enabled: Annotated[bool, Form()] = False,
    redirect_uris: Lines = "",
    post_logout_redirect_uris: Lines = "",
    backchannel_logout_uri: Text = "",
):
    view = services.apps.get_app(practice_id=admin.user.practice_id, app_id=app_id)
    client = services.oidc_clients.of_apps(practice_id=admin.user.practice_id).get(view.id)
    form = {
        "name": name,
        "url": url,
        "allowed_roles": allowed_roles,
        "bypass_paths": bypass_paths,
        "reauth_minutes": reauth_minutes,
        "enabled": enabled,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "backchannel_logout_uri": backchannel_logout_uri,
    }
    try:
        changes = _form_changes(name, url, allowed_roles, bypass_paths, reauth_minutes, enabled)
        if not changes["url"] and view.url is None:
            del changes["url"]  # an app without an address (OpenID Connect only) keeps none
        if not changes["allowed_roles"]:
            raise core.InvalidInput("Tick at least one role that may use the app.")
        services.oidc_clients.change_app(  # a client's lists are on the form too
            practice_id=admin.user.practice_id,
            app_id=app_id,
            changes=changes,
            redirect_uris=_lines(redirect_uris) if client is not None else None,
            post_logout_redirect_uris=_lines(post_logout_redirect_uris) if client is not None else None,
            backchannel_logout_uri=backchannel_logout_uri.strip() if client is not None else None,
            context=context,
            actor_id=admin.user.id,
        )
    except (core.InvalidInput, core.Conflict) as exc:
        page = {"session": admin, "app": view, "form": form, "error": exc.message, "client": client}
        page["issuer"] = link_base(request)
        return render(request, "admin/app.html", page, 409 if isinstance(exc, core.Conflict) else 422)
    return RedirectResponse(f"/admin/apps/{app_id}?notice=app_saved", status_code=303)


@pages.post("/admin/apps/{app_id}/remove")
def app_remove(app_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.apps.remove_app(practice_id=admin.user.practice_id, actor_id=admin.user.id, app_id=app_id, context=context)
    return RedirectResponse("/admin/apps?notice=app_removed", status_code=303)


@pages.post("/admin/apps/{app_id}/rotate-secret")
def app_rotate_secret(request: Request, app_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    made = services.oidc_clients.rotate_secret(
        practice_id=admin.user.practice_id, app_id=app_id, actor_id=admin.user.id, context=context
    )
    view = services.apps.get_app(practice_id=admin.user.practice_id, app_id=app_id)
    return _app_page(request, admin, services, view, client_secret=made.client_secret)
