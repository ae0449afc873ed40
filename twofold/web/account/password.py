"""Changing the password: the Security page's form and ``POST /api/v1/me/password``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from twofold import errors as core
from twofold.web.account.schemas import PasswordChange, PasswordChangedPublic
from twofold.web.account.security import security_page
from twofold.web.deps import Context, ServicesDep, SignedIn
from twofold.web.errors import status_for
from twofold.web.rendering import back_home
from twofold.web.schemas import ERRORS, PasswordField

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)


@api.post(
    "/me/password",
    response_model=PasswordChangedPublic,
    summary="Change your password",
    description="Needs the current password (401 `invalid_credentials` when wrong, throttled like sign-in). "
    "Ends every other session and forgets every remembered browser; this session stays.",
)
def change_password(body: PasswordChange, active: SignedIn, services: ServicesDep, context: Context):
    changed = services.account_security.change_password(
        active=active, current_password=body.current_password, new_password=body.new_password, context=context
    )
    return PasswordChangedPublic(sessions_ended=changed.sessions_ended, browsers_forgotten=changed.browsers_forgotten)


@pages.post("/account/security/password")
def change_password_form(
    request: Request,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    current_password: PasswordField = "",
    new_password: PasswordField = "",
    new_password_confirm: PasswordField = "",
):
    field = "current_password" if not current_password else "new_password"
    try:
        if not current_password or not new_password:
            raise core.InvalidInput("Enter your current password and a new one.")
        if new_password != new_password_confirm:
            field = "new_password_confirm"
            raise core.InvalidInput("The two new passwords are not the same.")
        services.account_security.change_password(
            active=active, current_password=current_password, new_password=new_password, context=context
        )
    except (core.InvalidCredentials, core.InvalidInput, core.Throttled) as exc:
        if isinstance(exc, (core.InvalidCredentials, core.Throttled)):
            field = "current_password"  # a new password's rules are InvalidInput; the rest is about the current one
        return security_page(
            request, active, services, status=status_for(exc), form="password", error=exc.message, field=field
        )
    return back_home("password_changed")
