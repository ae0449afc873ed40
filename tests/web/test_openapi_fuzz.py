"""Schemathesis over the whole published OpenAPI, as every kind of caller: no input makes a server error.

Each operation gets a bounded number of generated requests (``EXAMPLES``) as each role: anonymous,
a member, an admin of the practice, and an admin of another practice. Every request carries a
fresh session of that role (made directly, no password hashing), so an operation that ends a
session (sign-out, "end all sessions") cannot leave the next ones signed out.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.base import backends
from tests.support.practice_admin import add_members
from twofold.context import RequestContext
from twofold.store.models import User
from twofold.web.rendering import SESSION_COOKIE

# Per operation and role: about 1,000 requests in all, under a minute. Set TWOFOLD_TEST_FUZZ_EXAMPLES for a deeper run.
EXAMPLES = int(os.environ.get("TWOFOLD_TEST_FUZZ_EXAMPLES", "4"))
ROLES = ("anonymous", "member", "admin", "other practice's admin")


@pytest.fixture(params=backends())
def backend(request):
    """SQLite and PostgreSQL: they fail differently (PostgreSQL text refuses NUL, SQLite integers stop at 64 bits)."""
    return request.param


@pytest.fixture
def callers(services, make_user, make_practice):
    """Each role's user (None for anonymous), with a practice full enough that ids land on real rows."""
    admin = make_user(role="admin")
    member = make_user(role="staff", with_totp=True)
    add_members(services, admin.practice_id, 20, prefix="fuzz")
    elsewhere = make_practice("Hillside Clinic")
    outsider = make_user(role="admin", practice_id=elsewhere.id, email="admin@hillside.example")
    return {"anonymous": None, "member": member, "admin": admin, "other practice's admin": outsider}


def session_cookie(services, member) -> dict[str, str]:
    if member is None:
        return {}
    with services.db.transaction() as s:
        user = s.get_one(User, member.id)
        token = services.sessions.start(s, user=user, context=RequestContext(), amr=("pwd", "otp", "mfa"))
    return {SESSION_COOKIE: token}


@pytest.mark.parametrize("role", ROLES)
def test_no_generated_request_gets_a_server_error(app, services, callers, role):
    schema = schemathesis.openapi.from_asgi(app.openapi_url, app)
    member = callers[role]
    failures: list[str] = []
    answers: dict[str, set[int]] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            response = case.call(cookies=session_cookie(services, member))
            answers.setdefault(f"{case.method} {case.operation.path}", set()).add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
            assert "Traceback" not in response.text

        call()
    assert operations >= 39  # every operation of the API (more as features land)
    assert not failures, "\n".join(sorted(set(failures))[:20])
    # The sweep ran as the role it names: signed in or not, an admin or not.
    assert answers["GET /api/v1/me"] == ({401} if member is None else {200})
    listed = 200 in answers["GET /api/v1/practice/members"]
    assert listed == (role in ("admin", "other practice's admin"))


# Inputs at the edges that random generation rarely reaches: NUL characters (PostgreSQL text cannot
# hold one), ids past what an id column holds (32 bits on PostgreSQL, 64 on SQLite), digits int() refuses, and dates at the calendar's ends (with offsets
# that push them past it).
EXTREME_QUERIES = [
    "q=a%00b",
    "person=a%00b",
    "event=practice%00",
    "since=0001-01-01",
    "until=0001-01-01",
    "since=9999-12-31",
    "until=9999-12-31",
    "until=9999-12-31T23:59:59-14:00",
    "since=0001-01-01T00:00:00+14:00",
    "since=99999-01-01",
    "until=1e400",
    "actor=99999999999999999999",
    "subject=9223372036854775808",
    "actor=2147483648",
    "person=99999999999999999999999",
    "person=²",
    "actor=١٢",
    "page=1000000",
]
# The compliance report's period at the calendar's ends, in the practice's zone.
REPORT_PERIODS = [
    "from=0001-01-01",
    "to=0001-01-01",
    "from=9998-12-31&to=9998-12-31",
    "to=9999-12-31",
    "from=99999-01-01",
    "from=a%00b",
    "to=2026-11-02%00",
]
EXTREME_IDS = [
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999",
    "0",
]


def test_extreme_ids_and_dates_get_a_clear_answer(app, callers):
    from tests.web.support import browser

    admin = callers["admin"]
    found = []
    with browser(app) as client:
        client.cookies.update(session_cookie(app.state.services, admin))
        for query in EXTREME_QUERIES:
            for path in ("/api/v1/practice/audit", "/admin/audit", "/admin/audit.csv", "/api/v1/practice/members"):
                found.append((f"GET {path}?{query}", client.get(f"{path}?{query}")))
        for query in REPORT_PERIODS:
            for path in (
                "/api/v1/practice/report",
                "/api/v1/practice/report.csv",
                "/admin/report",
                "/admin/report/print",
            ):
                found.append((f"GET {path}?{query}", client.get(f"{path}?{query}")))
        for member_id in EXTREME_IDS:
            found.append(("GET member", client.get(f"/api/v1/practice/members/{member_id}")))
            found.append(("GET member page", client.get(f"/admin/members/{member_id}")))
            for action in ("setup-link", "totp", "two-factor-reset"):
                found.append((f"POST {action}", client.post(f"/api/v1/practice/members/{member_id}/{action}", json={})))
            for action in ("role", "active", "reset", "enrol", "setup-link"):
                found.append((f"POST page {action}", client.post(f"/admin/members/{member_id}/{action}")))
            found.append(("GET session", client.get(f"/api/v1/me/sessions/{member_id}")))
            found.append(("DELETE session", client.delete(f"/api/v1/me/sessions/{member_id}")))
            found.append(("GET browser", client.get(f"/api/v1/me/remembered-browsers/{member_id}")))
            found.append(("DELETE browser", client.delete(f"/api/v1/me/remembered-browsers/{member_id}")))
        found.append(("members page with NUL", client.get("/admin/members?q=a%00b")))
        for body in ({"email": "x\x00@riverside.example", "password": "p"}, {"email": "a@b.org", "password": "x\x00"}):
            found.append(("sign-in with NUL", client.post("/api/v1/sign-in", json=body)))
        found.append(("sign-in form with NUL", client.post("/sign-in", data={"email": "a\x00@b.org", "password": "x"})))
    server_errors = [(label, response.status_code) for label, response in found if response.status_code >= 500]
    assert not server_errors
    assert all("Traceback" not in response.text for _label, response in found)
    assert any(response.status_code == 200 for _label, response in found)  # the in-range dates are answered
