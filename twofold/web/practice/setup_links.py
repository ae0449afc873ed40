"""Set-up links: the admin emails a member a one-time link (page and JSON), and the member's
side of it, ``/setup/{token}``: choose a password, then set up an authenticator app. The
member's pages need no session: the link's token is the bearer.

When the address has an account in another practice the same link is an invitation: the
page asks its owner to sign in as usual, then to accept (``/setup/{token}/accept``), which
moves the account here and signs it out everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.core.practice.setup_links import InvitationNeedsSignIn, SetupLinkInvalid, SetupState
from twofold.crypto.otp import normalize_code
from twofold.web.deps import Context, MaybeSignedIn, MemberId, PracticeAdmin, ServicesDep
from twofold.web.factors.recovery_codes import signed_in_with_first_codes
from twofold.web.practice.common import CONFLICT, NOT_FOUND, api_router, member_page
from twofold.web.practice.schemas import SetupLinkPublic
from twofold.web.rendering import link_base, render, signed_out

api = api_router()
pages = APIRouter(include_in_schema=False)


@api.post(
    "/members/{member_id}/setup-link",
    response_model=SetupLinkPublic,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Email the member a one-time set-up link",
    description="Valid 72 hours, used once; any earlier link of the member stops working.",
)
def send_setup_link(
    member_id: MemberId, request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    expires_at = services.setup.send_link(
        practice_id=admin.user.practice_id,
        actor_id=admin.user.id,
        member_id=member_id,
        context=context,
        link_base=link_base(request),
    )
    return SetupLinkPublic(expires_at=expires_at.isoformat())


@pages.post("/admin/members/{member_id}/setup-link")
def member_setup_link(
    request: Request, member_id: MemberId, admin: PracticeAdmin, services: ServicesDep, context: Context
):
    try:
        services.setup.send_link(
            practice_id=admin.user.practice_id,
            actor_id=admin.user.id,
            member_id=member_id,
            context=context,
            link_base=link_base(request),
        )
    except core.Conflict as exc:
        return member_page(request, admin, services, member_id, 409, link_error=exc.message)
    return RedirectResponse(f"/admin/members/{member_id}?notice=link_sent", status_code=303)


# -- the member's side (no session needed) ----------------------------------------------------------


def _setup_gone(request: Request, exc: SetupLinkInvalid):
    return render(request, "setup/invalid.html", {"message": exc.message}, 410 if exc.reason != "unknown" else 404)


def _invitation_page(
    request: Request, token: str, state: SetupState, active, error: str | None = None, status: int = 200
):
    """The invitation: sign in first, or (signed in with the invited address) accept it."""
    signed_in_as = active.user.email if active is not None else None
    return render(
        request,
        "setup/invitation.html",
        {
            "token": token,
            "state": state,
            "signed_in_as": signed_in_as,
            "is_owner": signed_in_as == state.member_email,
            "error": error,
        },
        status,
    )


@pages.get("/setup/{token}")
def setup_page(request: Request, token: str, services: ServicesDep, context: Context, active: MaybeSignedIn):
    try:
        state = services.setup.open(token=token, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    if state.invitation:
        return _invitation_page(request, token, state, active)
    return render(request, "setup/start.html", {"token": token, "state": state})


@pages.post("/setup/{token}/accept")
def setup_accept(request: Request, token: str, services: ServicesDep, context: Context, active: MaybeSignedIn):
    """The signed-in owner of the invited address moves their account here; every session of it ends."""
    try:
        state = services.setup.open(token=token, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    if not state.invitation:
        return RedirectResponse(f"/setup/{token}", status_code=303)
    if active is None:
        return _invitation_page(request, token, state, active, InvitationNeedsSignIn.message, 401)
    try:
        services.setup.accept_invitation(token=token, user_id=active.user.id, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    except core.Conflict as exc:
        return _invitation_page(request, token, state, active, exc.message, 409)
    return signed_out(request, "moved_practice")


@pages.post("/setup/{token}/password")
def setup_password(
    request: Request,
    token: str,
    services: ServicesDep,
    context: Context,
    active: MaybeSignedIn,
    password: Annotated[str, Form(max_length=1024)] = "",
    password_again: Annotated[str, Form(max_length=1024)] = "",
):
    try:
        state = services.setup.open(token=token, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    if state.invitation:  # nobody sets a password for an address that has an account: its owner signs in
        return _invitation_page(request, token, state, active, InvitationNeedsSignIn.message, 409)
    try:
        if state.needs_password:
            if password != password_again:
                raise core.InvalidInput("The two passwords are not the same. Type the same password twice.")
            step = services.setup.choose_password(token=token, password=password, context=context)
        else:
            step = services.setup.verify_password(token=token, password=password, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    except (core.InvalidInput, core.InvalidCredentials, core.Throttled, core.Conflict) as exc:
        if isinstance(exc, core.Conflict):  # the password was chosen meanwhile, or the address claimed elsewhere
            state = services.setup.open(token=token, context=context)
            if state.invitation:
                return _invitation_page(request, token, state, active, exc.message, 409)
        throttled = isinstance(exc, core.Throttled)
        page = render(
            request,
            "setup/start.html",
            {"token": token, "state": state, "error": exc.message},
            429 if throttled else 400,
        )
        if isinstance(exc, core.Throttled):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if step.done:
        return render(request, "setup/done.html", {})
    return render(request, "setup/totp.html", {"token": token, "enrollment": step.enrollment, "state": state})


@pages.post("/setup/{token}/confirm")
def setup_confirm(
    request: Request,
    token: str,
    services: ServicesDep,
    context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=64)] = "",
):
    error = None
    if normalize_code(code) is None:
        error = "Enter the 6-digit code your app shows now (digits only)."
    else:
        try:
            done = services.setup.confirm(token=token, enrollment_id=enrollment_id, code=code, context=context)
            return signed_in_with_first_codes(
                request,
                services,
                session_token=done.session_token,
                codes=done.recovery_codes,
                headline="You are set up. Two-factor authentication is on, and you are signed in.",
            )
        except SetupLinkInvalid as exc:
            return _setup_gone(request, exc)
        except core.NotFound:
            return render(
                request,
                "setup/invalid.html",
                {"message": "This set-up took too long and expired. Open the link from your email again."},
                410,
            )
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    enrollment = services.setup.pending_enrollment(token=token, enrollment_id=enrollment_id)
    if enrollment is None:
        return render(
            request, "setup/invalid.html", {"message": "This set-up expired. Open the link from your email again."}, 410
        )
    return render(request, "setup/totp.html", {"token": token, "enrollment": enrollment, "error": error}, 400)
