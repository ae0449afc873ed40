"""What the practice administration routes share: their OpenAPI tag and answers, CSV downloads,
page links that keep a list's filters, and the member page every member action answers with."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from twofold.core.practice.audit_log import AuditFilter
from twofold.core.sessions import ActiveSession
from twofold.errors import CrossOriginRefused
from twofold.web.rendering import PRACTICE_NOTICES, render
from twofold.web.schemas import ERRORS, ErrorPublic, Responses
from twofold.web.security import is_same_origin_read

CSV_MEDIA = "text/csv; charset=utf-8"
NOT_FOUND: Responses = {404: {"model": ErrorPublic, "description": "No such member in your practice"}}
CONFLICT: Responses = {
    409: {"model": ErrorPublic, "description": "Refused by a rule (last admin, duplicate email, ...)"}
}
CSV_ANSWER: Responses = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}}

Page = Annotated[int, Query(ge=1, le=1_000_000)]
Text = Annotated[str | None, Query(max_length=320)]


def api_router() -> APIRouter:
    """A router for ``/api/v1/practice/...``: for the practice's admins only, under one OpenAPI tag."""
    return APIRouter(prefix="/api/v1/practice", responses=ERRORS, tags=["practice administration"])


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "").lower()


def check_export_origin(request: Request) -> None:
    """An export (audited under the admin's name) answers only requests from this site's own pages:
    a link on another site must not make the admin's browser run one (403 ``cross_origin_refused``)."""
    public_origin = request.app.state.services.settings.public_origin
    if not is_same_origin_read(request.headers, public_origin=public_origin):
        raise CrossOriginRefused()


SameOriginExport = Depends(check_export_origin)


def csv_download(lines, filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines, media_type=CSV_MEDIA, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def page_link(path: str, params: dict, **changes) -> str:
    query = {k: v for k, v in {**params, **changes}.items() if v not in (None, "", False)}
    return f"{path}?{urlencode(query)}" if query else path


def member_page(
    request: Request, admin: ActiveSession, services, member_id: int, status: int = 200, **extra
) -> Response:
    """A member's page (their 2FA, the actions, their latest audit events), with a form's refusal in ``extra``."""
    member = services.members.get_member(practice_id=admin.user.practice_id, member_id=member_id)
    events = services.audit_trail.page(practice_id=admin.user.practice_id, filter=AuditFilter(person=str(member.id)))
    return render(
        request,
        "admin/member.html",
        {
            "session": admin,
            "member": member,
            "events": events.items[:10],
            "events_total": events.total,
            "notice": PRACTICE_NOTICES.get(request.query_params.get("notice") or ""),
            **extra,
        },
        status,
    )
