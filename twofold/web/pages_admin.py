"""Pages: practice administration (issue 5), set-up links, and the "set up 2FA first" prompt.

Admin pages use ``PracticeAdmin``: a member who is not an admin gets 403, and every
call passes the admin's own practice, so another practice's member is "not found".
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse

from twofold import errors as core
from twofold.core.practice.audit_log import AuditFilter, parse_moment
from twofold.core.practice.setup_links import SetupLinkInvalid
from twofold.core.practice.members import MemberFilter
from twofold.crypto.otp import normalize_code
from twofold.core.practice.policy import METHODS
from twofold.store.models import ROLES
from twofold.web.deps import Context, Enrolling, PracticeAdmin, ServicesDep, link_base
from twofold.web.pages import HOME, safe_next

router = APIRouter(include_in_schema=False)

METHOD_LABELS = {"totp": "Authenticator app", "email": "Email code", "recovery_code": "Backup codes", "webauthn": "Security key"}
ROLE_LABELS = {"admin": "Admin", "provider": "Provider", "staff": "Staff"}

NOTICES = {
    "added": "Member added. They were emailed a link to choose a password and set up two-factor authentication.",
    "role": "Role changed.",
    "deactivated": "Member deactivated: their sessions and remembered browsers have ended.",
    "reactivated": "Member reactivated.",
    "link_sent": "Set-up link sent. It works once, for 72 hours; any earlier link no longer works.",
    "enrolled": "Two-factor authentication is on for this member.",
    "reset": "Two-factor authentication was reset. The member was signed out, emailed, and will set it up again at their next sign-in.",
    "policy": "Policy saved. It applies from each member's next request.",
}


def when(moment: datetime | None) -> str:
    return moment.strftime("%d %b %Y, %H:%M UTC") if moment else "—"


def render(request: Request, name: str, context: dict | None = None, status: int = 200):
    from twofold.web.app import render as _render

    base = {"when": when, "method_labels": METHOD_LABELS, "role_labels": ROLE_LABELS, "roles": ROLES}
    return _render(request, name, {**base, **(context or {})}, status)


def page_link(path: str, params: dict, **changes) -> str:
    query = {k: v for k, v in {**params, **changes}.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(query)}" if query else path


# -- members ----------------------------------------------------------------------------


def _member_filter(q: str, show: str, role: str) -> MemberFilter:
    return MemberFilter(
        q=q or None, without_two_factor=show == "without_two_factor", role=role if role in ROLES else None,
        active={"active": True, "inactive": False}.get(show),
    )


@router.get("/admin")
def admin_home(_admin: PracticeAdmin):
    return RedirectResponse("/admin/members", status_code=303)


@router.get("/admin/members")
def members_page(
    request: Request, admin: PracticeAdmin, services: ServicesDep, q: str = "", show: str = "", role: str = "", page: int = 1,
):
    q, page = q[:200], max(1, min(page, 1_000_000))
    found = services.members.list_members(practice_id=admin.user.practice_id, filter=_member_filter(q, show, role), page=page)
    params = {"q": q, "show": show, "role": role}
    return render(request, "admin/members.html", {
        "session": admin, "found": found, "params": params, "link": lambda **c: page_link("/admin/members", params, **c),
        "csv_link": page_link("/admin/members.csv", params),
        "admins_without": services.members.admins_without_two_factor(practice_id=admin.user.practice_id),
    })


@router.get("/admin/members.csv")
def members_csv(admin: PracticeAdmin, services: ServicesDep, context: Context, q: str = "", show: str = "", role: str = ""):
    from twofold.web.api_practice import csv_download

    lines = services.members.export_csv(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, context=context, filter=_member_filter(q[:200], show, role)
    )
    return csv_download(lines, "members.csv")


@router.get("/admin/members/new")
def new_member_page(request: Request, admin: PracticeAdmin):
    return render(request, "admin/member_new.html", {"session": admin, "form": {"role": "staff"}})


@router.post("/admin/members/new")
def new_member_submit(
    request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context,
    email: Annotated[str, Form(max_length=320)] = "", name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
):
    try:
        view = services.members.add_member(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, email=email, name=name, role=role,
            context=context, link_base=link_base(request),
        )
    except (core.InvalidInput, core.Conflict) as exc:
        form = {"email": email, "name": name, "role": role}
        return render(request, "admin/member_new.html", {"session": admin, "form": form, "error": exc.message, "field": _field(exc)}, 422)
    return RedirectResponse(f"/admin/members/{view.id}?notice=added", status_code=303)


def _field(exc: core.TwofoldError) -> str | None:
    return {"invalid_email": "email", "duplicate_email": "email", "invalid_name": "name", "unknown_role": "role"}.get(exc.code)


@router.get("/admin/members/import")
def import_page(request: Request, admin: PracticeAdmin):
    return render(request, "admin/import.html", {"session": admin, "send_setup_links": True})


@router.post("/admin/members/import")
def import_submit(
    request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context,
    file: Annotated[UploadFile | None, File()] = None, send_setup_links: Annotated[bool, Form()] = False,
):
    error, results = None, None
    try:
        raw = file.file.read() if file is not None else b""
        if not raw.strip():
            raise core.InvalidInput("Choose a CSV file to upload.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise core.InvalidInput("The file must be CSV in UTF-8 (in a spreadsheet: Save as › CSV UTF-8).") from None
        results = list(services.members.import_csv(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, lines=text.splitlines(), context=context,
            send_setup_links=send_setup_links, link_base=link_base(request),
        ))
    except core.InvalidInput as exc:
        error = exc.message
    return render(request, "admin/import.html", {
        "session": admin, "error": error, "results": results, "send_setup_links": send_setup_links,
        "imported": sum(r.status == "imported" for r in results or []),
        "failed": sum(r.status != "imported" for r in results or []),
    }, 422 if error else 200)


def _member_page(request, admin, services, member_id: int, status: int = 200, **extra):
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    events = services.audit_trail.page(practice_id=admin.user.practice_id, filter=AuditFilter(person=str(member.id)))
    return render(request, "admin/member.html", {
        "session": admin, "member": member, "events": events.items[:10], "events_total": events.total,
        "notice": NOTICES.get(request.query_params.get("notice") or ""), **extra,
    }, status)


@router.get("/admin/members/{member_id}")
def member_page(request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep):
    return _member_page(request, admin, services, member_id)


@router.post("/admin/members/{member_id}/role")
def member_role(
    request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context,
    role: Annotated[str, Form(max_length=16)] = "",
):
    try:
        services.members.update_member(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, role=role, context=context
        )
    except (core.InvalidInput, core.Conflict) as exc:
        return _member_page(request, admin, services, member_id, 409, role_error=exc.message)
    return RedirectResponse(f"/admin/members/{member_id}?notice=role", status_code=303)


@router.post("/admin/members/{member_id}/active")
def member_active(
    request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context,
    active: Annotated[str, Form(max_length=8)] = "",
):
    if active not in ("yes", "no"):
        return _member_page(request, admin, services, member_id, 422, active_error="Choose to activate or deactivate.")
    try:
        services.members.update_member(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, active=active == "yes",
            context=context,
        )
    except core.Conflict as exc:
        return _member_page(request, admin, services, member_id, 409, active_error=exc.message)
    notice = "reactivated" if active == "yes" else "deactivated"
    if member_id == admin.user.id and active == "no":
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(f"/admin/members/{member_id}?notice={notice}", status_code=303)


@router.post("/admin/members/{member_id}/setup-link")
def member_setup_link(request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context):
    try:
        services.setup.send_link(
            practice_id=admin.user.practice_id, actor_id=admin.user.id, member_id=member_id, context=context,
            link_base=link_base(request),
        )
    except core.Conflict as exc:
        return _member_page(request, admin, services, member_id, 409, link_error=exc.message)
    return RedirectResponse(f"/admin/members/{member_id}?notice=link_sent", status_code=303)


@router.post("/admin/members/{member_id}/enrol")
def member_enrol_start(request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context):
    try:
        enrollment = services.setup.start_on_admin_screen(
            practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id, context=context
        )
    except core.Conflict as exc:
        return _member_page(request, admin, services, member_id, 409, enrol_error=exc.message)
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    return render(request, "admin/enrol.html", {"session": admin, "member": member, "enrollment": enrollment, "show_key": True})


@router.post("/admin/members/{member_id}/enrol/confirm")
def member_enrol_confirm(
    request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "", code: Annotated[str, Form(max_length=64)] = "",
):
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    if normalize_code(code) is None:
        error = "Enter the 6-digit code the member's app shows now (digits only)."
    else:
        try:
            services.setup.confirm_on_admin_screen(
                practice_id=admin.user.practice_id, admin_id=admin.user.id, member_id=member_id,
                enrollment_id=enrollment_id, code=code, context=context,
            )
            return RedirectResponse(f"/admin/members/{member_id}?notice=enrolled", status_code=303)
        except core.NotFound:
            return _member_page(request, admin, services, member_id, 410, enrol_error="That set-up expired. Start again.")
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    # The key is never shown again, not even after a wrong code: the member has scanned it already.
    enrollment = {"enrollment_id": enrollment_id}
    return render(request, "admin/enrol.html", {
        "session": admin, "member": member, "enrollment": enrollment, "show_key": False, "error": error,
    }, 400)


@router.post("/admin/members/{member_id}/reset")
def member_reset(
    request: Request, member_id: int, admin: PracticeAdmin, services: ServicesDep, context: Context,
    password: Annotated[str, Form(max_length=1024)] = "", code: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
):
    try:
        if not password or not code.strip():
            raise core.InvalidInput("Enter your own password and the current code from your app.")
        services.resets.reset_member_two_factor(
            practice_id=admin.user.practice_id, admin=admin.user, member_id=member_id, password=password, code=code,
            reason=reason, context=context,
        )
    except (core.InvalidInput, core.InvalidCode, core.InvalidCredentials, core.Throttled, core.Forbidden, core.Conflict) as exc:
        return _member_page(request, admin, services, member_id, 400, reset_error=exc.message, reason=reason)
    return RedirectResponse(f"/admin/members/{member_id}?notice=reset", status_code=303)


# -- policy ----------------------------------------------------------------------------------


@router.get("/admin/policy")
def policy_page(request: Request, admin: PracticeAdmin, services: ServicesDep, notice: str = ""):
    practice_id = admin.user.practice_id
    return render(request, "admin/policy.html", {
        "session": admin, "policy": services.policies.get(practice_id=practice_id), "methods": METHODS,
        "since": services.policies.required_since(practice_id=practice_id), "notice": NOTICES.get(notice),
    })


@router.post("/admin/policy")
def policy_submit(
    request: Request, admin: PracticeAdmin, services: ServicesDep, context: Context,
    action: Annotated[str, Form(max_length=16)] = "save",
    require_two_factor: Annotated[bool, Form()] = False,
    required_roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    grace_days: Annotated[str, Form(max_length=6)] = "",
    allowed_methods: Annotated[list[str], Form()] = [],  # noqa: B006
    remember_browser_days: Annotated[str, Form(max_length=6)] = "",
    idle_timeout_minutes: Annotated[str, Form(max_length=6)] = "",
):
    practice_id = admin.user.practice_id
    numbers = {"grace_days": grace_days, "remember_browser_days": remember_browser_days, "idle_timeout_minutes": idle_timeout_minutes}
    form = {
        "require_two_factor": require_two_factor, "required_roles": required_roles[:10],
        "allowed_methods": ["totp", *[m for m in allowed_methods[:10] if m != "totp"]], **numbers,
    }
    preview = error = None
    try:
        bad = [name for name, value in numbers.items() if not value.strip().isdigit()]
        if bad:
            raise core.InvalidInput(f"{bad[0].replace('_', ' ').capitalize()} must be a whole number.")
        changes = {**form, **{name: int(value) for name, value in numbers.items()}}
        settings = services.policies.proposed(practice_id=practice_id, changes=changes)
        if action != "preview":
            services.policies.update(practice_id=practice_id, actor_id=admin.user.id, changes=changes, context=context)
            return RedirectResponse("/admin/policy?notice=policy", status_code=303)
        preview = services.policies.preview(practice_id=practice_id, settings=settings)
    except core.InvalidInput as exc:
        error = exc.message
    return render(request, "admin/policy.html", {
        "session": admin, "policy": form, "methods": METHODS, "preview": preview, "error": error,
        "since": services.policies.required_since(practice_id=practice_id),
    }, 422 if error else 200)


# -- audit log ---------------------------------------------------------------------------------


def _audit_filter(person: str, event: str, since: str, until: str) -> AuditFilter:
    return AuditFilter(person=person[:320] or None, event=event[:80] or None, since=parse_moment(since[:40]),
                       until=parse_moment(until[:40], end=True))


@router.get("/admin/audit")
def audit_page(
    request: Request, admin: PracticeAdmin, services: ServicesDep,
    person: str = "", event: str = "", since: str = "", until: str = "", page: int = 1,
):
    params = {"person": person, "event": event, "since": since, "until": until}
    try:
        audit_filter = _audit_filter(person, event, since, until)
    except core.InvalidInput as exc:
        return render(request, "admin/audit.html", {"session": admin, "params": params, "error": exc.message, "found": None}, 422)
    found = services.audit_trail.page(practice_id=admin.user.practice_id, filter=audit_filter, page=max(1, min(page, 1_000_000)))
    return render(request, "admin/audit.html", {
        "session": admin, "found": found, "params": params, "link": lambda **c: page_link("/admin/audit", params, **c),
        "csv_link": page_link("/admin/audit.csv", params),
    })


@router.get("/admin/audit.csv")
def audit_csv(
    admin: PracticeAdmin, services: ServicesDep, context: Context, person: str = "", event: str = "", since: str = "",
    until: str = "",
):
    from twofold.web.api_practice import csv_download

    lines = services.audit_trail.export_csv(
        practice_id=admin.user.practice_id, filter=_audit_filter(person, event, since, until), actor_id=admin.user.id,
        context=context,
    )
    return csv_download(lines, "audit-log.csv")


# -- set-up links (the member's side; no session needed) ------------------------------------------


def _setup_gone(request: Request, exc: SetupLinkInvalid):
    return render(request, "setup/invalid.html", {"message": exc.message}, 410 if exc.reason != "unknown" else 404)


@router.get("/setup/{token}")
def setup_page(request: Request, token: str, services: ServicesDep, context: Context):
    try:
        state = services.setup.open(token=token, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    return render(request, "setup/start.html", {"token": token, "state": state})


@router.post("/setup/{token}/password")
def setup_password(
    request: Request, token: str, services: ServicesDep, context: Context,
    password: Annotated[str, Form(max_length=1024)] = "", password_again: Annotated[str, Form(max_length=1024)] = "",
):
    try:
        state = services.setup.open(token=token, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    try:
        if state.needs_password:
            if password != password_again:
                raise core.InvalidInput("The two passwords are not the same. Type the same password twice.")
            step = services.setup.choose_password(token=token, password=password, context=context)
        else:
            step = services.setup.verify_password(token=token, password=password, context=context)
    except SetupLinkInvalid as exc:
        return _setup_gone(request, exc)
    except (core.InvalidInput, core.InvalidCredentials, core.Throttled, core.Conflict) as exc:
        if isinstance(exc, core.Conflict):  # the password was chosen meanwhile: ask for it
            state = services.setup.open(token=token, context=context)
        throttled = isinstance(exc, core.Throttled)
        page = render(request, "setup/start.html", {"token": token, "state": state, "error": exc.message}, 429 if throttled else 400)
        if throttled:
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if step.done:
        return render(request, "setup/done.html", {})
    return render(request, "setup/totp.html", {"token": token, "enrollment": step.enrollment, "state": state})


@router.post("/setup/{token}/confirm")
def setup_confirm(
    request: Request, token: str, services: ServicesDep, context: Context,
    enrollment_id: Annotated[str, Form(max_length=64)] = "", code: Annotated[str, Form(max_length=64)] = "",
):
    error = None
    if normalize_code(code) is None:
        error = "Enter the 6-digit code your app shows now (digits only)."
    else:
        try:
            services.setup.confirm(token=token, enrollment_id=enrollment_id, code=code, context=context)
            return render(request, "setup/done.html", {})
        except SetupLinkInvalid as exc:
            return _setup_gone(request, exc)
        except core.NotFound:
            return render(request, "setup/invalid.html", {"message": "This set-up took too long and expired. Open the link from your email again."}, 410)
        except (core.InvalidCode, core.Throttled) as exc:
            error = exc.message
    enrollment = services.setup.pending_enrollment(token=token, enrollment_id=enrollment_id)
    if enrollment is None:
        return render(request, "setup/invalid.html", {"message": "This set-up expired. Open the link from your email again."}, 410)
    return render(request, "setup/totp.html", {"token": token, "enrollment": enrollment, "error": error}, 400)


# -- the "set up 2FA first" prompt ---------------------------------------------------------------------


@router.get("/account/two-factor")
def two_factor_required_page(request: Request, active: Enrolling, services: ServicesDep, next: str = ""):
    requirement = services.enforcement.requirement_for(active.user.id)
    if not requirement.outstanding:
        return RedirectResponse(safe_next(next) if next else HOME, status_code=303)
    now = services.clock.now()
    return render(request, "two_factor_required.html", {
        "session": active, "requirement": requirement, "may_skip": requirement.may_skip(now),
        "days_left": max(0, (requirement.due_at - now).days), "next": safe_next(next) if next else HOME,
    })


@router.post("/account/two-factor/skip")
def two_factor_skip(active: Enrolling, services: ServicesDep, context: Context, next: Annotated[str, Form(max_length=500)] = ""):
    services.enforcement.skip(user=active.user, context=context)
    return RedirectResponse(safe_next(next), status_code=303)
