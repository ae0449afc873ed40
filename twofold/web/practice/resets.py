"""Resetting a member's two-factor authentication (lost phone): page and JSON. Both need the
admin's own password and current code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.core.practice.resets import ResetReasonInvalid
from twofold.web.account.security import reauth_field
from twofold.web.deps import Context, MemberId, PracticeAdmin, ServicesDep
from twofold.web.errors import error_response
from twofold.web.practice.common import CONFLICT, NOT_FOUND, api_router, member_page
from twofold.web.practice.schemas import MemberResetRequest
from twofold.web.schemas import StatusPublic

api = api_router()
pages = APIRouter(include_in_schema=False)


@api.post(
    "/members/{member_id}/two-factor-reset",
    response_model=StatusPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Reset a member's two-factor authentication (lost phone)",
    description="Needs the admin's own password and current code, and a reason. Removes the member's methods and "
    "backup codes, ends their sessions and remembered browsers, emails them, and has them set up 2FA again at "
    "their next sign-in. Errors: 401 `invalid_credentials`, 400 `invalid_code`, 403 `admin_two_factor_required`.",
)
def reset_member_two_factor(
    member_id: MemberId,
    body: MemberResetRequest,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
):
    try:
        services.resets.reset_member_two_factor(
            practice_id=admin.user.practice_id,
            admin=admin.user,
            member_id=member_id,
            password=body.password,
            code=body.code,
            reason=body.reason,
            context=context,
        )
    except core.InvalidCode as exc:
        return error_response(exc, 400)
    return StatusPublic(status="reset")


@pages.post("/admin/members/{member_id}/reset")
def member_reset(
    request: Request,
    member_id: MemberId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    password: Annotated[str, Form(max_length=1024)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
):
    try:
        if not password or not code.strip():
            raise core.InvalidInput("Enter your own password and the current code from your app.")
        services.resets.reset_member_two_factor(
            practice_id=admin.user.practice_id,
            admin=admin.user,
            member_id=member_id,
            password=password,
            code=code,
            reason=reason,
            context=context,
        )
    except (
        core.InvalidInput,
        core.InvalidCode,
        core.InvalidCredentials,
        core.Throttled,
        core.Forbidden,
        core.Conflict,
    ) as exc:
        # This form has answered 400 for every refusal since it was made; kept so that no client sees a change.
        field = _reset_field(exc, password=password, code=code)
        return member_page(
            request, admin, services, member_id, 400, reset_error=exc.message, reset_field=field, reason=reason
        )
    return RedirectResponse(f"/admin/members/{member_id}?notice=reset", status_code=303)


def _reset_field(exc: core.TwofoldError, *, password: str, code: str) -> str | None:
    """The input of the reset form a refusal is about (marked invalid and focused), or None when it is
    about the whole reset (the admin may not reset this member)."""
    if isinstance(exc, ResetReasonInvalid):
        return "reason"
    if isinstance(exc, core.Forbidden | core.Conflict):
        return None
    return reauth_field(exc, password)
