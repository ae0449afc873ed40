"""The JSON API under /api/v1. Routes parse, call one use case, and shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from twofold.errors import InvalidCode, InvalidInput
from twofold.core.signin import SignInResult
from twofold.web.blocking import database_work
from twofold.web.errors import error_response
from twofold.web.deps import SESSION_COOKIE, Context, Enrolling, ServicesDep, SignedIn, apply_browser_cookie, cookie_secure
from twofold.web.schemas import (
    ErrorPublic,
    MePublic,
    PracticePublic,
    ReauthRequest,
    SecondFactorRequest,
    SecondFactorRequiredPublic,
    SignedInPublic,
    SignInRequest,
    StatusPublic,
    TotpConfirm,
    TotpEnrollmentPublic,
    TwoFactorPublic,
)
from twofold.web.schemas_recovery import TotpConfirmedPublic

ERRORS = {
    400: {"model": ErrorPublic, "description": "Invalid code or request"},
    401: {"model": ErrorPublic, "description": "Not signed in, or wrong credentials"},
    403: {"model": ErrorPublic, "description": "Refused (another origin, or not allowed)"},
    422: {"model": ErrorPublic, "description": "Malformed input"},
    429: {"model": ErrorPublic, "description": "Throttled; see retry_after and Retry-After"},
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=cookie_secure(request), path="/",
    )


def signed_in_answer(request: Request, result: SignInResult) -> JSONResponse:
    if result.status == "signed_in":
        response = JSONResponse(SignedInPublic().model_dump())
        set_session_cookie(request, response, result.session_token)
    else:
        response = JSONResponse(
            SecondFactorRequiredPublic(flow_id=result.flow_id, methods=result.methods).model_dump()
        )
    apply_browser_cookie(request, response, result.browser_cookie)
    return response


@router.post(
    "/sign-in",
    response_model=SignedInPublic | SecondFactorRequiredPublic,
    summary="Check email and password",
    description="Signs in, or opens a sign-in flow when a second factor is needed. "
    "Unknown email and wrong password get the same 401 `invalid_credentials`. "
    "A request carrying a live remembered-browser cookie of this account is signed in without a code.",
)
def sign_in(body: SignInRequest, request: Request, services: ServicesDep, context: Context):
    result = services.sign_in.start_sign_in(
        email=body.email, password=body.password, context=context, remembered_cookies=request.cookies
    )
    return signed_in_answer(request, result)


@router.post(
    "/sign-in/{flow_id}/second-factor",
    response_model=SignedInPublic,
    summary="Complete a sign-in with a second factor",
    description='With `"remember_browser": true` the answer also sets a remembered-browser cookie: '
    "later sign-ins from this client ask for the password only, until the practice's days run out "
    "or the trust is revoked. Ignored when the practice remembers no browser.",
    responses={404: {"model": ErrorPublic}, 410: {"model": ErrorPublic}},
)
async def second_factor(
    flow_id: str, body: SecondFactorRequest, request: Request, services: ServicesDep, context: Context
):
    try:
        result = await database_work(
            services, services.sign_in.verify_second_factor,
            flow_id=flow_id, method=body.method, code=body.code, context=context,
            remember_browser=body.remember_browser,
        )
    except InvalidCode as exc:
        return error_response(exc, 401)  # the contract: a wrong code at sign-in is 401
    return signed_in_answer(request, result)


@router.get("/me", response_model=MePublic, summary="The signed-in user")
def me(active: SignedIn, services: ServicesDep):
    user = active.user
    status = services.accounts.two_factor_status(user)
    return MePublic(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        practice=PracticePublic(id=user.practice.id, name=user.practice.name),
        two_factor=TwoFactorPublic(
            enabled=status.enabled, methods=status.methods, recovery_codes_left=status.recovery_codes_left
        ),
        session_expires_at=active.expires_at.isoformat(),
    )


@router.post("/me/totp", response_model=TotpEnrollmentPublic, summary="Start setting up an authenticator app")
def start_totp(active: Enrolling, services: ServicesDep, context: Context):
    enrollment = services.accounts.start_totp_enrollment(user=active.user, context=context)
    return TotpEnrollmentPublic(
        enrollment_id=enrollment.enrollment_id,
        secret=enrollment.secret,
        otpauth_uri=enrollment.otpauth_uri,
        qr_svg=enrollment.qr_svg,
    )


@router.post(
    "/me/totp/confirm",
    response_model=TotpConfirmedPublic,
    response_model_exclude_none=True,
    summary="Confirm the app with its first code",
    description="When this turns 2FA on, the answer carries the account's 10 backup codes, shown this once.",
)
def confirm_totp(body: TotpConfirm, active: Enrolling, services: ServicesDep, context: Context):
    _require_digits(body.code)
    result = services.accounts.confirm_totp(user=active.user, enrollment_id=body.enrollment_id, code=body.code, context=context)
    return TotpConfirmedPublic(status=result.status, recovery_codes=result.recovery_codes or None)


@router.delete(
    "/me/totp",
    response_model=StatusPublic,
    summary="Turn two-factor authentication off",
    description="Needs the password and a code: from the app, a backup code, or an emailed code.",
)
def disable_totp(body: ReauthRequest, active: SignedIn, services: ServicesDep, context: Context):
    services.accounts.disable_two_factor(user=active.user, password=body.password, code=body.code, context=context)
    return StatusPublic(status="disabled")


@router.get(
    "/health",
    response_model=StatusPublic,
    summary="Is this process able to serve?",
    description="For load balancers and operators: `{\"status\":\"ok\"}` after one primary-key read "
    "from the database, or 503 `unavailable` when the database does not answer or is not migrated. "
    "Needs no session and changes nothing.",
    responses={503: {"model": ErrorPublic, "description": "The database does not answer, or is not migrated"}},
)
async def health(services: ServicesDep):
    await database_work(services, services.health.check)
    return JSONResponse({"status": "ok"})


@router.post("/sign-out", response_model=StatusPublic, summary="End this session")
def sign_out(request: Request, services: ServicesDep, context: Context):
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        services.accounts.sign_out(token=token, context=context)
    response = JSONResponse(StatusPublic(status="signed_out").model_dump())
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=cookie_secure(request))
    return response


def _require_digits(code: str) -> None:
    from twofold.crypto.otp import normalize_code

    if normalize_code(code) is None:
        raise InvalidInput("A code is 6 digits (0-9) from your authenticator app.")
