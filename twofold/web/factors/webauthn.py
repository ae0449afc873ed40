"""Security keys and passkeys: the member's keys (``/api/v1/me/webauthn``), the sign-in step's options
(``/api/v1/sign-in/{flow_id}/webauthn/options``), passkey sign-in (``/api/v1/passkey/*``), and the page
forms the browser script (static/webauthn.js) submits after the browser's WebAuthn prompt.

The relying party is the host of ``TWOFOLD_PUBLIC_ORIGIN``; without it, the host this
request was served at (development).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from twofold import errors as core
from twofold.core.workstations import RememberRefusedOnWorkstation
from twofold.web.account.security import security_page
from twofold.web.deps import Context, Enrolling, RowId, ServicesDep, SignedIn
from twofold.web.errors import status_for
from twofold.web.factors.recovery_codes import recovery_codes_page
from twofold.web.rendering import MAX_RETURN_URL, back_home, go_to, render, return_target, set_cookies
from twofold.web.schemas import ERRORS, ErrorPublic, PasswordField, StatusPublic, Strict
from twofold.web.signin import code_page_context, remember_option, sign_in_form

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)

# A credential's JSON is a few hundred bytes (an RS256 key's registration about 1.5 kB); room to spare.
CredentialField = Annotated[str, Form(max_length=16_384)]


def served_origin(request: Request) -> str:
    """The origin this request was served at (the relying party in development)."""
    return f"{request.url.scheme}://{request.url.netloc}"


# -- schemas -------------------------------------------------------------------------------------


class RegistrationOptionsPublic(BaseModel):
    registration_id: str
    options: dict[str, Any] = Field(description="PublicKeyCredentialCreationOptionsJSON")


class RegistrationRequest(Strict):
    registration_id: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any] = Field(description="What `PublicKeyCredential.toJSON()` gives")
    name: str = Field(min_length=1, max_length=64)


class KeyAddedPublic(BaseModel):
    status: str = "added"
    id: int
    recovery_codes: list[str] | None = Field(
        default=None, description="The 10 backup codes, present only when this turned 2FA on. Shown once."
    )


class KeyPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool = Field(description="The authenticator says the key is backed up (a synced passkey)")
    device_bound: bool | None = Field(description="True: the key cannot leave its device; null: not said")


class KeysPublic(BaseModel):
    credentials: list[KeyPublic]


class KeyRename(Strict):
    name: str = Field(min_length=1, max_length=64)


class KeyRemove(Strict):
    password: str = Field(min_length=1, max_length=1024)
    code: str | dict[str, Any] = Field(
        description="A code (app, backup or emailed), or an assertion made with the options of "
        "`POST /api/v1/me/webauthn/reauth/options`"
    )


class OptionsPublic(BaseModel):
    options: dict[str, Any] = Field(description="PublicKeyCredentialRequestOptionsJSON")


class PasskeyOptionsPublic(BaseModel):
    passkey_flow_id: str
    options: dict[str, Any] = Field(description="PublicKeyCredentialRequestOptionsJSON")


class PasskeySignInRequest(Strict):
    passkey_flow_id: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any]

    @model_validator(mode="after")
    def _not_empty(self) -> PasskeySignInRequest:
        if not self.credential:
            raise ValueError("credential is empty")
        return self


def _key(view) -> KeyPublic:
    return KeyPublic(
        id=view.id,
        name=view.name,
        created_at=view.created_at,
        last_used_at=view.last_used_at,
        backed_up=view.backed_up,
        device_bound=view.device_bound,
    )


# -- JSON ------------------------------------------------------------------------------------


@api.post(
    "/me/webauthn/registration/options",
    response_model=RegistrationOptionsPublic,
    responses={403: {"model": ErrorPublic, "description": "Not allowed by the practice"}},
    summary="Start adding a security key or passkey",
    description="Pass `options` to `PublicKeyCredential.parseCreationOptionsFromJSON`, then "
    "`navigator.credentials.create`. The registration works once, for 5 minutes.",
)
def registration_options(request: Request, active: Enrolling, services: ServicesDep):
    registration = services.webauthn_keys.start_registration(user=active.user, served_origin=served_origin(request))
    return RegistrationOptionsPublic(registration_id=registration.registration_id, options=registration.options)


@api.post(
    "/me/webauthn/registration",
    response_model=KeyAddedPublic,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorPublic}, 409: {"model": ErrorPublic}},
    summary="Add the security key or passkey the browser made",
    description="When this turns 2FA on, the answer carries the account's 10 backup codes, shown this once.",
)
def register_key(body: RegistrationRequest, active: Enrolling, services: ServicesDep, context: Context):
    added = services.webauthn_keys.finish_registration(
        user=active.user,
        registration_id=body.registration_id,
        credential=body.credential,
        name=body.name,
        context=context,
    )
    return KeyAddedPublic(id=added.id, recovery_codes=added.recovery_codes or None)


@api.get("/me/webauthn", response_model=KeysPublic, summary="The account's security keys and passkeys")
def list_keys(active: SignedIn, services: ServicesDep):
    return KeysPublic(credentials=[_key(view) for view in services.webauthn_keys.keys_of(active.user)])


@api.patch(
    "/me/webauthn/{key_id}",
    response_model=KeyPublic,
    responses={404: {"model": ErrorPublic}},
    summary="Rename a security key or passkey",
)
def rename_key(key_id: RowId, body: KeyRename, active: SignedIn, services: ServicesDep, context: Context):
    return _key(services.webauthn_keys.rename(user=active.user, key_id=key_id, name=body.name, context=context))


@api.post(
    "/me/webauthn/reauth/options",
    response_model=OptionsPublic,
    summary="Options to confirm a security change with a key",
    description="The assertion made with them works as the `code` of a re-authentication, once, for 5 minutes.",
)
def reauth_options(request: Request, active: SignedIn, services: ServicesDep):
    return OptionsPublic(
        options=services.webauthn_keys.reauth_options(user=active.user, served_origin=served_origin(request))
    )


@api.delete(
    "/me/webauthn/{key_id}",
    response_model=StatusPublic,
    responses={404: {"model": ErrorPublic}, 409: {"model": ErrorPublic, "description": "The last method"}},
    summary="Remove a security key or passkey",
    description="Needs the password and a code (app, backup, emailed) or an assertion of one of the keys.",
)
def remove_key(key_id: RowId, body: KeyRemove, active: SignedIn, services: ServicesDep, context: Context):
    services.webauthn_keys.remove(
        user=active.user, key_id=key_id, password=body.password, code=body.code, context=context
    )
    return StatusPublic(status="removed")


@api.post(
    "/sign-in/{flow_id}/webauthn/options",
    response_model=OptionsPublic,
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}},
    summary="Options for the sign-in's security key step",
    description="Only when the flow's `methods` lists `webauthn`. Complete with `second-factor` and "
    '`{"method": "webauthn", "credential": ...}`.',
)
def sign_in_options(flow_id: str, request: Request, services: ServicesDep, context: Context):
    return OptionsPublic(
        options=services.webauthn_keys.sign_in_options(
            flow_id=flow_id, served_origin=served_origin(request), context=context
        )
    )


@api.post(
    "/passkey/options",
    response_model=PasskeyOptionsPublic,
    summary="Start a sign-in with a passkey alone",
    description="Any passkey of this site, user verification required. Works once, for 5 minutes.",
)
def passkey_options(request: Request, services: ServicesDep):
    started = services.webauthn_keys.passkey_options(served_origin=served_origin(request))
    return PasskeyOptionsPublic(passkey_flow_id=started.passkey_flow_id, options=started.options)


@api.post(
    "/passkey/sign-in",
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}},
    summary="Sign in with a passkey",
    description='Answers `{"status": "signed_in"}` and sets the session cookie. Every refusal of a '
    "well-formed credential is the same 401 `passkey_refused`.",
)
def passkey_sign_in(body: PasskeySignInRequest, request: Request, services: ServicesDep, context: Context):
    signed_in = services.webauthn_keys.passkey_sign_in(
        passkey_flow_id=body.passkey_flow_id, credential=body.credential, context=context
    )
    response = JSONResponse({"status": "signed_in"})
    return set_cookies(request, response, session_token=signed_in.session_token)


# -- pages ------------------------------------------------------------------------------------


def _credential(raw: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        raise core.InvalidInput("The browser's answer was not understood. Try again.") from None
    if not isinstance(value, dict):
        raise core.InvalidInput("The browser's answer was not understood. Try again.")
    return value


@pages.post("/account/security/webauthn")
def add_key_form(
    request: Request,
    active: Enrolling,
    services: ServicesDep,
    context: Context,
    registration_id: Annotated[str, Form(max_length=64)] = "",
    credential: CredentialField = "",
    name: Annotated[str, Form(max_length=64)] = "",
):
    try:
        added = services.webauthn_keys.finish_registration(
            user=active.user,
            registration_id=registration_id,
            credential=_credential(credential),
            name=name,
            context=context,
        )
    except core.TwofoldError as exc:
        return security_page(request, active, services, status=status_for(exc), form="webauthn", error=exc.message)
    if added.recovery_codes:
        return recovery_codes_page(
            request,
            active,
            services,
            added.recovery_codes,
            headline="Two-factor authentication is on, with your security key. Save your backup codes now.",
        )
    return back_home("webauthn_added")


@pages.post("/account/security/webauthn/{key_id}/rename")
def rename_key_form(
    request: Request,
    key_id: RowId,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    name: Annotated[str, Form(max_length=64)] = "",
):
    try:
        services.webauthn_keys.rename(user=active.user, key_id=key_id, name=name, context=context)
    except core.TwofoldError as exc:
        return security_page(request, active, services, status=status_for(exc), form="webauthn", error=exc.message)
    return back_home("webauthn_renamed")


@pages.post("/account/security/webauthn/{key_id}/remove")
def remove_key_form(
    request: Request,
    key_id: RowId,
    active: SignedIn,
    services: ServicesDep,
    context: Context,
    password: PasswordField = "",
    code: Annotated[str, Form(max_length=64)] = "",
    credential: CredentialField = "",
):
    try:
        proof: str | dict = _credential(credential) if credential else code.strip()
        if not password or not proof:
            raise core.InvalidInput("Enter your password and a code, or confirm with a security key.")
        services.webauthn_keys.remove(user=active.user, key_id=key_id, password=password, code=proof, context=context)
    except core.TwofoldError as exc:
        return security_page(request, active, services, status=status_for(exc), form="webauthn", error=exc.message)
    return back_home("webauthn_removed")


@pages.post("/sign-in/{flow_id}/webauthn")
def sign_in_key_form(
    request: Request,
    flow_id: str,
    services: ServicesDep,
    context: Context,
    credential: CredentialField = "",
    remember_browser: Annotated[str, Form(max_length=8)] = "",
):
    remember = remember_browser in ("1", "on", "true")
    try:
        result = services.sign_in.verify_second_factor(
            flow_id=flow_id,
            method="webauthn",
            # Unreadable JSON is a malformed response: the flow is checked first, then it is refused as such.
            code=_credential(credential) if credential.strip().startswith("{") else {},
            context=context,
            remember_browser=remember,
        )
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, 410)
    except RememberRefusedOnWorkstation as exc:  # sent although never offered: nothing was checked or used
        page = code_page_context(services, flow_id, "webauthn", error=exc.message, context=context)
        return render(request, "code.html", page, 422)
    except core.TwofoldError as exc:
        status = 429 if isinstance(exc, core.Throttled) else 401
        page = {
            **code_page_context(services, flow_id, "webauthn", error=exc.message, context=context),
            **remember_option(services, flow_id, remember, context=context),
        }
        return render(request, "code.html", page, status)
    response = go_to(request, return_target(request, result.return_to, result.user_id))
    return set_cookies(request, response, session_token=result.session_token, cookies=result.cookies)


@pages.post("/sign-in/passkey")
def passkey_form(
    request: Request,
    services: ServicesDep,
    context: Context,
    passkey_flow_id: Annotated[str, Form(max_length=64)] = "",
    credential: CredentialField = "",
    next: Annotated[str, Form(max_length=MAX_RETURN_URL)] = "",
):
    try:
        signed_in = services.webauthn_keys.passkey_sign_in(
            passkey_flow_id=passkey_flow_id, credential=_credential(credential), context=context
        )
    except core.TwofoldError as exc:
        return sign_in_form(request, services, context, {"next": next, "error": exc.message}, status_for(exc))
    # As after a password and code: back to the page asked for, on this site or an app of the member's practice.
    response = go_to(request, return_target(request, next, signed_in.user_id))
    return set_cookies(request, response, session_token=signed_in.session_token)
