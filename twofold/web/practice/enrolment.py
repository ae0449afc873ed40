"""Setting up a member's authenticator app on the admin's screen (in person): the member scans
the key the admin's page shows and types their first code; page and JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.crypto.otp import normalize_code
from twofold.web.deps import Context, MemberId, PracticeAdmin, ServicesDep
from twofold.web.factors.schemas import TotpConfirm, TotpEnrollmentPublic
from twofold.web.factors.totp import enrollment_public
from twofold.web.practice.common import CONFLICT, NOT_FOUND, api_router, member_page
from twofold.web.rendering import render
from twofold.web.schemas import StatusPublic

api = api_router()
pages = APIRouter(include_in_schema=False)


@api.post(
    "/members/{member_id}/totp",
    response_model=TotpEnrollmentPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Set up an authenticator app for a member on this screen",
    description="Answers the new key once, to show as a QR code for the member to scan; confirm with their first code.",
)
def start_member_totp(member_id: MemberId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    enrollment = services.setup.start_on_admin_screen(
        practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id, context=context
    )
    return enrollment_public(enrollment)


@api.post(
    "/members/{member_id}/totp/confirm",
    response_model=StatusPublic,
    responses=NOT_FOUND,
    summary="Confirm a member's app with the code they type",
)
def confirm_member_totp(
    member_id: MemberId, body: TotpConfirm, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    services.setup.confirm_on_admin_screen(
        practice_id=admin.user.practice_id,
        admin_id=admin.user.id,
        member_id=member_id,
        enrollment_id=body.enrollment_id,
        code=body.code,
        context=context,
    )
    return StatusPublic(status="enabled")


@pages.post("/admin/members/{member_id}/enrol")
def member_enrol_start(
    request: Request, member_id: MemberId, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    try:
        enrollment = services.setup.start_on_admin_screen(
            practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id, context=context
        )
    except core.Conflict as exc:
        return member_page(request, admin, services, member_id, 409, enrol_error=exc.message)
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    return render(
        request, "admin/enrol.html", {"session": admin, "member": member, "enrollment": enrollment, "show_key": True}
    )


@pages.post("/admin/members/{member_id}/enrol/confirm")
def member_enrol_confirm(
    request: Request,
    member_id: MemberId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
):
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    if normalize_code(code) is None:
        error = "Enter the 6-digit code the member's app shows now (digits only)."
    else:
        try:
            services.setup.confirm_on_admin_screen(
                practice_id=admin.user.practice_id,
                admin_id=admin.user.id,
                member_id=member_id,
                enrollment_id=enrollment_id,
                code=code,
                context=context,
            )
            return RedirectResponse(f"/admin/members/{member_id}?notice=enrolled", status_code=303)
        except core.NotFound:
            return member_page(
                request, admin, services, member_id, 410, enrol_error="That set-up expired. Start again."
            )
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    # A typo keeps the QR code and the key on screen, as the page says, until the set-up is confirmed or
    # expires: the member may not have scanned it yet.
    pending = services.setup.pending_on_admin_screen(
        practice_id=admin.user.practice_id, member_id=member_id, enrollment_id=enrollment_id
    )
    return render(
        request,
        "admin/enrol.html",
        {
            "session": admin,
            "member": member,
            "enrollment": pending or {"enrollment_id": enrollment_id},
            "show_key": pending is not None,
            "error": error,
        },
        400,
    )
