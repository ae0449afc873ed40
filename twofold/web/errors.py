"""Every error as JSON ``{"error", "message"}`` for the API, an HTML page for people."""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from twofold import errors as core
from twofold.web.rendering import DuplicateSessionCookie, clear_session_cookies, render

log = logging.getLogger("twofold.web")

STATUS = [
    (DuplicateSessionCookie, 400),
    (core.Throttled, 429),
    (core.InvalidCredentials, 401),
    (core.NotAuthenticated, 401),
    (core.InvalidCode, 400),
    (core.FlowNotFound, 404),
    (core.FlowExpired, 410),
    (core.NotFound, 404),
    (core.Conflict, 409),
    (core.InvalidInput, 422),
    (core.MethodNotAvailable, 400),
    (core.Forbidden, 403),
    (core.DeliveryFailed, 503),
    (core.Unavailable, 503),
]

HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    400: "bad_request",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def status_for(error: core.TwofoldError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 400


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(error: core.TwofoldError, status: int | None = None) -> JSONResponse:
    status = status or status_for(error)
    body: dict[str, str | int] = {"error": error.code, "message": error.message}
    headers = {}
    if isinstance(error, core.Throttled):
        body["retry_after"] = error.retry_after
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def _return_target(request: Request) -> str | None:
    """Where to return after signing in again: this page for a GET; for a form sent
    after the session ended, the page the form was on (a POST-only address would
    answer 405 when revisited)."""
    if request.method in ("GET", "HEAD"):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.headers.get("host") and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(core.TwofoldError)
    async def _twofold_error(request: Request, exc: core.TwofoldError) -> Response:
        if isinstance(exc, DuplicateSessionCookie):
            if wants_json(request):
                return clear_session_cookies(request, error_response(exc))
            page = render(request, "error.html", {"title": "Sign in again", "message": exc.message}, 400)
            return clear_session_cookies(request, page)
        if wants_json(request):
            return error_response(exc)
        if isinstance(exc, core.NotAuthenticated):
            target = _return_target(request)
            return RedirectResponse(
                f"/sign-in?next={quote(target, safe='')}" if target else "/sign-in", status_code=303
            )
        if isinstance(exc, core.TwoFactorRequired):
            return RedirectResponse("/account/two-factor", status_code=303)
        return render(
            request, "error.html", {"title": "Something needs attention", "message": exc.message}, status_for(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for item in exc.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body",))
            problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", "invalid"))
        message = "The request is not valid. " + "; ".join(problems[:5])
        if wants_json(request):
            return JSONResponse({"error": "validation_error", "message": message}, status_code=422)
        return render(request, "error.html", {"title": "That did not look right", "message": message}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "The request could not be completed."
        if exc.status_code == 404:
            message = "There is nothing at this address."
        if wants_json(request):
            return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)
        return render(request, "error.html", {"title": "Not here", "message": message}, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
        return JSONResponse(
            {"error": "internal_error", "message": "Something went wrong on our side. Please try again."},
            status_code=500,
        )
