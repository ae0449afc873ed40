"""The practice's audit log: filter by person, event and time, page through it or download it
as CSV; page and JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from twofold import errors as core
from twofold.core.practice.audit_log import AuditFilter, parse_moment
from twofold.web.deps import Context, PracticeAdmin, ServicesDep
from twofold.web.practice.common import (
    CSV_ANSWER,
    Page,
    SameOriginExport,
    Text,
    api_router,
    check_export_origin,
    csv_download,
    page_link,
    wants_csv,
)
from twofold.web.practice.schemas import AuditEventPublic, AuditPagePublic
from twofold.web.rendering import render

api = api_router()
pages = APIRouter(include_in_schema=False)


@api.get(
    "/audit",
    response_model=AuditPagePublic,
    responses=CSV_ANSWER,
    summary="The practice's audit log",
    description="Newest first, 50 a page. `actor`, `subject` and `person` (either) take a member's id or email; "
    "`event` an event name, a namespace (`practice:member`) or words of an event's label (`reset`); `since` and `until` a date (YYYY-MM-DD, `until` "
    "includes that day) or an ISO time. With `Accept: text/csv` every matching event is streamed as CSV, oldest first.",
)
def audit_log(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    actor: Text = None,
    subject: Text = None,
    person: Text = None,
    event: Annotated[str | None, Query(max_length=80)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    page: Page = 1,
):
    audit_filter = AuditFilter(
        actor=actor,
        subject=subject,
        person=person,
        event=event,
        since=parse_moment(since),
        until=parse_moment(until, end=True),
    )
    practice_id = admin.user.practice_id
    if wants_csv(request):
        check_export_origin(request)
        lines = services.audit_trail.export_csv(
            practice_id=practice_id, filter=audit_filter, actor_id=admin.user.id, context=context
        )
        return csv_download(lines, "audit-log.csv")
    found = services.audit_trail.page(practice_id=practice_id, filter=audit_filter, page=page)
    return AuditPagePublic(items=[AuditEventPublic.of(entry) for entry in found.items], total=found.total)


def _audit_filter(person: str, event: str, since: str, until: str) -> AuditFilter:
    return AuditFilter(
        person=person[:320] or None,
        event=event[:80] or None,
        since=parse_moment(since[:40]),
        until=parse_moment(until[:40], end=True),
    )


@pages.get("/admin/audit")
def audit_page(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    person: str = "",
    event: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
):
    params = {"person": person, "event": event, "since": since, "until": until}
    try:
        audit_filter = _audit_filter(person, event, since, until)
    except core.InvalidInput as exc:
        return render(
            request, "admin/audit.html", {"session": admin, "params": params, "error": exc.message, "found": None}, 422
        )
    found = services.audit_trail.page(
        practice_id=admin.user.practice_id, filter=audit_filter, page=max(1, min(page, 1_000_000))
    )
    return render(
        request,
        "admin/audit.html",
        {
            "session": admin,
            "found": found,
            "params": params,
            "link": lambda **c: page_link("/admin/audit", params, **c),
            "csv_link": page_link("/admin/audit.csv", params),
        },
    )


@pages.get("/admin/audit.csv", dependencies=[SameOriginExport])
def audit_csv(
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    person: str = "",
    event: str = "",
    since: str = "",
    until: str = "",
):
    lines = services.audit_trail.export_csv(
        practice_id=admin.user.practice_id,
        filter=_audit_filter(person, event, since, until),
        actor_id=admin.user.id,
        context=context,
    )
    return csv_download(lines, "audit-log.csv")
