"""Account Settings > Security: the page, built whole by ``security_page`` for every form on it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from twofold import errors as core
from twofold.core.sessions import ActiveSession
from twofold.web.deps import ServicesDep, SignedIn
from twofold.web.rendering import NOTICES, back_home, render, twofold_cookies

pages = APIRouter(include_in_schema=False)

# The forms of the Security page that show their refusal in place, by the template's ``<form>_error`` slot.
FORMS = frozenset({"password", "disable", "regen", "replace", "email", "email_remove", "webauthn"})


def security_page(
    request: Request,
    active: ActiveSession,
    services,
    *,
    status: int = 200,
    notice: str | None = None,
    form: str | None = None,
    error: str | None = None,
    field: str | None = None,
) -> Response:
    """The whole Security page, answered with ``status``: every section, whichever form was sent.

    ``form`` names the form whose refusal ``error`` explains (one of ``FORMS``); its section
    opens with the message beside ``field`` (the input's name), which is marked invalid and focused. Every answer that shows this page builds it here, so no form's
    answer can miss a section the template needs.
    """
    if form is not None and form not in FORMS:
        raise ValueError(f"the Security page has no form {form!r}")
    user = active.user
    context = {
        "user": user,
        "session": active,
        "status": services.accounts.two_factor_status(user),
        "notice": NOTICES.get(notice or ""),
        "sessions": services.account_security.sessions_of(active=active),
        "browsers": services.account_security.browsers_of(user=user, cookies=twofold_cookies(request)),
        "email_state": services.email_enrollment.email_method_state(user),
        "webauthn_keys": services.webauthn_keys.keys_of(user),
        "webauthn_allowed": services.webauthn_keys.allowed_for(user),
        "undelivered": services.undelivered_mail.recent_for(user.id),
    }
    if form is not None:
        context[f"{form}_error"] = error
        context[f"{form}_field"] = field
    return render(request, "security.html", context, status)


def reauth_field(exc: core.TwofoldError, password: str) -> str:
    """Which input of a password-and-code form a refusal is about: the password when it is
    missing or wrong, the code otherwise (missing, malformed, wrong, or a wait for codes)."""
    return "password" if not password or isinstance(exc, core.InvalidCredentials) else "code"


@pages.get("/account/security")
def security_settings(request: Request, active: SignedIn, services: ServicesDep, notice: str | None = None):
    return security_page(request, active, services, notice=notice)


@pages.post("/account/security/undelivered/dismiss")
def dismiss_undelivered(active: SignedIn, services: ServicesDep):
    services.undelivered_mail.dismiss(active.user.id)
    return back_home("undelivered_dismissed")
