"""Every admin route, API and page, checks the role and the practice (table-driven).

The table below must name every route under /api/v1/practice and /admin:
``test_the_table_covers_every_admin_route`` fails when a route is added without a case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, backends, sign_in
from twofold.audit import AlertKind
from twofold.context import RequestContext
from twofold.core.practice.alerts import KINDS
from twofold.store.models import (
    Alert,
    AlertPreference,
    App,
    AuditChainHead,
    Practice,
    SetupLink,
    TotpCredential,
    User,
    UserSession,
    Workstation,
)


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # "{member}" is replaced by a member id
    json: dict | None = None
    data: dict | None = None
    files: dict | None = None
    content: bytes | None = None
    headers: dict = field(default_factory=dict)
    ok: tuple[int, ...] = (200, 201, 303)  # answers to an admin of the practice for a route that names no id

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def names_a_member(self) -> bool:
        return "{member}" in self.path

    @property
    def names_an_app(self) -> bool:
        return "{app}" in self.path

    @property
    def names_an_alert(self) -> bool:
        return "{alert}" in self.path

    @property
    def names_a_workstation(self) -> bool:
        return "{workstation}" in self.path

    def send(self, client, member_id: int, code: str, app_id: int = 1, alert_id: int = 1, workstation_id: int = 1):
        def fill(value):
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return code if value == "{code}" else value

        return client.request(
            self.method,
            self.path.format(member=member_id, app=app_id, alert=alert_id, workstation=workstation_id),
            json=fill(self.json),
            data=fill(self.data),
            files=self.files,
            content=self.content,
            headers=self.headers,
            follow_redirects=False,
        )


POLICY_FORM = {
    "require_two_factor": "true",
    "grace_days": "3",
    "remember_browser_days": "7",
    "idle_timeout_minutes": "15",
    "shared_workstation_idle_minutes": "2",
}
CSV = b"email,name,role\nimported.by.a@riverside.example,Imported,staff\n"
RESET = {"password": PASSWORD, "code": "{code}", "reason": "isolation check"}

CASES = [
    Case("GET", "/api/v1/practice/members"),
    Case("GET", "/api/v1/practice/members", headers={"accept": "text/csv"}),
    Case(
        "POST",
        "/api/v1/practice/members",
        json={"email": "added.by.a@riverside.example", "name": "Added", "role": "staff"},
    ),
    Case("POST", "/api/v1/practice/members/import", content=CSV, headers={"content-type": "text/csv"}),
    Case("GET", "/api/v1/practice/members/{member}"),
    Case("PATCH", "/api/v1/practice/members/{member}", json={"role": "staff"}),
    Case("PATCH", "/api/v1/practice/members/{member}", json={"active": False}),
    Case("POST", "/api/v1/practice/members/{member}/setup-link"),
    Case("POST", "/api/v1/practice/members/{member}/totp"),
    Case("POST", "/api/v1/practice/members/{member}/totp/confirm", json={"enrollment_id": "0" * 32, "code": "123456"}),
    Case("POST", "/api/v1/practice/members/{member}/two-factor-reset", json=RESET),
    Case("POST", "/api/v1/practice/members/{member}/unlock"),
    Case("GET", "/api/v1/practice/policy"),
    Case("PUT", "/api/v1/practice/policy", json={"require_two_factor": True, "grace_days": 0}),
    Case("POST", "/api/v1/practice/policy/preview", json={"require_two_factor": True}),
    Case("GET", "/api/v1/practice/audit"),
    Case("GET", "/api/v1/practice/audit", headers={"accept": "text/csv"}),
    Case("GET", "/admin"),
    Case("GET", "/admin/members"),
    Case("GET", "/admin/members.csv"),
    Case("GET", "/admin/members/new"),
    Case(
        "POST",
        "/admin/members/new",
        data={"email": "page.added.by.a@riverside.example", "name": "Added", "role": "staff"},
    ),
    Case("GET", "/admin/members/import"),
    Case(
        "POST",
        "/admin/members/import",
        files={"file": ("members.csv", CSV.replace(b"imported.by", b"page.imported.by"), "text/csv")},
    ),
    Case("GET", "/admin/members/{member}"),
    Case("POST", "/admin/members/{member}/role", data={"role": "staff"}),
    Case("POST", "/admin/members/{member}/active", data={"active": "no"}),
    Case("POST", "/admin/members/{member}/setup-link"),
    Case("POST", "/admin/members/{member}/enrol"),
    Case("POST", "/admin/members/{member}/enrol/confirm", data={"enrollment_id": "0" * 32, "code": "123456"}),
    Case("POST", "/admin/members/{member}/reset", data=RESET),
    Case("POST", "/admin/members/{member}/unlock"),
    Case("GET", "/admin/policy"),
    Case("POST", "/admin/policy", data={**POLICY_FORM, "action": "preview"}),
    Case("POST", "/admin/policy", data={**POLICY_FORM, "action": "save"}),
    Case("GET", "/admin/audit"),
    Case("GET", "/admin/audit.csv"),
    Case("GET", "/api/v1/practice/report"),
    Case("GET", "/api/v1/practice/report", headers={"accept": "text/csv"}),
    Case("GET", "/api/v1/practice/report.csv"),
    Case("GET", "/admin/report"),
    Case("GET", "/admin/report/print"),
    Case("GET", "/admin/report.csv"),
    Case("GET", "/api/v1/practice/apps"),
    Case("POST", "/api/v1/practice/apps", json={"name": "Wiki", "url": "https://wiki.riverside.example"}),
    Case("GET", "/api/v1/practice/apps/{app}"),
    Case("PATCH", "/api/v1/practice/apps/{app}", json={"enabled": False}),
    Case("DELETE", "/api/v1/practice/apps/{app}"),
    Case("POST", "/api/v1/practice/apps/{app}/rotate-secret"),
    Case("GET", "/admin/apps"),
    Case("POST", "/admin/apps", data={"name": "Intranet", "url": "https://intranet.riverside.example"}),
    Case("GET", "/admin/apps/{app}"),
    Case("POST", "/admin/apps/{app}", data={"name": "Taken", "url": "https://taken.riverside.example"}),
    Case("POST", "/admin/apps/{app}/remove"),
    Case("POST", "/admin/apps/{app}/rotate-secret"),
    Case("GET", "/api/v1/practice/alerts"),
    Case("POST", "/api/v1/practice/alerts/{alert}/acknowledge"),
    Case("GET", "/api/v1/practice/alerts/preferences"),
    Case("PUT", "/api/v1/practice/alerts/preferences", json={"locked_out": "digest"}),
    # Marking names no id: it marks the admin's own browser (a second mark of it answers 409).
    Case("GET", "/api/v1/practice/workstations"),
    Case("POST", "/api/v1/practice/workstations", json={"name": "Desk A"}, ok=(201, 409)),
    Case("PATCH", "/api/v1/practice/workstations/{workstation}", json={"name": "Taken"}),
    Case("DELETE", "/api/v1/practice/workstations/{workstation}"),
    Case("GET", "/admin/workstations"),
    Case("POST", "/admin/workstations", data={"name": "Desk A"}, ok=(303, 409)),
    Case("POST", "/admin/workstations/{workstation}/rename", data={"name": "Taken"}),
    Case("POST", "/admin/workstations/{workstation}/unmark"),
    Case("GET", "/admin/alerts"),
    Case("POST", "/admin/alerts", data=dict.fromkeys(KINDS, "off")),
    Case("POST", "/admin/alerts/{alert}/acknowledge"),
]


def snapshot(services, practice_id: int) -> dict:
    """Everything of one practice an admin route could change."""
    with services.db.reading() as s:
        users = s.execute(select(User).where(User.practice_id == practice_id).order_by(User.id)).scalars().all()
        ids = [u.id for u in users]
        practice = s.get(Practice, practice_id)
        return {
            "users": [(u.id, u.email, u.role, u.active, u.password_hash, u.password_changed_at) for u in users],
            "policy": (
                practice.require_two_factor,
                practice.grace_days,
                list(practice.required_roles),
                practice.two_factor_required_since,
            ),
            "totp": s.execute(
                select(TotpCredential.id, TotpCredential.confirmed_at)
                .where(TotpCredential.user_id.in_(ids))
                .order_by(TotpCredential.id)
            ).all(),
            "sessions": s.execute(
                select(UserSession.id, UserSession.revoked_at)
                .where(UserSession.user_id.in_(ids))
                .order_by(UserSession.id)
            ).all(),
            "links": s.execute(select(SetupLink.id, SetupLink.revoked_at).where(SetupLink.user_id.in_(ids))).all(),
            "audit_head": s.get(AuditChainHead, practice_id).seq,
            "apps": s.execute(
                select(App.id, App.name, App.url, App.enabled, App.allowed_roles).where(App.practice_id == practice_id)
            ).all(),
            "alerts": s.execute(
                select(Alert.id, Alert.acknowledged_at).where(Alert.practice_id == practice_id).order_by(Alert.id)
            ).all(),
            "workstations": s.execute(
                select(Workstation.id, Workstation.name, Workstation.revoked_at)
                .where(Workstation.practice_id == practice_id)
                .order_by(Workstation.id)
            ).all(),
            "alert_choices": s.execute(
                select(AlertPreference.user_id, AlertPreference.kind, AlertPreference.delivery)
                .where(AlertPreference.user_id.in_(ids))
                .order_by(AlertPreference.user_id, AlertPreference.kind)
            ).all(),
        }


@pytest.fixture
def other_practice(make_practice, make_user, anonymous, clock, services):
    """Practice B: an admin signed in elsewhere and a staff member, both with 2FA."""
    lakeside = make_practice("Lakeside Clinic")
    admin_b = make_user(role="admin", with_totp=True, email="admin@lakeside.example", practice_id=lakeside.id)
    staff_b = make_user(role="staff", with_totp=True, email="staff@lakeside.example", practice_id=lakeside.id)
    assert sign_in(anonymous, admin_b, clock).status_code == 200
    lakeside_app = anonymous.post(
        "/api/v1/practice/apps", json={"name": "Lakeside files", "url": "https://files.lakeside.example"}
    )
    assert lakeside_app.status_code == 201
    desk = anonymous.post("/api/v1/practice/workstations", json={"name": "Lakeside desk"})
    assert desk.status_code == 201
    with services.db.transaction() as s:  # an alert of practice B, about its staff member
        services.audit.alerts.raise_alert(s, kind=AlertKind.LOCKED_OUT, practice_id=lakeside.id, subject_id=staff_b.id)
    return lakeside, admin_b, staff_b


def test_an_admin_of_one_practice_can_neither_see_nor_change_another(client, admin, other_practice, services, clock):
    lakeside, admin_b, staff_b = other_practice
    [lakeside_app] = services.apps.list_apps(practice_id=lakeside.id)
    [lakeside_alert] = services.alerts.recent(practice_id=lakeside.id)
    [lakeside_desk] = services.workstations.list_workstations(practice_id=lakeside.id, context=RequestContext())
    runs = [(case, target) for case in CASES for target in ((staff_b, admin_b) if case.names_a_member else (staff_b,))]
    for case, target in runs:
        before = snapshot(services, lakeside.id)
        clock.advance(seconds=30)  # a fresh code for the reset cases
        response = case.send(client, target.id, admin.code(clock), lakeside_app.id, lakeside_alert.id, lakeside_desk.id)
        label = f"{case.method} {case.path} ({target.email})"
        if case.names_an_app:
            assert response.status_code == 404, label
            if case.api:
                assert response.json()["error"] == "app_not_found", label
        elif case.names_an_alert:
            assert response.status_code == 404, label
            if case.api:
                assert response.json()["error"] == "alert_not_found", label
        elif case.names_a_workstation:
            assert response.status_code == 404, label
            if case.api:
                assert response.json()["error"] == "workstation_not_found", label
        elif case.names_a_member:
            assert response.status_code == 404, label
            if case.api:
                assert response.json()["error"] == "member_not_found", label
        else:
            assert response.status_code in case.ok, label
        assert "lakeside" not in response.text.lower(), f"{label} shows practice B's data"
        assert snapshot(services, lakeside.id) == before, f"{label} changed practice B"


def test_members_who_are_not_admins_get_403_on_every_admin_route(client, make_user, clock):
    staff = make_user(role="staff", with_totp=True)
    provider = make_user(role="provider")
    for member in (staff, provider):
        assert sign_in(client, member, clock).status_code == 200
        for case in CASES:
            response = case.send(client, member.id, "123456")
            label = f"{member.role}: {case.method} {case.path}"
            assert response.status_code == 403, label
            if case.api:
                assert response.json()["error"] == "forbidden", label


def test_signed_out_visitors_are_refused_on_every_admin_route(client, make_user):
    staff = make_user(role="staff")
    for case in CASES:
        response = case.send(client, staff.id, "123456")
        label = f"{case.method} {case.path}"
        if case.api:
            assert response.status_code == 401 and response.json()["error"] == "not_authenticated", label
        else:
            assert response.status_code == 303 and response.headers["location"].startswith("/sign-in"), label


def all_routes(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
        yield from all_routes(inner.routes) if inner is not None else [route]


def test_the_table_covers_every_admin_route(app):
    routes = {
        (
            method,
            route.path.replace("{member_id}", "{member}")
            .replace("{app_id}", "{app}")
            .replace("{alert_id}", "{alert}")
            .replace("{workstation_id}", "{workstation}"),
        )
        for route in all_routes(app.routes)
        if getattr(route, "path", "").startswith(("/api/v1/practice", "/admin"))
        for method in getattr(route, "methods", ())
        if method != "HEAD"
    }
    assert len(routes) > 25
    covered = {(case.method, case.path) for case in CASES}
    assert routes == covered
