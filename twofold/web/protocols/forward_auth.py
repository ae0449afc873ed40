"""Forward-auth for reverse proxies: ``GET /api/v1/forward-auth`` (Caddy ``forward_auth``, Traefik
``forwardAuth``) and ``GET /api/v1/auth-request`` (nginx ``auth_request``), and the page nginx shows
for a refusal. The use case is ``core/forward_auth.py``; docs/protect-an-app.md has the proxy configs.

The headers describing the original request are believed only from a peer in
``TWOFOLD_TRUSTED_PROXIES`` (``web/proxies.py`` notes whether the peer is one): anyone else
could otherwise claim any URL and read who is signed in.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from twofold import errors as core
from twofold.core.forward_auth import ProxiedRequest, Verdict
from twofold.web.blocking import database_work
from twofold.web.deps import Context, ServicesDep
from twofold.web.proxies import PROXY_TRUSTED
from twofold.web.rendering import DuplicateSessionCookie, link_base, render, secure_cookies_for, session_token
from twofold.web.schemas import ErrorPublic, Responses
from twofold.web.security import CSP

api = APIRouter(prefix="/api/v1", tags=["forward-auth"])
pages = APIRouter(include_in_schema=False)

IDENTITY_HEADERS = ("Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups", "Remote-Practice")
DENIALS = {
    "unknown_host": "This address is not an app of any practice in Twofold.",
    "other_practice": "This app belongs to another practice.",
    "role": "Your role may not use this app. Ask your practice admin if you need it.",
    "app_disabled": "Your practice admin has turned this app off for now.",
    "two_factor_required": "Your practice requires two-factor authentication: set it up in Twofold first.",
}
ANSWERS: Responses = {
    200: {
        "description": "Let through; signed in, with the member's identity in `Remote-*` headers (none on a bypass path)"
    },
    302: {"description": "Not signed in, from a browser: to Twofold's sign-in, which returns to the URL (`rd`)"},
    400: {
        "model": ErrorPublic,
        "description": "Missing or malformed forwarded headers (`bad_forwarded_request`, `uri_too_long`)",
    },
    401: {"model": ErrorPublic, "description": "Not signed in (a `Location` header carries the sign-in URL)"},
    403: {
        "model": ErrorPublic,
        "description": "Refused: `untrusted_proxy`, or signed in but not allowed (`forbidden`)",
    },
}


class UntrustedProxy(core.Forbidden):
    code = "untrusted_proxy"
    message = "Forward-auth answers only the proxies in TWOFOLD_TRUSTED_PROXIES."


def _clean(value: str) -> bytes:
    """A header value: UTF-8 (a name may not be Latin-1), without control characters."""
    return "".join(c for c in value if ord(c) >= 0x20 and ord(c) != 0x7F).encode()


def _identity(response: Response, verdict: Verdict) -> Response:
    active = verdict.session
    if active is not None:
        member = active.member
        values = (member.email, member.email, member.name, member.role, member.practice_name)
        for name, value in zip(IDENTITY_HEADERS, values, strict=True):
            response.raw_headers.append((name.lower().encode(), _clean(value)))
    return response


def _sign_in_url(request: Request, services, original: ProxiedRequest, reason: str) -> str:
    origin = (services.settings.public_origin or str(request.base_url)).rstrip("/")
    url = f"{origin}/sign-in?rd={quote(original.url, safe='')}"
    return url + "&reauth=1" if reason == "reauth" else url


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "").lower()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _answer(
    request: Request, services, context, original: ProxiedRequest, style: Literal["forward", "nginx"]
) -> Response:
    # The cookie the browser sent with the original request, named as it was set for that page.
    hostname = (original.host_key() or "").rsplit(":", 1)[0] if not original.host.startswith("[") else ""
    try:
        token = session_token(request, secure_cookies_for(request, original.scheme, hostname))
    except DuplicateSessionCookie:
        token = None  # sent to sign in, where the two cookies are refused and cleared
    verdict = services.forward_auth.check(request=original, session_token=token, context=context)
    if verdict.outcome == "allow":
        return _identity(Response(status_code=200), verdict)
    if verdict.outcome == "bypass":
        return Response(status_code=200)
    if verdict.outcome == "sign_in":
        location = _sign_in_url(request, services, original, verdict.reason)
        if style == "forward" and _wants_html(request):
            return Response(status_code=302, headers={"Location": location})
        return _error(
            401,
            core.NotAuthenticated.code,
            "Sign in to Twofold to continue." if verdict.reason != "reauth" else "Sign in again to continue.",
            {"Location": location, "WWW-Authenticate": f'Cookie realm="Twofold", sign-in="{location}"'},
        )
    message = DENIALS.get(verdict.reason, core.Forbidden.message)
    if _wants_html(request):
        page = refusal_page(request, message)
        page.headers["X-Twofold-Reason"] = verdict.reason
        return page
    body = {"error": core.Forbidden.code, "message": message, "reason": verdict.reason}
    return JSONResponse(body, status_code=403)


def _untrusted() -> JSONResponse:
    return _error(403, UntrustedProxy.code, UntrustedProxy.message)


@api.get(
    "/forward-auth",
    responses=ANSWERS,
    summary="May this browser see this URL? (Caddy forward_auth, Traefik forwardAuth)",
    description="Reads X-Forwarded-Method, -Proto, -Host, -Uri (and -For) from a proxy in TWOFOLD_TRUSTED_PROXIES "
    "only. 200 with `Remote-User`, `Remote-Email`, `Remote-Name`, `Remote-Groups`, `Remote-Practice`; a bypass "
    "path: 200 without them; not signed in: 302 to `/sign-in?rd=<URL>` for a browser, else 401 with "
    "`WWW-Authenticate`; not allowed: 403.",
)
async def forward_auth(request: Request, services: ServicesDep, context: Context):
    if not getattr(request.state, PROXY_TRUSTED, False):
        return _untrusted()
    headers = request.headers
    try:
        original = ProxiedRequest.from_parts(
            proto=headers.get("x-forwarded-proto"),
            host=headers.get("x-forwarded-host"),
            uri=headers.get("x-forwarded-uri"),
            method=headers.get("x-forwarded-method"),
        )
    except core.InvalidInput as exc:
        return _error(400, exc.code, exc.message)
    return await database_work(services, _answer, request, services, context, original, "forward")


@api.get(
    "/auth-request",
    responses={**ANSWERS, 302: {"description": "Never: nginx cannot pass a redirect on; see 401's Location"}},
    summary="May this browser see this URL? (nginx auth_request)",
    description="As forward-auth, for nginx: the URL comes from `X-Original-URL` and the method from "
    "`X-Original-Method`; not signed in is always 401 with a `Location` header carrying the sign-in URL. Malformed "
    "headers are 403 here, as nginx turns any answer but 2xx, 401 and 403 into a 500.",
)
async def auth_request(request: Request, services: ServicesDep, context: Context):
    if not getattr(request.state, PROXY_TRUSTED, False):
        return _untrusted()
    try:
        original = ProxiedRequest.from_url(
            request.headers.get("x-original-url"), request.headers.get("x-original-method")
        )
    except core.InvalidInput as exc:
        return _error(403, exc.code, exc.message)
    return await database_work(services, _answer, request, services, context, original, "nginx")


def refusal_page(request: Request, message: str) -> Response:
    """The 403 page, as the browser sees it at the app's own address (the proxy passes it on).

    There, ``/static/style.css`` and ``/`` would be the app's: the stylesheet and the links come from
    Twofold's public origin, and the page's CSP allows styles and images from it.
    """
    origin = link_base(request).rstrip("/")
    page = render(request, "error.html", {"title": "Not open to you", "message": message, "asset_origin": origin}, 403)
    page.headers["Content-Security-Policy"] = CSP.replace("style-src 'self'", f"style-src 'self' {origin}").replace(
        "img-src 'self'", f"img-src 'self' {origin}"
    )
    return page


@pages.get("/access-denied")
def access_denied(request: Request):
    """What nginx shows (``error_page 403``) when Twofold refuses a signed-in member an app."""
    return refusal_page(
        request, "You are signed in, but this app is not open to you. Ask your practice admin if you need it."
    )
