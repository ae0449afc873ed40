"""Admin alerts: each admin's choices (Administration > Alerts), dismissing an alert from the Members
page's "Recent alerts", and ``/api/v1/practice/alerts``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from twofold.core.practice.alerts import DELIVERIES, KIND_LABELS, KINDS, LOW_BACKUP_CODES
from twofold.web.deps import Context, PracticeAdmin, RowId, ServicesDep
from twofold.web.practice.common import api_router
from twofold.web.practice.schemas import (
    AlertListPublic,
    AlertPreferencesPublic,
    AlertPreferencesUpdate,
    AlertPublic,
)
from twofold.web.rendering import PRACTICE_NOTICES, render
from twofold.web.schemas import ErrorPublic, Responses, StatusPublic

api = api_router()
pages = APIRouter(include_in_schema=False)

NO_ALERT: Responses = {404: {"model": ErrorPublic, "description": "No such alert in your practice"}}


# -- JSON ------------------------------------------------------------------------------------


@api.get(
    "/alerts",
    response_model=AlertListPublic,
    summary="The practice's recent alerts",
    description="Alerts of the last 7 days and older ones not yet dismissed, newest first (50 at most). "
    "`kind` is one of `two_factor_disabled`, `backup_code_used`, `backup_codes_low` "
    f"({LOW_BACKUP_CODES} or fewer left), `locked_out`, `two_factor_reset`. Times are UTC.",
)
def list_alerts(admin: PracticeAdmin, services: ServicesDep):
    views = services.alerts.recent(practice_id=admin.user.practice_id)
    return AlertListPublic(items=[AlertPublic.of(view) for view in views])


@api.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=StatusPublic,
    responses=NO_ALERT,
    summary="Dismiss an alert",
    description="For every admin of the practice. Audited as `practice:alert:acknowledged`; dismissing one "
    "again changes nothing.",
)
def acknowledge_alert(alert_id: RowId, admin: PracticeAdmin, services: ServicesDep, context: Context):
    services.alerts.acknowledge(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, alert_id=alert_id, context=context
    )
    return StatusPublic(status="acknowledged")


@api.get(
    "/alerts/preferences",
    response_model=AlertPreferencesPublic,
    summary="How you get each kind of alert",
    description="Per kind: `immediate` (an email as it happens, the default), `digest` (one email a day with the "
    "previous day's alerts, in the practice's time zone) or `off` (the Members page only).",
)
def get_preferences(admin: PracticeAdmin, services: ServicesDep):
    return AlertPreferencesPublic(**services.alerts.preferences(user_id=admin.user.id))  # type: ignore[arg-type]


@api.put(
    "/alerts/preferences",
    response_model=AlertPreferencesPublic,
    summary="Choose how you get each kind of alert",
    description="Kinds left out keep their choice. An unknown kind or way is refused (422) and changes nothing. "
    "Audited as `practice:alerts:preferences_changed`.",
)
def put_preferences(body: AlertPreferencesUpdate, admin: PracticeAdmin, services: ServicesDep, context: Context):
    chosen = services.alerts.set_preferences(
        practice_id=admin.user.practice_id, user_id=admin.user.id, changes=body.changes(), context=context
    )
    return AlertPreferencesPublic(**chosen)  # type: ignore[arg-type]


# -- pages ------------------------------------------------------------------------------------


def _page(request: Request, admin, preferences: dict[str, str], *, notice=None, error=None, error_field=None):
    return render(
        request,
        "admin/alerts.html",
        {
            "session": admin,
            "preferences": preferences,
            "kinds": KINDS,
            "kind_labels": KIND_LABELS,
            "deliveries": DELIVERIES,
            "notice": notice,
            "error": error,
            "error_field": error_field,
        },
        422 if error else 200,
    )


@pages.get("/admin/alerts")
def alerts_page(request: Request, admin: PracticeAdmin, services: ServicesDep, notice: str = ""):
    preferences = services.alerts.preferences(user_id=admin.user.id)
    return _page(request, admin, preferences, notice=PRACTICE_NOTICES.get(notice))


@pages.post("/admin/alerts")
def alerts_submit(
    request: Request,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
    two_factor_disabled: Annotated[str, Form(max_length=16)] = "",
    backup_code_used: Annotated[str, Form(max_length=16)] = "",
    backup_codes_low: Annotated[str, Form(max_length=16)] = "",
    locked_out: Annotated[str, Form(max_length=16)] = "",
    two_factor_reset: Annotated[str, Form(max_length=16)] = "",
):
    chosen = {
        "two_factor_disabled": two_factor_disabled,
        "backup_code_used": backup_code_used,
        "backup_codes_low": backup_codes_low,
        "locked_out": locked_out,
        "two_factor_reset": two_factor_reset,
    }
    bad = [kind for kind in KINDS if chosen.get(kind) not in DELIVERIES]
    if bad:
        shown = {kind: value if value in DELIVERIES else "" for kind, value in chosen.items()}
        error = f"{KIND_LABELS[bad[0]]}: choose how you want to hear about it."
        return _page(request, admin, shown, error=error, error_field=bad[0])
    services.alerts.set_preferences(
        practice_id=admin.user.practice_id, user_id=admin.user.id, changes=chosen, context=context
    )
    return RedirectResponse("/admin/alerts?notice=alerts", status_code=303)


@pages.post("/admin/alerts/{alert_id}/acknowledge")
def acknowledge_submit(
    alert_id: RowId,
    admin: PracticeAdmin,
    services: ServicesDep,
    context: Context,
):
    services.alerts.acknowledge(
        practice_id=admin.user.practice_id, actor_id=admin.user.id, alert_id=alert_id, context=context
    )
    return RedirectResponse("/admin/members?notice=alert_dismissed#alerts", status_code=303)
