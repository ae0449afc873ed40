"""Signing in and out: the sign-in page and ``POST /api/v1/sign-in``, the code step (page and
``second-factor``), a sign-in code by email, sign-out, and the lost-phone help page.

The browser carries the sign-in flow's id (in the URL) and the flow cookie that binds the
flow to it between the password and the code; the session cookie is set once the flow is
done. JSON clients keep the cookies of the sign-in answer, as a browser does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field, model_validator

from twofold import errors as core
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.signin import SignInResult
from twofold.core.workstations import RememberRefusedOnWorkstation
from twofold.factors.base import FactorResponse
from twofold.web.blocking import database_work
from twofold.web.deps import Context, MaybeSignedIn, MaybeSignedInUntouched, ServicesDep
from twofold.web.errors import error_response, status_for
from twofold.web.factors.email_code import SENDING, code_sent
from twofold.web.factors.recovery_codes import signed_in_with_first_codes
from twofold.web.factors.schemas import CodeSentPublic
from twofold.web.rendering import (
    HOME,
    MAX_RETURN_URL,
    NOTICES,
    go_to,
    may_be_return_target,
    render,
    return_candidate,
    return_target,
    session_token,
    set_cookies,
    twofold_cookies,
)
from twofold.web.schemas import ERRORS, ErrorPublic, StatusPublic, Strict

api = APIRouter(prefix="/api/v1", responses=ERRORS)
WORKSTATION_TIMED_OUT = "The last person was signed out after a period without activity."
pages = APIRouter(include_in_schema=False)


class SignInRequest(Strict):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class SecondFactorRequest(Strict):
    method: str = Field(min_length=1, max_length=32)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    credential: dict[str, Any] | None = Field(
        default=None, description="For `webauthn`: what `PublicKeyCredential.toJSON()` gives (instead of `code`)"
    )
    remember_browser: bool = False

    @model_validator(mode="after")
    def _one_response(self) -> SecondFactorRequest:
        if (self.code is None) == (self.credential is None):
            raise ValueError("send either code or credential")
        return self

    @property
    def response(self) -> FactorResponse:
        return self.code if self.code is not None else (self.credential or {})


class SignedInPublic(BaseModel):
    status: Literal["signed_in"] = "signed_in"


class SecondFactorRequiredPublic(BaseModel):
    status: Literal["second_factor_required"] = "second_factor_required"
    flow_id: str
    methods: list[str]


# -- JSON ------------------------------------------------------------------------------------


def signed_in_answer(request: Request, result: SignInResult) -> JSONResponse:
    if result.status == "signed_in":
        response = JSONResponse(SignedInPublic().model_dump())
        set_cookies(request, response, session_token=result.session_token, cookies=result.cookies)
    else:
        if result.flow_id is None:  # the core gives every second_factor_required result a flow
            raise RuntimeError("second_factor_required without a flow_id")
        response = JSONResponse(SecondFactorRequiredPublic(flow_id=result.flow_id, methods=result.methods).model_dump())
        set_cookies(request, response, cookies=result.cookies)
    return response


@api.post(
    "/sign-in",
    response_model=SignedInPublic | SecondFactorRequiredPublic,
    summary="Check email and password",
    description="Signs in, or opens a sign-in flow when a second factor is needed. "
    "Unknown email and wrong password get the same 401 `invalid_credentials`. "
    "A request carrying a live remembered-browser cookie of this account is signed in without a code. "
    "A flow answer sets the flow cookie `twofold_flow`: send it back with the flow's next requests "
    "(a flow answers only the client that passed the password). A signed-in answer sets a device "
    "cookie that keeps this client signing in while guesses from elsewhere lock the account.",
)
def sign_in(body: SignInRequest, request: Request, services: ServicesDep, context: Context):
    result = services.sign_in.start_sign_in(
        email=body.email, password=body.password, context=context, remembered_cookies=twofold_cookies(request)
    )
    return signed_in_answer(request, result)


@api.post(
    "/sign-in/{flow_id}/second-factor",
    response_model=SignedInPublic,
    summary="Complete a sign-in with a second factor",
    description='With `"remember_browser": true` the answer also sets a remembered-browser cookie: '
    "later sign-ins from this client ask for the password only, until the practice's days run out "
    "or the trust is revoked. Ignored when the practice remembers no browser. Refused with 422 "
    "`remember_refused_on_workstation` on a shared workstation (the code is not used up).",
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}},
)
async def second_factor(
    flow_id: str, body: SecondFactorRequest, request: Request, services: ServicesDep, context: Context
):
    try:
        result = await database_work(
            services,
            services.sign_in.verify_second_factor,
            flow_id=flow_id,
            method=body.method,
            code=body.response,
            context=context,
            remember_browser=body.remember_browser,
        )
    except core.InvalidCode as exc:
        return error_response(exc, 401)  # the contract: a wrong code at sign-in is 401
    return signed_in_answer(request, result)


@api.post("/sign-out", response_model=StatusPublic, summary="End this session")
def sign_out(request: Request, services: ServicesDep, context: Context):
    token = session_token(request)
    if token:
        services.accounts.sign_out(token=token, context=context)
    return set_cookies(request, JSONResponse(StatusPublic(status="signed_out").model_dump()), end_session=True)


@api.post(
    "/sign-in/{flow_id}/email-code",
    status_code=202,
    response_model=CodeSentPublic,
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}, **SENDING},
    summary="Email an 8-digit sign-in code",
    description="Sends a code valid 10 minutes, once; a newer code replaces it. Only when the flow's `methods` "
    'lists `email`. Complete with `second-factor` and `{"method": "email", "code"}`.',
)
def sign_in_email_code(flow_id: str, services: ServicesDep, context: Context):
    return code_sent(services.sign_in.begin_challenge(flow_id=flow_id, method="email", context=context))


# -- pages ------------------------------------------------------------------------------------


@pages.get("/")
def index(active: MaybeSignedIn):
    return RedirectResponse(HOME if active else "/sign-in", status_code=303)


def sign_in_form(request: Request, services, context: RequestContext, page: dict, status: int = 200):
    """The sign-in form; on a shared workstation, its "who's next" form: the workstation named, nothing of
    the person before (no email filled in, no saved names offered), the email field focused."""
    workstation = services.workstations.here(context=context)
    if workstation is not None and page.get("notice") == NOTICES["timed_out"]:
        page = {**page, "notice": WORKSTATION_TIMED_OUT}  # nowhere to "continue": the next person signs in
    return render(request, "sign_in.html", {**page, "workstation": workstation}, status)


@pages.get("/sign-in")
def sign_in_page(
    request: Request,
    services: ServicesDep,
    context: Context,
    active: MaybeSignedInUntouched,
    next: Annotated[str | None, Query(max_length=4096)] = None,
    notice: str | None = None,
    rd: Annotated[str | None, Query(max_length=4096)] = None,
    reauth: bool = False,
):
    """The sign-in form. ``rd`` is where a protected app's proxy wants the browser back (see
    web/protocols/forward_auth.py); ``reauth`` asks a signed-in member for the password and code again."""
    target = rd or next
    if active and not reauth:
        return RedirectResponse(return_target(request, target, active.user.id), status_code=303)
    candidate = return_candidate(target) if target else ""
    if not candidate.startswith("/") and candidate and not may_be_return_target(request, candidate):
        candidate = HOME  # not an address of any enabled app: not carried in the form at all
    return sign_in_form(request, services, context, {"next": candidate, "notice": NOTICES.get(notice or "")})


@pages.post("/sign-in")
def sign_in_submit(
    request: Request,
    services: ServicesDep,
    context: Context,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=MAX_RETURN_URL)] = "",
):
    form = {"email": email, "next": next}
    if not email.strip() or not password:
        return sign_in_form(request, services, context, {**form, "error": "Enter your email and your password."}, 422)
    try:
        result = services.sign_in.start_sign_in(
            email=email,
            password=password,
            context=context,
            return_to=return_candidate(next),
            remembered_cookies=twofold_cookies(request),
        )
    except (core.InvalidCredentials, core.Throttled) as exc:
        return sign_in_form(request, services, context, {**form, "error": exc.message}, status_for(exc))
    if result.status != "signed_in":
        to_code = RedirectResponse(f"/sign-in/{result.flow_id}/code", status_code=303)
        return set_cookies(request, to_code, cookies=result.cookies)
    target = return_target(request, next, result.user_id)
    if services.enforcement.requirement_for(result.user_id).outstanding:
        target = f"/account/two-factor?next={quote(target, safe='')}"  # the practice wants 2FA: enrol first
    response = go_to(request, target)
    return set_cookies(request, response, session_token=result.session_token, cookies=result.cookies)


@pages.get("/sign-in/unlock/{token}")
def unlock_page(request: Request, token: str):
    """The emailed unlock link. It asks for a click: mail scanners open links, and only a person should unlock."""
    return render(request, "unlock.html", {"token": token})


@pages.post("/sign-in/unlock/{token}")
def unlock_submit(request: Request, token: str, services: ServicesDep, context: Context):
    try:
        device = services.sign_in.unlock_with_link(token=token[:128], context=context)
    except core.NotFound as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, 404)
    response = RedirectResponse("/sign-in?notice=unlocked", status_code=303)
    return set_cookies(request, response, cookies=[device])


@pages.get("/sign-in/{flow_id}/code")
def code_page(request: Request, flow_id: str, services: ServicesDep, context: Context):
    try:
        _flow, user, methods = services.sign_in.flow_methods(flow_id, context=context)
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, status_for(exc))
    # The flow's user is a plain record, not an ORM User: read its practice's policy directly
    # (what AccountService.policy_for does).
    remember_days = 0 if on_workstation(services, context) else Policy.of(user.practice).remember_browser_days
    return render(request, "code.html", {"flow_id": flow_id, "methods": methods, "remember_days": remember_days})


@pages.post("/sign-in/{flow_id}/code")
def code_submit(
    request: Request,
    flow_id: str,
    services: ServicesDep,
    context: Context,
    code: Annotated[str, Form(max_length=64)] = "",
    method: Annotated[str, Form(max_length=32)] = "totp",
    remember_browser: Annotated[str, Form(max_length=8)] = "",
):
    remember = remember_browser in ("1", "on", "true")
    try:
        result = services.sign_in.verify_second_factor(
            flow_id=flow_id, method=method, code=code, context=context, remember_browser=remember
        )
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, 410)  # this form's answer for both
    except RememberRefusedOnWorkstation as exc:  # sent although never offered: nothing was checked or used
        page = code_page_context(services, flow_id, method, error=exc.message, context=context)
        return render(request, "code.html", page, 422)
    except (core.Throttled, core.InvalidCode, core.InvalidInput, core.MethodNotAvailable) as exc:
        # As the JSON contract: a refused code at sign-in is 401, whatever the reason.
        status = 429 if isinstance(exc, core.Throttled) else 401
        page = {
            **code_page_context(services, flow_id, method, error=exc.message, context=context),
            **remember_option(services, flow_id, remember, context=context),
        }
        return render(request, "code.html", page, status)
    first_codes = services.recovery_code_enrollment.hand_over_first_set(user_id=result.user_id, context=context)
    if first_codes and result.session_token:
        # 2FA was set up on the admin's screen, which never shows the member's backup codes: now they see them.
        response = signed_in_with_first_codes(
            request,
            services,
            session_token=result.session_token,
            codes=first_codes,
            headline="Your practice admin set up your authenticator app. Here are your backup codes.",
        )
        return set_cookies(request, response, cookies=result.cookies)
    response = go_to(request, return_target(request, result.return_to, result.user_id))
    return set_cookies(request, response, session_token=result.session_token, cookies=result.cookies)


@pages.post("/sign-in/{flow_id}/email-code")
def email_code_form(request: Request, flow_id: str, services: ServicesDep, context: Context):
    try:
        sent = services.sign_in.begin_challenge(flow_id=flow_id, method="email", context=context)
    except (core.FlowNotFound, core.FlowExpired) as exc:
        return render(request, "flow_gone.html", {"message": exc.message}, status_for(exc))
    except (core.Throttled, core.DeliveryFailed, core.MethodNotAvailable) as exc:
        return render(
            request,
            "code.html",
            code_page_context(services, flow_id, "email", error=exc.message, context=context),
            status_for(exc),
        )
    notice = f"We emailed a code to {sent.sent_to}. It works once, for 10 minutes."
    return render(request, "code.html", code_page_context(services, flow_id, "email", notice=notice, context=context))


def code_page_context(services, flow_id: str, method: str, *, context: RequestContext, **extra) -> dict:
    """The code page again, offering every method of the flow, with ``method``'s form in front."""
    try:
        _flow, _user, methods = services.sign_in.flow_methods(flow_id, context=context)
    except core.TwofoldError:
        methods = [method]
    return {"flow_id": flow_id, "methods": methods, "active_method": method, **extra}


def remember_option(services, flow_id: str, checked: bool = False, *, context: RequestContext) -> dict:
    """What the code page's "Remember this browser" checkbox needs (none when the policy says 0 days)."""
    try:
        _flow, user, _methods = services.sign_in.flow_methods(flow_id, context=context)
    except core.TwofoldError:
        return {"remember_days": 0}
    if on_workstation(services, context):
        return {"remember_days": 0}
    return {"remember_days": services.accounts.policy_for(user).remember_browser_days, "remember_checked": checked}


def on_workstation(services, context: RequestContext) -> bool:
    """Whether the asking browser is a shared workstation: then "Remember this browser" is never offered."""
    return services.workstations.here(context=context) is not None


@pages.post("/sign-out")
def sign_out_form(request: Request, services: ServicesDep, context: Context):
    token = session_token(request)
    if token:
        services.accounts.sign_out(token=token, context=context)
    return set_cookies(request, RedirectResponse("/sign-in?notice=signed_out", status_code=303), end_session=True)


@pages.get("/help/lost-phone")
def lost_phone(request: Request):
    return render(request, "lost_phone.html", {})
