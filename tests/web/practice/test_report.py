"""Administration › Report over HTTP: the JSON and CSV API, the page with its charts, the printable
page and the CSV download; bad periods answered 422 next to their field; admins only."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import update

from tests.conftest import backends, sign_in
from tests.support.practice_admin import events
from twofold.audit import EventTag
from twofold.context import RequestContext
from twofold.store.models import AuditEvent

SAME_ORIGIN = {"sec-fetch-site": "same-origin"}


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def mix(services, practice, make_user, clock):
    """Two-factor required with a day's grace; a provider with an app, two staff without, two days later."""
    services.policies.update(
        practice_id=practice.id,
        actor_id=None,
        changes={"require_two_factor": True, "grace_days": 1, "time_zone": "America/Chicago"},
        context=RequestContext(),
    )
    make_user(role="provider", with_totp=True)
    make_user(role="staff", email="sam@riverside.example")
    services.accounts.add_member(
        practice_id=practice.id,
        email="formula@riverside.example",
        name="=SUM(A1:A9)",
        role="staff",
        password="correct horse battery staple",
        context=RequestContext(),
    )
    clock.advance(days=2)


def test_the_api_answers_the_report(client, mix, admin, clock):
    body = client.get("/api/v1/practice/report").json()
    assert body["practice"] == "Riverside Family Practice" and body["time_zone"] == "America/Chicago"
    roles = {line["role"]: line for line in body["enrolment"]}
    assert roles["admin"] == {"role": "admin", "members": 1, "enrolled": 1, "percent": 100.0}
    assert roles["provider"]["enrolled"] == 1 and roles["staff"] == {
        "role": "staff",
        "members": 2,
        "enrolled": 0,
        "percent": 0.0,
    }
    assert body["overall"] == {"role": "all", "members": 4, "enrolled": 2, "percent": 50.0}
    assert {m["email"] for m in body["overdue"]} == {"sam@riverside.example", "formula@riverside.example"}
    assert {m["kind"]: m["members"] for m in body["methods"]}["totp"] == 2
    assert body["audit_chain"] == {
        "verified": True,
        "events": body["audit_chain"]["events"],
        "first_bad_seq": None,
        "first_bad_event": None,
        "problem": None,
    }
    period = client.get("/api/v1/practice/report", params={"from": "2026-07-01", "to": "2026-07-31"}).json()
    assert (period["period_from"], period["period_to"]) == ("2026-07-01", "2026-07-31")
    assert period["period_start"] == "2026-07-01T05:00:00+00:00"  # midnight in Chicago (CDT)


@pytest.mark.parametrize(
    "params",
    [{"from": "2026-02-31"}, {"to": "soon"}, {"from": "2026-11-03", "to": "2026-11-02"}, {"from": "2020-01-01"}],
)
def test_a_bad_period_is_a_422_that_changes_nothing(client, admin, services, params):
    before = len(events(services))
    response = client.get("/api/v1/practice/report", params=params)
    assert response.status_code == 422 and response.json()["error"] == "invalid_input", response.text
    csv_response = client.get("/api/v1/practice/report.csv", params=params)
    assert csv_response.status_code == 422
    assert len(events(services)) == before


def test_a_too_long_date_is_refused_by_the_api(client, admin):
    assert client.get("/api/v1/practice/report", params={"from": "2026-11-02T00:00"}).status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/practice/report.csv", "/admin/report.csv"])
def test_the_csv_download_is_audited_and_defuses_formulas(client, mix, admin, services, practice, path):
    response = client.get(path, headers=SAME_ORIGIN)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="compliance-report.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["section", "item", "count", "of", "percent", "detail"]
    assert ["enrolment", "all", "2", "4", "50.0", ""] in rows
    formula = next(row for row in rows if row[1] == "formula@riverside.example")
    assert formula[5].startswith("'=SUM(A1:A9)")
    assert next(row for row in rows if row[0] == "audit_chain")[:2] == ["audit_chain", "verified"]
    assert len(events(services, EventTag.REPORT_EXPORTED, practice.id)) == 1


