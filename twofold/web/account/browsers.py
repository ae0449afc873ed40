"""Remembered browsers: the Security page's "Forget" forms and ``/api/v1/me/remembered-browsers``.

``DELETE /api/v1/me/remembered-browsers`` forgets every remembered browser, this one included.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from twofold.core.remembered import BrowserView
from twofold.web.account.schemas import RememberedBrowserListPublic, RememberedBrowserPublic, RevokedPublic
from twofold.web.account.sessions import NOT_FOUND
from twofold.web.deps import Context, RowId, ServicesDep, SignedIn
from twofold.web.rendering import back_home, set_cookies, twofold_cookies
from twofold.web.schemas import ERRORS

api = APIRouter(prefix="/api/v1", responses=ERRORS)
pages = APIRouter(include_in_schema=False)


def _browser_public(view: BrowserView) -> RememberedBrowserPublic:
    return RememberedBrowserPublic(
        id=view.id,
        label=view.label,
        created_at=view.created_at.isoformat(),
        last_used_at=view.last_used_at.isoformat(),
        expires_at=view.expires_at.isoformat(),
        ip=view.ip,
        last_ip=view.last_ip,
        current=view.current,
    )


@api.get("/me/remembered-browsers", response_model=RememberedBrowserListPublic, summary="Your remembered browsers")
def list_browsers(request: Request, active: SignedIn, services: ServicesDep):
    views = services.account_security.browsers_of(user=active.user, cookies=twofold_cookies(request))
    return RememberedBrowserListPublic(remembered_browsers=[_browser_public(view) for view in views])


@api.get(
    "/me/remembered-browsers/{browser_id}",
    response_model=RememberedBrowserPublic,
    summary="One of your remembered browsers",
    responses=NOT_FOUND,
)
def get_browser(browser_id: RowId, request: Request, active: SignedIn, services: ServicesDep):
    view = services.account_security.browser_of(
        user=active.user, cookies=twofold_cookies(request), browser_id=browser_id
    )
    return _browser_public(view)


@api.delete(
    "/me/remembered-browsers/{browser_id}",
    response_model=RevokedPublic,
    summary="Forget one remembered browser",
    description="Its next sign-in asks for a code again.",
    responses=NOT_FOUND,
)
def forget_browser(browser_id: RowId, request: Request, active: SignedIn, services: ServicesDep, context: Context):
    cookie = services.account_security.forget_browser(
        user=active.user, browser_id=browser_id, cookies=twofold_cookies(request), context=context
    )
    return set_cookies(request, JSONResponse(RevokedPublic(count=1).model_dump()), browser=cookie)


@api.delete(
    "/me/remembered-browsers",
    response_model=RevokedPublic,
    summary="Forget every remembered browser",
    description="Every browser, this one included, asks for a code at its next sign-in.",
)
def forget_browsers(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    count, cookie = services.account_security.forget_browsers(user=active.user, context=context)
    return set_cookies(request, JSONResponse(RevokedPublic(count=count).model_dump()), browser=cookie)


@pages.post("/account/security/remembered-browsers/{browser_id}/forget")
def forget_browser_form(request: Request, browser_id: RowId, active: SignedIn, services: ServicesDep, context: Context):
    cookie = services.account_security.forget_browser(
        user=active.user, browser_id=browser_id, cookies=twofold_cookies(request), context=context
    )
    return set_cookies(request, back_home("browser_forgotten"), browser=cookie)


@pages.post("/account/security/remembered-browsers/forget-all")
def forget_browsers_form(request: Request, active: SignedIn, services: ServicesDep, context: Context):
    _count, cookie = services.account_security.forget_browsers(user=active.user, context=context)
    return set_cookies(request, back_home("browsers_forgotten"), browser=cookie)
