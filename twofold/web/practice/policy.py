"""The practice's security policy: whether 2FA is required and for whom, the grace period, the
methods allowed, remembered-browser days and the idle timeouts (everywhere, and on shared workstations); page (with a preview of who
would be asked) and JSON."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.core.practice.policy import (
    PhishingResistantMethodNotAllowed,
    PolicyChoiceInvalid,
    PolicyTimeZoneInvalid,
    PolicyValueInvalid,
)
from twofold.web.deps import Context, PracticeAdmin, ServicesDep
from twofold.web.practice.common import Page, api_router
from twofold.web.practice.schemas import MemberPublic, PolicyPreviewPublic, PolicyPublic, PolicyUpdate
from twofold.web.rendering import PRACTICE_NOTICES, render

api = api_router()
pages = APIRouter(include_in_schema=False)


@api.get("/policy", response_model=PolicyPublic, summary="The practice's security policy")
def get_policy(admin: PracticeAdmin, services: ServicesDep):
    return PolicyPublic.of(services.policies.get(practice_id=admin.user.practice_id))


@api.put(
    "/policy",
    response_model=PolicyPublic,
    summary="Change the practice's security policy",
    description="Fields left out keep their value. `grace_days` 0-30, `remember_browser_days` 0-30, "
    "`idle_timeout_minutes` 1-60; `shared_workstation_idle_minutes` 1 to `idle_timeout_minutes` (sessions "
    "started on a shared workstation end after it); `time_zone` an IANA name (pages and emails show local time; "
    "the API's times stay UTC); `required_roles` empty means every role (admins are always included); "
    "`allowed_methods` from `totp` (always), `webauthn`, `email`, `recovery_code`; `passkey_sign_in`: members may "
    "sign in with a passkey alone; `phishing_resistant_roles`: roles that must set up a security key or passkey "
    "within the grace period and then sign in only with it (backup codes still work). "
    "Applies at each member's next request.",
)
def put_policy(body: PolicyUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    settings = services.policies.update(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, changes=body.changes(), context=context
    )
    return PolicyPublic.of(settings)


@api.post(
    "/policy/preview",
    response_model=PolicyPreviewPublic,
    summary="Who a policy would require to set up 2FA",
    description="Changes nothing. The body is as for PUT; answers the active members who would have to set up "
    "two-factor authentication (50 a page), how many in all, and by when.",
)
def preview_policy(body: PolicyUpdate, admin: PracticeAdmin, services: ServicesDep, page: Page = 1):
    practice_id = admin.user.practice_id
    settings = services.policies.proposed(practice_id=practice_id, changes=body.changes())
    preview = services.policies.preview(practice_id=practice_id, settings=settings, page=page)
    return PolicyPreviewPublic(
        items=[MemberPublic.of(view) for view in preview.members.items],
        total=preview.members.total,
        due_at=preview.due_at.isoformat() if preview.due_at else None,
    )


# What the policy page offers as time zones: every IANA name this system knows, A to Z.
TIME_ZONES = sorted(name for name in available_timezones() if "/" in name and not name.startswith(("Etc/", "SystemV/")))
TIME_ZONES.insert(0, "UTC")

# The policy form's numbers as the page labels them, and their unit: errors name a field as the admin sees it.
NUMBER_FIELDS = {
    "grace_days": ("Grace period", "days"),
    "remember_browser_days": ("Remember a browser for", "days"),
    "idle_timeout_minutes": ("Sign out after inactivity", "minutes"),
    "shared_workstation_idle_minutes": ("On a shared workstation, sign out after inactivity", "minutes"),
}


def _number_error(field: str, low: int | None = None, high: int | None = None) -> str:
    label, unit = NUMBER_FIELDS[field]
    if low is None:
        return f"{label}: enter a whole number of {unit}."
    return f"{label}: enter a whole number of {unit} from {low} to {high}."


@pages.get("/admin/policy")
def policy_page(request: Request, admin: PracticeAdmin, services: ServicesDep, notice: str = ""):
    practice_id = admin.user.practice_id
    return render(
        request,
        "admin/policy.html",
        {
            "session": admin,
            "policy": services.policies.get(practice_id=practice_id),
            "methods": services.policies.methods(),
            "time_zones": TIME_ZONES,
            "since": services.policies.required_since(practice_id=practice_id),
            "notice": PRACTICE_NOTICES.get(notice),
        },
    )


@pages.post("/admin/policy")
def policy_submit(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    action: Annotated[str, Form(max_length=16)] = "save",
    require_two_factor: Annotated[bool, Form()] = False,
    required_roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    grace_days: Annotated[str, Form(max_length=6)] = "",
    allowed_methods: Annotated[list[str], Form()] = [],  # noqa: B006
    remember_browser_days: Annotated[str, Form(max_length=6)] = "",
    idle_timeout_minutes: Annotated[str, Form(max_length=6)] = "",
    shared_workstation_idle_minutes: Annotated[str, Form(max_length=6)] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
    passkey_sign_in: Annotated[bool, Form()] = False,
    phishing_resistant_roles: Annotated[list[str], Form()] = [],  # noqa: B006
):
    practice_id = admin.user.practice_id
    numbers = {
        "grace_days": grace_days,
        "remember_browser_days": remember_browser_days,
        "idle_timeout_minutes": idle_timeout_minutes,
        "shared_workstation_idle_minutes": shared_workstation_idle_minutes,
    }
    form = {
        "require_two_factor": require_two_factor,
        "required_roles": required_roles[:10],
        "allowed_methods": ["totp", *[m for m in allowed_methods[:10] if m != "totp"]],
        "passkey_sign_in": passkey_sign_in,
        "phishing_resistant_roles": phishing_resistant_roles[:10],
        **numbers,
    }
    form["time_zone"] = time_zone or services.policies.get(practice_id=practice_id).time_zone
    preview = error = field = None
    try:
        bad = [name for name, value in numbers.items() if not value.strip().isdigit()]
        if bad:
            field = bad[0]
            raise core.InvalidInput(_number_error(field))
        changes = {**form, **{name: int(value) for name, value in numbers.items()}}
        settings = services.policies.proposed(practice_id=practice_id, changes=changes)
        if action != "preview":
            services.policies.update(practice_id=practice_id, actor_id=admin.user.id, changes=changes, context=context)
            return RedirectResponse("/admin/policy?notice=policy", status_code=303)
        preview = services.policies.preview(practice_id=practice_id, settings=settings)
    except PolicyValueInvalid as exc:
        field, error = exc.field, _number_error(exc.field, exc.low, exc.high)
        if field == "shared_workstation_idle_minutes":
            error += " It cannot be longer than the idle time everywhere else."
    except PolicyTimeZoneInvalid:
        field, error = "time_zone", "Time zone: choose your practice's time zone from the list."
    except PhishingResistantMethodNotAllowed as exc:
        methods = " or ".join(
            f"“{services.factors.label(kind)}”" for kind in services.factors.phishing_resistant_kinds()
        )
        field, error = (
            exc.field,
            f"Security keys and passkeys: tick {methods} under Allowed methods, or untick these roles.",
        )
    except PolicyChoiceInvalid as exc:
        field, error = exc.field, exc.message
    except core.InvalidInput as exc:
        error = exc.message
    return render(
        request,
        "admin/policy.html",
        {
            "session": admin,
            "policy": form,
            "methods": services.policies.methods(),
            "time_zones": TIME_ZONES,
            "preview": preview,
            "error": error,
            "error_field": field,
            "since": services.policies.required_since(practice_id=practice_id),
        },
        422 if error else 200,
    )
