"""The "set up 2FA first" prompt, for a member whose practice requires two-factor authentication."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold.web.deps import Context, Enrolling, ServicesDep
from twofold.web.rendering import HOME, MAX_RETURN_URL, render, safe_next

pages = APIRouter(include_in_schema=False)


@pages.get("/account/two-factor")
def two_factor_required_page(request: Request, active: Enrolling, services: ServicesDep, next: str = ""):
    requirement = services.enforcement.requirement_for(active.user.id)
    due_at = requirement.due_at
    if not requirement.outstanding or due_at is None:  # outstanding implies a due date
        return RedirectResponse(safe_next(next) if next else HOME, status_code=303)
    now = services.clock.now()
    return render(
        request,
        "two_factor_required.html",
        {
            "session": active,
            "requirement": requirement,
            "may_skip": requirement.may_skip(now),
            "webauthn_allowed": services.webauthn_keys.allowed_for(active.user),
            # Rounded up: on the first day of a 7-day grace period, 7 days are left (not 6 and some hours).
            "days_left": max(0, math.ceil((due_at - now) / timedelta(days=1))),
            "next": safe_next(next) if next else HOME,
        },
    )


@pages.post("/account/two-factor/skip")
def two_factor_skip(
    active: Enrolling,
    services: ServicesDep,
    context: Context,
    next: Annotated[str, Form(max_length=MAX_RETURN_URL)] = "",
):
    services.enforcement.skip(user=active.user, context=context)
    return RedirectResponse(safe_next(next), status_code=303)