def test_the_api_gives_csv_for_accept_text_csv(client, admin):
    response = client.get("/api/v1/practice/report", headers={"accept": "text/csv"})
    assert response.status_code == 200 and response.text.startswith("section,item,")


@pytest.mark.parametrize("path", ["/api/v1/practice/report.csv", "/admin/report.csv"])
def test_a_csv_download_from_another_site_is_refused(client, admin, services, path):
    before = len(events(services))
    response = client.get(path, headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403
    assert len(events(services)) == before


def test_members_who_are_not_admins_are_refused(client, make_user, clock):
    staff = make_user(role="staff", with_totp=True)
    assert sign_in(client, staff, clock).status_code == 200
    assert client.get("/api/v1/practice/report").status_code == 403
    assert client.get("/admin/report").status_code == 403


def test_the_page_shows_tables_charts_and_links(client, mix, admin):
    page = client.get("/admin/report")
    assert page.status_code == 200
    html = page.text
    assert 'aria-current="page">Report</a>' in html
    assert html.count('role="img"') == 2 and '<title id="enrolment-chart-title">' in html
    assert "Staff: 0.0% (0 of 2)" in html  # the chart's description says every value
    assert "=SUM(A1:A9)" in html and "<script>" not in html
    assert 'href="/admin/report.csv?from=' in html and 'href="/admin/report/print?from=' in html
    assert "Verified: all" in html
    assert "sam@riverside.example" in html


def test_a_member_name_cannot_break_out_of_the_chart(client, admin, services, practice, clock):
    services.accounts.add_member(
        practice_id=practice.id,
        email="svg@riverside.example",
        name="</text><script>alert(1)</script>",
        role="staff",
        password="correct horse battery staple",
        context=RequestContext(),
    )
    html = client.get("/admin/report").text
    assert "<script>alert(1)</script>" not in html


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "2026-02-31"}, "from"), ({"to": "x"}, "to"), ({"from": "2026-12-01", "to": "2026-11-01"}, "from")],
)
def test_the_page_marks_the_bad_date_field(client, admin, params, field):
    page = client.get("/admin/report", params=params)
    assert page.status_code == 422
    tag = re.search(rf'<input id="{field}"[^>]*>', page.text).group(0)
    assert 'aria-invalid="true"' in tag and 'aria-describedby="report-error"' in tag
    assert 'id="report-error"' in page.text


def test_the_printable_page_has_no_navigation_and_says_what_and_when(client, mix, admin, clock):
    page = client.get("/admin/report/print", params={"from": "2026-11-01", "to": "2026-11-04"})
    assert page.status_code == 200
    html = page.text
    assert 'class="tabs"' not in html and "Sign out" not in html
    assert "Riverside Family Practice" in html and "1 Nov 2026 to 4 Nov 2026" in html
    assert re.search(r'id="generated-at">04 Nov 2026, 03:0\d CST', html)  # made at 09:0x UTC, shown in Chicago time
    assert html.count('role="img"') == 2


def test_a_tampered_chain_is_shown_as_a_failure(client, admin, services, practice):
    with services.db.transaction() as s:
        s.execute(update(AuditEvent).where(AuditEvent.chain == practice.id, AuditEvent.seq == 2).values(ip="10.9.9.9"))
    body = client.get("/api/v1/practice/report").json()
    assert body["audit_chain"]["verified"] is False and body["audit_chain"]["first_bad_seq"] == 2
    assert "event 2" in body["audit_chain"]["problem"]
    assert "Verification failed" in client.get("/admin/report").text


def test_the_page_form_shows_the_period_it_reports(client, admin, clock):
    html = client.get("/admin/report").text
    assert re.search(r'<input id="from"[^>]* value="2026-10-04">', html)  # 30 days to 2 Nov 2026, included
    assert re.search(r'<input id="to"[^>]* value="2026-11-02">', html)
    assert client.get("/admin/report", params={"from": "2026-11-02T00:00"}).status_code == 422
