"""Shared workstations: Administration › Workstations and ``/api/v1/practice/workstations``.

Marking acts on the browser (or client) that asks: it receives the workstation cookie.
Listing, renaming and unmarking work from any browser of the practice's admins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from twofold import errors as core
from twofold.core.remembered import BrowserCookie
from twofold.core.workstations import COOKIE_NAME, WorkstationNameInvalid
from twofold.web.deps import Context, PracticeAdmin, RowId, ServicesDep
from twofold.web.errors import status_for
from twofold.web.practice.common import CONFLICT, api_router
from twofold.web.practice.schemas import (
    WorkstationListPublic,
    WorkstationMark,
    WorkstationPublic,
    WorkstationRename,
)
from twofold.web.rendering import PRACTICE_NOTICES, render, set_cookies
from twofold.web.schemas import ErrorPublic, Responses

api = api_router()
pages = APIRouter(include_in_schema=False)

WORKSTATION_NOT_FOUND: Responses = {
    404: {"model": ErrorPublic, "description": "No such marked workstation in your practice"}
}
# The cookie's deletion, for the browser whose own mark just ended.
FORGET_MARK = BrowserCookie(COOKIE_NAME)


# -- JSON ------------------------------------------------------------------------------------


@api.get("/workstations", response_model=WorkstationListPublic, summary="The practice's shared workstations")
def list_workstations(admin: PracticeAdmin, services: ServicesDep, context: Context):
    items = services.workstations.list_workstations(practice_id=admin.user.practice_id, context=context)
    return WorkstationListPublic(items=[WorkstationPublic.of(view) for view in items], total=len(items))


@api.post(
    "/workstations",
    response_model=WorkstationPublic,
    status_code=201,
    responses=CONFLICT,
    summary="Mark this client as a shared workstation",
    description="Marks the client that sends the request and sets its workstation cookie `twofold_workstation` "
    "(kept 400 days). Sessions started there never remember the browser and end after the policy's "
    "`shared_workstation_idle_minutes`. 409 `already_a_workstation` when the client already is one; "
    "422 `invalid_workstation_name`.",
)
def mark_workstation(
    body: WorkstationMark, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    marked = services.workstations.mark(admin=admin.user, name=body.name, context=context, session_id=admin.session_id)
    response = JSONResponse(WorkstationPublic.of(marked.view).model_dump(), status_code=201)
    return set_cookies(request, response, cookies=[marked.cookie])


@api.patch(
    "/workstations/{workstation_id}",
    response_model=WorkstationPublic,
    responses=WORKSTATION_NOT_FOUND,
    summary="Rename a shared workstation",
)
def rename_workstation(
    workstation_id: RowId, body: WorkstationRename, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    view = services.workstations.rename(
        practice_id=admin.user.practice_id,
        workstation_id=workstation_id,
        name=body.name,
        actor_id=admin.user.id,
        context=context,
    )
    return WorkstationPublic.of(view)


@api.delete(
    "/workstations/{workstation_id}",
    status_code=204,
    responses=WORKSTATION_NOT_FOUND,
    summary="Unmark a shared workstation",
    description="Ends the mark at once: the browser's cookie no longer counts, wherever it is.",
)
def unmark_workstation(
    workstation_id: RowId, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    was_this_one = services.workstations.unmark(
        practice_id=admin.user.practice_id, workstation_id=workstation_id, actor_id=admin.user.id, context=context
    )
    return set_cookies(request, Response(status_code=204), cookies=[FORGET_MARK] if was_this_one else [])


# -- pages ------------------------------------------------------------------------------------

Name = Annotated[str, Form(max_length=400)]


def workstations_page(request: Request, admin, services, context, status: int = 200, **extra) -> Response:
    items = services.workstations.list_workstations(practice_id=admin.user.practice_id, context=context)
    page = {
        "session": admin,
        "workstations": items,
        "this_browser": next((view for view in items if view.current), None),
        "notice": PRACTICE_NOTICES.get(request.query_params.get("notice") or ""),
        **extra,
    }
    return render(request, "admin/workstations.html", page, status)


@pages.get("/admin/workstations")
def workstations(request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context):
    return workstations_page(request, admin, services, context)


@pages.post("/admin/workstations")
def mark_submit(request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context, name: Name = ""):
    try:
        marked = services.workstations.mark(admin=admin.user, name=name, context=context, session_id=admin.session_id)
    except WorkstationNameInvalid as exc:
        return workstations_page(
            request, admin, services, context, 422, error=exc.message, error_field="mark-name", name=name
        )
    except core.Conflict as exc:
        return workstations_page(request, admin, services, context, 409, error=exc.message, name=name)
    response = RedirectResponse("/admin/workstations?notice=workstation_marked", status_code=303)
    return set_cookies(request, response, cookies=[marked.cookie])


@pages.post("/admin/workstations/{workstation_id}/rename")
def rename_submit(
    request: Request,
    workstation_id: RowId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    name: Name = "",
):
    try:
        services.workstations.rename(
            practice_id=admin.user.practice_id,
            workstation_id=workstation_id,
            name=name,
            actor_id=admin.user.id,
            context=context,
        )
    except WorkstationNameInvalid as exc:
        return workstations_page(
            request, admin, services, context, 422, error=exc.message, error_field=f"rename-{workstation_id}", name=name
        )
    except core.NotFound as exc:
        return workstations_page(request, admin, services, context, status_for(exc), error=exc.message)
    return RedirectResponse("/admin/workstations?notice=workstation_renamed", status_code=303)


@pages.post("/admin/workstations/{workstation_id}/unmark")
def unmark_submit(
    request: Request, workstation_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    try:
        was_this_one = services.workstations.unmark(
            practice_id=admin.user.practice_id, workstation_id=workstation_id, actor_id=admin.user.id, context=context
        )
    except core.NotFound as exc:
        return workstations_page(request, admin, services, context, status_for(exc), error=exc.message)
    response = RedirectResponse("/admin/workstations?notice=workstation_unmarked", status_code=303)
    return set_cookies(request, response, cookies=[FORGET_MARK] if was_this_one else [])
