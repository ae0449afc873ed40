"""JSON API: practice administration (issue 5). Every route is for the practice's admins only.

Each route passes the signed-in admin's own practice to the core, which finds
members only inside it: another practice's member id answers 404, as if it did
not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from twofold.core.practice.audit_log import AuditFilter, parse_moment
from twofold.errors import InvalidCode, InvalidInput
from twofold.core.practice.members import MemberFilter
from twofold.store.models import ROLES
from twofold.web.api import ERRORS
from twofold.web.deps import Context, PracticeAdmin, ServicesDep, link_base
from twofold.web.errors import error_response
from twofold.web.schemas import ErrorPublic, StatusPublic, TotpConfirm, TotpEnrollmentPublic
from twofold.web.schemas_practice import (
    AuditEventPublic,
    AuditPagePublic,
    ImportResultPublic,
    ImportRowPublic,
    MemberCreate,
    MemberPagePublic,
    MemberPublic,
    MemberResetRequest,
    MemberUpdate,
    PolicyPreviewPublic,
    PolicyPublic,
    PolicyUpdate,
    SetupLinkPublic,
)

router = APIRouter(prefix="/api/v1/practice", responses=ERRORS, tags=["practice administration"])

CSV_MEDIA = "text/csv; charset=utf-8"
NOT_FOUND = {404: {"model": ErrorPublic, "description": "No such member in your practice"}}
CONFLICT = {409: {"model": ErrorPublic, "description": "Refused by a rule (last admin, duplicate email, ...)"}}
CSV_ANSWER = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}}

Page = Annotated[int, Query(ge=1, le=1_000_000)]
Text = Annotated[str | None, Query(max_length=320)]


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def csv_download(lines, filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines, media_type=CSV_MEDIA, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


# -- members ---------------------------------------------------------------------------


@router.get(
    "/members", response_model=MemberPagePublic, responses=CSV_ANSWER, summary="List, search and filter members",
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
        raise InvalidInput(f"role must be one of: {', '.join(ROLES)}.")
    member_filter = MemberFilter(q=q, without_two_factor=without_two_factor, role=role, active=active)
    practice_id = admin.user.practice_id
    if wants_csv(request):
        lines = services.members.export_csv(practice_id=practice_id, actor_id=admin.user.id, context=context, filter=member_filter)
        return csv_download(lines, "members.csv")
    found = services.members.list_members(practice_id=practice_id, filter=member_filter, page=page)
    return MemberPagePublic(items=[MemberPublic.of(view) for view in found.items], total=found.total)


@router.post(
    "/members", response_model=MemberPublic, status_code=201, responses=CONFLICT, summary="Add a member",
    description="The member has no password yet: they are emailed a set-up link (valid 72 hours) to choose one "
    "and set up two-factor authentication. Errors: `invalid_email`, `unknown_role`, `invalid_name` (422), "
    "`duplicate_email` (409).",
)
def add_member(body: MemberCreate, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context):
    view = services.members.add_member(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, email=body.email, name=body.name, role=body.role,
        context=context, link_base=link_base(request),
    )
    return JSONResponse(MemberPublic.of(view).model_dump(), status_code=201)


@router.post(
    "/members/import", response_model=ImportResultPublic, summary="Add members from CSV",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
    description="The body is CSV (UTF-8) whose first line names the columns `email,name,role`. Every row is "
    "reported: imported, or failed with `invalid_email`, `unknown_role`, `invalid_name` or `duplicate_email`; "
    "the good rows are imported, each whole or not at all. New members are emailed a set-up link unless "
    "`send_setup_links=false`. Bodies are limited to TWOFOLD_MAX_BODY_BYTES; the CLI imports any size.",
)
async def import_members(
    request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context, send_setup_links: bool = True,
):
    body = await request.body()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file must be CSV in UTF-8.") from None
    base = link_base(request)

    def run():
        return list(services.members.import_csv(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, lines=text.splitlines(), context=context,
            send_setup_links=send_setup_links, link_base=base,
        ))

    results = await run_in_threadpool(run)
    return ImportResultPublic(
        imported=sum(r.status == "imported" for r in results), failed=sum(r.status != "imported" for r in results),
        rows=[ImportRowPublic.of(r) for r in results],
    )


@router.get("/members/{member_id}", response_model=MemberPublic, responses=NOT_FOUND, summary="One member")
def get_member(member_id: int, admin: PracticeAdmin, services: ServicesDep):
    return MemberPublic.of(services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id))


@router.patch(
    "/members/{member_id}", response_model=MemberPublic, responses={**NOT_FOUND, **CONFLICT},
    summary="Change a member's role, or deactivate or reactivate them",
    description="Deactivating ends the member's sessions and remembered browsers at once. The last active admin "
    "can be neither demoted nor deactivated (409 `last_admin`).",
)
def update_member(member_id: int, body: MemberUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    view = services.members.update_member(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, role=body.role,
        active=body.active, context=context,
    )
    return MemberPublic.of(view)


@router.post(
    "/members/{member_id}/setup-link", response_model=SetupLinkPublic, responses={**NOT_FOUND, **CONFLICT},
    summary="Email the member a one-time set-up link",
    description="Valid 72 hours, used once; any earlier link of the member stops working.",
)
def send_setup_link(member_id: int, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context):
    expires_at = services.setup.send_link(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, context=context,
        link_base=link_base(request),
    )
    return SetupLinkPublic(expires_at=expires_at.isoformat())


@router.post(
    "/members/{member_id}/totp", response_model=TotpEnrollmentPublic, responses={**NOT_FOUND, **CONFLICT},
    summary="Set up an authenticator app for a member on this screen",
    description="Answers the new key once, to show as a QR code for the member to scan; confirm with their first code.",
)
def start_member_totp(member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context):
    enrollment = services.setup.start_on_admin_screen(
        practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id, context=context
    )
    return TotpEnrollmentPublic(
        enrollment_id=enrollment.enrollment_id, secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri,
        qr_svg=enrollment.qr_svg,
    )


@router.post(
    "/members/{member_id}/totp/confirm", response_model=StatusPublic, responses=NOT_FOUND,
    summary="Confirm a member's app with the code they type",
)
def confirm_member_totp(member_id: int, body: TotpConfirm, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.setup.confirm_on_admin_screen(
        practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id,
        enrollment_id=body.enrollment_id, code=body.code, context=context,
    )
    return StatusPublic(status="enabled")


@router.post(
    "/members/{member_id}/two-factor-reset", response_model=StatusPublic, responses={**NOT_FOUND, **CONFLICT},
    summary="Reset a member's two-factor authentication (lost phone)",
    description="Needs the admin's own password and current code, and a reason. Removes the member's methods and "
    "backup codes, ends their sessions and remembered browsers, emails them, and has them set up 2FA again at "
    "their next sign-in. Errors: 401 `invalid_credentials`, 400 `invalid_code`, 403 `admin_two_factor_required`.",
)
def reset_member_two_factor(
    member_id: int, body: MemberResetRequest, admin: PracticeAdmin, services: ServicesDep, context: Context,
):
    try:
        services.resets.reset_member_two_factor(
            practice_id=admin.user.practice_id, admin=admin.user, member_id=member_id, password=body.password,
            code=body.code, reason=body.reason, context=context,
        )
    except InvalidCode as exc:
        return error_response(exc, 400)
    return StatusPublic(status="reset")


# -- policy ------------------------------------------------------------------------------


@router.get("/policy", response_model=PolicyPublic, summary="The practice's security policy")
def get_policy(admin: PracticeAdmin, services: ServicesDep):
    return PolicyPublic.of(services.policies.get(practice_id=admin.user.practice_id))


@router.put(
    "/policy", response_model=PolicyPublic, summary="Change the practice's security policy",
    description="Fields left out keep their value. `grace_days` 0-30, `remember_browser_days` 0-30, "
    "`idle_timeout_minutes` 1-60; `required_roles` empty means every role (admins are always included); "
    "`allowed_methods` from `totp` (always), `email`, `recovery_code`. Applies at each member's next request.",
)
def put_policy(body: PolicyUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    settings = services.policies.update(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, changes=body.changes(), context=context
    )
    return PolicyPublic.of(settings)


@router.post(
    "/policy/preview", response_model=PolicyPreviewPublic, summary="Who a policy would require to set up 2FA",
    description="Changes nothing. The body is as for PUT; answers the active members who would have to set up "
    "two-factor authentication (50 a page), how many in all, and by when.",
)
def preview_policy(body: PolicyUpdate, admin: PracticeAdmin, services: ServicesDep, page: Page = 1):
    practice_id = admin.user.practice_id
    settings = services.policies.proposed(practice_id=practice_id, changes=body.changes())
    preview = services.policies.preview(practice_id=practice_id, settings=settings, page=page)
    return PolicyPreviewPublic(
        items=[MemberPublic.of(view) for view in preview.members.items], total=preview.members.total,
        due_at=preview.due_at.isoformat() if preview.due_at else None,
    )


# -- audit log -----------------------------------------------------------------------------


@router.get(
    "/audit", response_model=AuditPagePublic, responses=CSV_ANSWER, summary="The practice's audit log",
    description="Newest first, 50 a page. `actor`, `subject` and `person` (either) take a member's id or email; "
    "`event` an event name or a namespace (`practice:member`); `since` and `until` a date (YYYY-MM-DD, `until` "
    "includes that day) or an ISO time. With `Accept: text/csv` every matching event is streamed as CSV, oldest first.",
)
def audit_log(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    actor: Text = None,
    subject: Text = None,
    person: Text = None,
    event: Annotated[str | None, Query(max_length=80)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    page: Page = 1,
):
    audit_filter = AuditFilter(
        actor=actor, subject=subject, person=person, event=event, since=parse_moment(since),
        until=parse_moment(until, end=True),
    )
    practice_id = admin.user.practice_id
    if wants_csv(request):
        lines = services.audit_trail.export_csv(
            practice_id=practice_id, filter=audit_filter, actor_id=admin.user.id, context=context
        )
        return csv_download(lines, "audit-log.csv")
    found = services.audit_trail.page(practice_id=practice_id, filter=audit_filter, page=page)
    return AuditPagePublic(items=[AuditEventPublic.of(entry) for entry in found.items], total=found.total)
