"""Members: the list (search, filters, CSV), adding one, importing many from CSV, a member's
page, their role, deactivating and reactivating; pages and ``/api/v1/practice/members``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse

from twofold import errors as core
from twofold.core.practice.members import MemberFilter
from twofold.store.models import ROLES
from twofold.web.deps import Context, MemberId, PracticeAdmin, ServicesDep
from twofold.web.practice.common import (
    CONFLICT,
    CSV_ANSWER,
    NOT_FOUND,
    Page,
    SameOriginExport,
    Text,
    api_router,
    check_export_origin,
    csv_download,
    member_page,
    page_link,
    wants_csv,
)
from twofold.web.practice.schemas import (
    ImportResultPublic,
    ImportRowPublic,
    MemberCreate,
    MemberPagePublic,
    MemberPublic,
    MemberUpdate,
)
from twofold.web.rendering import PRACTICE_NOTICES, link_base, render
from twofold.web.schemas import StatusPublic

api = api_router()
pages = APIRouter(include_in_schema=False)


# -- JSON ------------------------------------------------------------------------------------


@api.get(
    "/members",
    response_model=MemberPagePublic,
    responses=CSV_ANSWER,
    summary="List, search and filter members",
    description="50 a page, by name. `q` matches name or email; `without_two_factor=true` keeps members without 2FA. "
    "With `Accept: text/csv` every matching member is streamed as CSV instead.",
)
def list_members(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    q: Text = None,
    without_two_factor: bool = False,
    role: Annotated[str | None, Query(max_length=16)] = None,
    active: bool | None = None,
    page: Page = 1,
):
    if role is not None and role not in ROLES:
        raise core.InvalidInput(f"role must be one of: {', '.join(ROLES)}.")
    member_filter = MemberFilter(q=q, without_two_factor=without_two_factor, role=role, active=active)
    practice_id = admin.user.practice_id
    if wants_csv(request):
        check_export_origin(request)
        lines = services.members.export_csv(
            practice_id=practice_id, actor_id=admin.user.id, context=context, filter=member_filter
        )
        return csv_download(lines, "members.csv")
    found = services.members.list_members(practice_id=practice_id, filter=member_filter, page=page)
    return MemberPagePublic(items=[MemberPublic.of(view) for view in found.items], total=found.total)


@api.post(
    "/members",
    response_model=MemberPublic,
    status_code=201,
    responses=CONFLICT,
    summary="Add a member",
    description="The member has no password yet: they are emailed a set-up link (valid 72 hours) to choose one "
    "and set up two-factor authentication. An address that has an account in another practice is added and "
    "answered the same way; its owner is emailed an invitation to move that account here instead. Errors: "
    "`invalid_email`, `unknown_role`, `invalid_name` (422), `duplicate_email` (409: already a member of your "
    "practice).",
)
def add_member(body: MemberCreate, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context):
    view = services.members.add_member(
        practice_id=admin.user.practice_id,
        actor_id=admin.user.id,
        email=body.email,
        name=body.name,
        role=body.role,
        context=context,
        link_base=link_base(request),
    )
    return JSONResponse(MemberPublic.of(view).model_dump(), status_code=201)


@api.post(
    "/members/import",
    response_model=ImportResultPublic,
    summary="Add members from CSV",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
    description="The body is CSV (UTF-8) whose first line names the columns `email,name,role`. Every row is "
    "reported: imported, or failed with `invalid_email`, `unknown_role`, `invalid_name` or `duplicate_email` "
    "(twice in the file, or already a member of your practice; an address with an account in another practice "
    "is imported like a new one, and its owner invited); "
    "the good rows are imported, each whole or not at all. New members are emailed a set-up link unless "
    "`send_setup_links=false`. Bodies are limited to TWOFOLD_MAX_BODY_BYTES; the CLI imports any size.",
)
async def import_members(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    send_setup_links: bool = True,
):
    body = await request.body()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise core.InvalidInput("The file must be CSV in UTF-8.") from None
    base = link_base(request)

    def run():
        return list(
            services.members.import_csv(
                practice_id=admin.user.practice_id,
                actor_id=admin.user.id,
                lines=text.splitlines(keepends=True),  # the csv module needs the line breaks in quoted cells
                context=context,
                send_setup_links=send_setup_links,
                link_base=base,
            )
        )

    results = await run_in_threadpool(run)
    return ImportResultPublic(
        imported=sum(r.status == "imported" for r in results),
        failed=sum(r.status != "imported" for r in results),
        rows=[ImportRowPublic.of(r) for r in results],
    )


@api.get("/members/{member_id}", response_model=MemberPublic, responses=NOT_FOUND, summary="One member")
def get_member(member_id: MemberId, admin: PracticeAdmin, services: ServicesDep):
    return MemberPublic.of(services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id))


@api.patch(
    "/members/{member_id}",
    response_model=MemberPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Change a member's role, or deactivate or reactivate them",
    description="Deactivating ends the member's sessions and remembered browsers at once. The last active admin "
    "can be neither demoted nor deactivated (409 `last_admin`).",
)
def update_member(
    member_id: MemberId, body: MemberUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    view = services.members.update_member(
        practice_id=admin.user.practice_id,
        actor_id=admin.user.id,
        member_id=member_id,
        role=body.role,
        active=body.active,
        context=context,
    )
    return MemberPublic.of(view)


@api.post(
    "/members/{member_id}/unlock",
    response_model=StatusPublic,
    responses=NOT_FOUND,
    summary="Unlock a member's sign-in",
    description="Forgets the member's failed passwords (from every client) and codes, so a member locked out by "
    "wrong guesses can sign in again at once. Audited as `practice:member:unlocked`.",
)
def unlock_member(member_id: MemberId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.members.unlock_member(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, context=context
    )
    return StatusPublic(status="unlocked")


# -- pages ------------------------------------------------------------------------------------


def _member_filter(q: str, show: str, role: str) -> MemberFilter:
    return MemberFilter(
        q=q or None,
        without_two_factor=show == "without_two_factor",
        role=role if role in ROLES else None,
        active={"active": True, "inactive": False}.get(show),
    )


@pages.get("/admin")
def admin_home(_admin: PracticeAdmin):
    return RedirectResponse("/admin/members", status_code=303)


@pages.get("/admin/members")
def members_page(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    q: str = "",
    show: str = "",
    role: str = "",
    page: int = 1,
    notice: str = "",
):
    q, page = q[:200], max(1, min(page, 1_000_000))
    found = services.members.list_members(
        practice_id=admin.user.practice_id, filter=_member_filter(q, show, role), page=page
    )
    params = {"q": q, "show": show, "role": role}
    return render(
        request,
        "admin/members.html",
        {
            "session": admin,
            "found": found,
            "params": params,
            "link": lambda **c: page_link("/admin/members", params, **c),
            "csv_link": page_link("/admin/members.csv", params),
            "admins_without": services.members.admins_without_two_factor(practice_id=admin.user.practice_id),
            "alerts": services.alerts.recent(practice_id=admin.user.practice_id),
            "notice": PRACTICE_NOTICES.get(notice),
        },
    )


@pages.get("/admin/members.csv", dependencies=[SameOriginExport])
def members_csv(
    admin: PracticeAdmin, services: ServicesDep, context: Context, q: str = "", show: str = "", role: str = ""
):
    lines = services.members.export_csv(
        practice_id=admin.user.practice_id,
        actor_id=admin.user.id,
        context=context,
        filter=_member_filter(q[:200], show, role),
    )
    return csv_download(lines, "members.csv")


# Registered before "/admin/members/{member_id}", which would otherwise take "new" and "import" as an id.
@pages.get("/admin/members/new")
def new_member_page(request: Request, admin: PracticeAdmin):
    return render(request, "admin/member_new.html", {"session": admin, "form": {"role": "staff"}})


@pages.post("/admin/members/new")
def new_member_submit(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    email: Annotated[str, Form(max_length=320)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
):
    try:
        view = services.members.add_member(
            practice_id=admin.user.practice_id,
            actor_id=admin.user.id,
            email=email,
            name=name,
            role=role,
            context=context,
            link_base=link_base(request),
        )
    except (core.InvalidInput, core.Conflict) as exc:
        form = {"email": email, "name": name, "role": role}
        return render(
            request,
            "admin/member_new.html",
            {"session": admin, "form": form, "error": exc.message, "field": _field(exc)},
            422,
        )
    return RedirectResponse(f"/admin/members/{view.id}?notice=added", status_code=303)


def _field(exc: core.TwofoldError) -> str | None:
    return {"invalid_email": "email", "duplicate_email": "email", "invalid_name": "name", "unknown_role": "role"}.get(
        exc.code
    )


@pages.get("/admin/members/import")
def import_page(request: Request, admin: PracticeAdmin):
    return render(request, "admin/import.html", {"session": admin, "send_setup_links": True})


@pages.post("/admin/members/import")
def import_submit(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    file: Annotated[UploadFile | None, File()] = None,
    send_setup_links: Annotated[bool, Form()] = False,
):
    error, results = None, None
    try:
        raw = file.file.read() if file is not None else b""
        if not raw.strip():
            raise core.InvalidInput("Choose a CSV file to upload.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise core.InvalidInput("The file must be CSV in UTF-8 (in a spreadsheet: Save as › CSV UTF-8).") from None
        results = list(
            services.members.import_csv(
                practice_id=admin.user.practice_id,
                actor_id=admin.user.id,
                lines=text.splitlines(keepends=True),  # the csv module needs the line breaks in quoted cells
                context=context,
                send_setup_links=send_setup_links,
                link_base=link_base(request),
            )
        )
    except core.InvalidInput as exc:
        error = exc.message
    return render(
        request,
        "admin/import.html",
        {
            "session": admin,
            "error": error,
            "results": results,
            "send_setup_links": send_setup_links,
            "imported": sum(r.status == "imported" for r in results or []),
            "failed": sum(r.status != "imported" for r in results or []),
        },
        422 if error else 200,
    )


@pages.get("/admin/members/{member_id}")
def member_page_view(request: Request, member_id: MemberId, admin: PracticeAdmin, services: ServicesDep):
    return member_page(request, admin, services, member_id)


@pages.post("/admin/members/{member_id}/role")
def member_role(
    request: Request,
    member_id: MemberId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    role: Annotated[str, Form(max_length=16)] = "",
):
    try:
        services.members.update_member(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, role=role, context=context
        )
    except (core.InvalidInput, core.Conflict) as exc:
        return member_page(request, admin, services, member_id, 409, role_error=exc.message)
    return RedirectResponse(f"/admin/members/{member_id}?notice=role", status_code=303)


@pages.post("/admin/members/{member_id}/active")
def member_active(
    request: Request,
    member_id: MemberId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    active: Annotated[str, Form(max_length=8)] = "",
):
    if active not in ("yes", "no"):
        return member_page(request, admin, services, member_id, 422, active_error="Choose to activate or deactivate.")
    try:
        services.members.update_member(
            practice_id=admin.user.practice_id,
            actor_id=admin.user.id,
            member_id=member_id,
            active=active == "yes",
            context=context,
        )
    except core.Conflict as exc:
        return member_page(request, admin, services, member_id, 409, active_error=exc.message)
    notice = "reactivated" if active == "yes" else "deactivated"
    if member_id == admin.user.id and active == "no":
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(f"/admin/members/{member_id}?notice={notice}", status_code=303)


@pages.post("/admin/members/{member_id}/unlock")
def member_unlock(request: Request, member_id: MemberId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.members.unlock_member(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, context=context
    )
    return RedirectResponse(f"/admin/members/{member_id}?notice=unlocked", status_code=303)
