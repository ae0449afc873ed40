"""Administration › Report: the compliance report for a period, as a page, a printable page, CSV and JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from twofold.core.practice.report import ComplianceReport, ReportDateInvalid, share
from twofold.web.charts import Bar, bar_chart
from twofold.web.deps import Context, PracticeAdmin, ServicesDep
from twofold.web.practice.common import (
    CSV_ANSWER,
    SameOriginExport,
    api_router,
    check_export_origin,
    csv_download,
    page_link,
    wants_csv,
)
from twofold.web.practice.schemas import ReportPublic
from twofold.web.rendering import ROLE_LABELS, render

api = api_router()
pages = APIRouter(include_in_schema=False)

FROM = Query(alias="from", max_length=10, description="First day (YYYY-MM-DD, the practice's time zone)")
TO = Query(alias="to", max_length=10, description="Last day, included; today by default")
REPORT_DESCRIPTION = (
    "For the active members: 2FA on by role and overall, members per method, members past their deadline "
    "without 2FA, resets, lockouts and other 2FA events counted in the period, and whether the practice's audit "
    "chain verifies. The period is `from` to `to` (both included, in the practice's time zone, at most 366 days; "
    "the last 30 days by default). With `Accept: text/csv` the same report comes as CSV (audited)."
)


def _csv(request: Request, admin, services, context, first: str | None, last: str | None):
    check_export_origin(request)
    lines = services.reports.export_csv(
        practice_id=admin.user.practice_id, first=first, last=last, actor_id=admin.user.id, context=context
    )
    return csv_download(lines, "compliance-report.csv")


@api.get(
    "/report",
    response_model=ReportPublic,
    responses=CSV_ANSWER,
    summary="The practice's compliance report",
    description=REPORT_DESCRIPTION,
)
def report(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    first: Annotated[str | None, FROM] = None,
    last: Annotated[str | None, TO] = None,
):
    if wants_csv(request):
        return _csv(request, admin, services, context, first, last)
    return ReportPublic.of(services.reports.report(practice_id=admin.user.practice_id, first=first, last=last))


@api.get(
    "/report.csv",
    responses={200: {"content": {"text/csv": {}}, "description": "The report as CSV"}},
    summary="The practice's compliance report as CSV",
    description="The report of `GET /report` as CSV, one section a block of rows (audited as "
    "`practice:report:exported`).",
)
def report_csv(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    first: Annotated[str | None, FROM] = None,
    last: Annotated[str | None, TO] = None,
):
    return _csv(request, admin, services, context, first, last)


def charts(report: ComplianceReport) -> dict:
    """The page's two charts: 2FA on by role, and members per method (the same figures as the tables)."""
    lines = [*report.roles, report.overall]
    enrolment = bar_chart(
        chart_id="enrolment-chart",
        title="Members with two-factor authentication on, by role",
        description="; ".join(
            f"{_role(line.role)}: {line.percent:.1f}% ({line.enrolled} of {line.members})" for line in lines
        ),
        bars=[
            Bar(_role(line.role), line.percent, f"{line.percent:.1f}% ({line.enrolled}/{line.members})")
            for line in lines
        ],
    )
    total = report.overall.members
    methods = bar_chart(
        chart_id="methods-chart",
        title="Members per sign-in method",
        description="; ".join(f"{m.label}: {m.members} of {total}" for m in report.methods),
        bars=[
            Bar(m.label, share(m.members, total), f"{m.members} ({share(m.members, total):.1f}%)")
            for m in report.methods
        ],
    )
    return {"enrolment_chart": enrolment, "methods_chart": methods}


def _role(role: str) -> str:
    return ROLE_LABELS.get(role, "All members")


def _report_page(request: Request, admin, services, template: str, first: str, last: str):
    first, last = first[:40], last[:40]  # anything longer is no date either; this keeps it short when shown again
    params = {"from": first, "to": last}
    try:
        found = services.reports.report(practice_id=admin.user.practice_id, first=first, last=last)
    except ReportDateInvalid as exc:
        context = {"session": admin, "params": params, "error": exc.message, "error_field": exc.field, "report": None}
        return render(request, "admin/report.html", context, 422)
    shown = {"from": found.period.first.isoformat(), "to": found.period.last.isoformat()}
    return render(
        request,
        template,
        {
            "session": admin,
            "params": shown,  # the period shown, the default one included, fills the form
            "report": found,
            "time_zone": found.period.time_zone,
            "csv_link": page_link("/admin/report.csv", shown),
            "print_link": page_link("/admin/report/print", shown),
            "role_name": _role,
            "share": share,
            **charts(found),
        },
    )


@pages.get("/admin/report")
def report_page(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
):
    return _report_page(request, admin, services, "admin/report.html", first, last)


@pages.get("/admin/report/print")
def report_print(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
):
    return _report_page(request, admin, services, "admin/report_print.html", first, last)


@pages.get("/admin/report.csv", dependencies=[SameOriginExport])
def report_page_csv(
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
):
    lines = services.reports.export_csv(
        practice_id=admin.user.practice_id, first=first[:40], last=last[:40], actor_id=admin.user.id, context=context
    )
    return csv_download(lines, "compliance-report.csv")
