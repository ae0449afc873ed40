"""OpenID Connect provider endpoints: discovery, JWKS, authorisation, token, userinfo,
introspection (RFC 7662), revocation (RFC 7009) and RP-initiated logout.

Each route turns the HTTP request into a ``ProtocolRequest`` and hands it to
``services.oidc`` (core/oidc/provider.py); Authlib answers with RFC 6749 errors there. A
request that names no valid client or redirect URI gets an error page and is never redirected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from twofold.core.oidc.provider import (
    BadRequest,
    InvalidToken,
    LogoutRefused,
    NotForYou,
    ProtocolRequest,
    ProtocolResponse,
    SignInFirst,
    ToApp,
    discovery_fields,
)
from twofold.web.deps import Context, MaybeSignedIn, ServicesDep
from twofold.web.rendering import link_base, render, session_token, set_cookies

router = APIRouter(include_in_schema=False)

AUTHORIZE = "/authorize"
TOKEN = "/token"
USERINFO = "/userinfo"
INTROSPECT = "/introspect"
REVOKE = "/revoke"
JWKS = "/jwks"
END_SESSION = "/end-session"
# Paths whose callers authenticate themselves (client credentials, bearer token) and carry no
# cookie: the same-origin check of state-changing requests does not apply (web/security.py).
CREDENTIAL_PATHS = frozenset({TOKEN, USERINFO, INTROSPECT, REVOKE})

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# What an app running in a browser (a public client with PKCE) calls from its own origin, and how.
CORS_METHODS = {TOKEN: "POST", REVOKE: "POST", USERINFO: "GET, POST"}
# Discovery and the signing keys are public documents: any page may read them.
PUBLIC_DOCUMENT = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}


async def _protocol_request(request: Request, context) -> ProtocolRequest:
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        params.setdefault(name, []).append(value)
    if request.method == "POST":
        form = await request.form()
        for name, item in form.multi_items():
            if isinstance(item, str):  # an uploaded file is no protocol parameter
                params.setdefault(name, []).append(item)
    headers = {name: value for name, value in request.headers.items() if name in ("authorization", "content-type")}
    return ProtocolRequest(request.method, request.url.path, link_base(request), headers, params, context)


def _answer(response: ProtocolResponse) -> Response:
    headers = {name: value for name, value in response.headers if name.lower() != "content-type"}
    headers.update(NO_STORE)
    if response.location:
        return RedirectResponse(response.location, status_code=302, headers=headers)
    body: Any = response.body if isinstance(response.body, dict) else {"error": "invalid_request"}
    return JSONResponse(body, status_code=response.status, headers=headers)


# -- discovery -------------------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration")
def discovery(request: Request):
    issuer = link_base(request)
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": issuer + AUTHORIZE,
            "token_endpoint": issuer + TOKEN,
            "userinfo_endpoint": issuer + USERINFO,
            "jwks_uri": issuer + JWKS,
            "introspection_endpoint": issuer + INTROSPECT,
            "revocation_endpoint": issuer + REVOKE,
            "end_session_endpoint": issuer + END_SESSION,
            **discovery_fields(),
        },
        headers=PUBLIC_DOCUMENT,
    )


@router.get(JWKS)
def jwks(services: ServicesDep):
    services.oidc_keys.ensure()
    return JSONResponse(services.oidc_keys.public_keys(), headers=PUBLIC_DOCUMENT)


# -- authorisation ------------------------------------------------------------------------------------


@router.get(AUTHORIZE)
async def authorize(request: Request, services: ServicesDep, context: Context, active: MaybeSignedIn):
    protocol = await _protocol_request(request, context)
    if active is not None:
        services.enforcement.check(active)  # held at 2FA set-up: no app until it is done
    outcome = await run_in_threadpool(services.oidc.authorize, protocol, active=active)
    return _authorize_answer(request, outcome, after_form=False)


@router.get(AUTHORIZE + "/resume/{request_id}")
def resume(request: Request, request_id: str, services: ServicesDep, context: Context, active: MaybeSignedIn):
    if active is not None:
        services.enforcement.check(active)
    outcome = services.oidc.resume(request_id, issuer=link_base(request), active=active, context=context)
    # This address is reached by the redirect that ends the sign-in form's POST; a browser applies
    # the sign-in page's CSP form-action to that redirect chain, so the last hop, to the app's
    # origin, is a page that moves on by itself rather than another redirect.
    return _authorize_answer(request, outcome, after_form=True)


def _authorize_answer(request: Request, outcome, *, after_form: bool) -> Response:
    if isinstance(outcome, ToApp):
        if after_form:
            return render(request, "oidc/continue.html", {"location": outcome.location})
        return RedirectResponse(outcome.location, status_code=302, headers=NO_STORE)
    if isinstance(outcome, SignInFirst):
        target = quote(f"{AUTHORIZE}/resume/{outcome.request_id}", safe="")
        again = "&reauth=1" if outcome.again else ""
        return RedirectResponse(f"/sign-in?next={target}{again}", status_code=303)
    if isinstance(outcome, NotForYou):
        page = {"app_name": outcome.app_name, "reason": outcome.reason, "back_to_app": outcome.back_to_app}
        return render(request, "oidc/not_for_you.html", page, 403)
    if isinstance(outcome, BadRequest):
        page = {"title": "This app's sign-in request cannot be used", "message": outcome.message}
        return render(request, "error.html", page, 400)
    raise TypeError(f"unknown outcome {outcome!r}")


# -- client-authenticated endpoints ---------------------------------------------------------------------


# -- browsers on an app's own origin (CORS) -------------------------------------------------------------


async def _allowed_origin(request: Request, services) -> str | None:
    """The request's ``Origin`` when it is an enabled app's (``ClientRegistry.allows_origin``)."""
    origin = request.headers.get("origin")
    if not origin:
        return None
    return origin if await run_in_threadpool(services.oidc_clients.allows_origin, origin) else None


async def _readable_by_app(request: Request, services, response: Response) -> Response:
    """Let a single-page app read this answer from its own origin. No credentials are allowed: the
    request carries its code, verifier or token itself, never a cookie."""
    response.headers.append("Vary", "Origin")
    origin = await _allowed_origin(request, services)
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    return response


async def preflight(request: Request, services: ServicesDep):
    """A browser's CORS preflight before an app's page calls the token, userinfo or revocation endpoint."""
    origin = await _allowed_origin(request, services)
    if origin is None:
        message = "This origin is not the origin of a redirect URI of any enabled app."
        return JSONResponse(
            {"error": "origin_not_allowed", "message": message}, status_code=403, headers={"Vary": "Origin"}
        )
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS[request.url.path],
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
    return Response(status_code=204, headers=headers)


for _path in CORS_METHODS:
    router.add_api_route(_path, preflight, methods=["OPTIONS"])


@router.post(TOKEN)
async def token(request: Request, services: ServicesDep, context: Context):
    protocol = await _protocol_request(request, context)
    return await _readable_by_app(request, services, _answer(await run_in_threadpool(services.oidc.token, protocol)))


@router.post(INTROSPECT)
async def introspect(request: Request, services: ServicesDep, context: Context):
    protocol = await _protocol_request(request, context)
    return _answer(await run_in_threadpool(services.oidc.introspect, protocol))


@router.post(REVOKE)
async def revoke(request: Request, services: ServicesDep, context: Context):
    protocol = await _protocol_request(request, context)
    return await _readable_by_app(request, services, _answer(await run_in_threadpool(services.oidc.revoke, protocol)))


@router.api_route(USERINFO, methods=["GET", "POST"])
async def userinfo(request: Request, services: ServicesDep):
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    bearer = value.strip() if scheme.lower() == "bearer" else None
    try:
        claims = await run_in_threadpool(services.oidc.userinfo, access_token=bearer)
    except InvalidToken:
        # RFC 6750 §3: the challenge names the error; no body detail about why.
        challenge = 'Bearer error="invalid_token"' if bearer else "Bearer"
        refused = JSONResponse(
            {"error": "invalid_token", "error_description": "The access token is not valid."},
            status_code=401,
            headers={"WWW-Authenticate": challenge, **NO_STORE},
        )
        return await _readable_by_app(request, services, refused)
    return await _readable_by_app(request, services, JSONResponse(claims, headers=NO_STORE))


# -- RP-initiated logout ---------------------------------------------------------------------------------

LOGOUT_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


@router.api_route(END_SESSION, methods=["GET", "POST"])
async def end_session(request: Request, services: ServicesDep, context: Context, active: MaybeSignedIn):
    protocol = await _protocol_request(request, context)
    params = {name: protocol.first(name) for name in LOGOUT_PARAMS if protocol.first(name)}
    try:
        outcome = await run_in_threadpool(
            services.oidc.logout_target,
            id_token_hint=params.get("id_token_hint"),
            client_id=params.get("client_id"),
            post_logout_redirect_uri=params.get("post_logout_redirect_uri"),
            state=params.get("state"),
            issuer=protocol.issuer,
            active=active,
        )
    except LogoutRefused as refused:
        return render(
            request, "error.html", {"title": "This sign-out request cannot be used", "message": refused.message}, 400
        )
    if outcome.confirm and request.method == "GET":
        # Without a hint from the member's own app, another site could sign them out: ask first.
        return render(request, "oidc/sign_out.html", {"params": params, "app_name": outcome.app_name})
    token = session_token(request)
    if token:
        await run_in_threadpool(services.accounts.sign_out, token=token, context=context)
    target = outcome.redirect_to or "/sign-in?notice=signed_out"
    return set_cookies(request, RedirectResponse(target, status_code=303), end_session=True)
