"""The administration pages: members (search, filters, pages), member detail, policy preview, audit log."""

from __future__ import annotations

import html
import re

from tests.conftest import PASSWORD, sign_in
from tests.support.practice_admin import add_members, events, user_row


def test_the_top_bar_links_administration_for_admins_only(client, anonymous, admin, make_user):
    assert 'href="/admin/members">Administration</a>' in client.get("/account/security").text
    staff = make_user(role="staff")
    sign_in(anonymous, staff)
    assert "Administration" not in anonymous.get("/account/security").text
    assert anonymous.get("/admin/members").status_code == 403


def test_members_page_searches_filters_and_pages(client, admin, make_user, services, practice):
    add_members(services, practice.id, 60, prefix="nurse")
    make_user(role="provider", with_totp=True, email="dr.who@riverside.example")
    first = client.get("/admin/members")
    assert first.status_code == 200
    assert "62 members, page 1 of 2" in first.text and 'rel="next"' in first.text
    assert first.text.count("<tr>") == 51  # header + 50 rows
    second = client.get("/admin/members?page=2")
    assert second.text.count("<tr>") == 13 and 'rel="prev"' in second.text
    without = client.get("/admin/members?show=without_two_factor")
    assert "60 members" in without.text and "dr.who@" not in without.text
    found = client.get("/admin/members?q=dr.who")
    assert "1 member," in found.text and "dr.who@riverside.example" in found.text and "Authenticator app" in found.text
    providers = client.get("/admin/members?role=provider")
    assert "1 member," in providers.text
    nobody = client.get("/admin/members?q=zzz")
    assert "No member matches" in nobody.text


def test_member_page_changes_role_and_refuses_to_demote_the_last_admin(client, admin, make_user, services):
    staff = make_user(role="staff")
    changed = client.post(f"/admin/members/{staff.id}/role", data={"role": "provider"}, follow_redirects=True)
    assert "Role changed." in changed.text and user_row(services, staff.id).role == "provider"
    refused = client.post(f"/admin/members/{admin.id}/role", data={"role": "staff"})
    assert refused.status_code == 409 and "last active admin" in refused.text
    deactivated = client.post(f"/admin/members/{staff.id}/active", data={"active": "no"}, follow_redirects=True)
    assert "Member deactivated" in deactivated.text and "Reactivate" in deactivated.text


def test_member_page_resets_two_factor_after_reauthentication(client, admin, make_user, clock, services, mailbox):
    staff = make_user(role="staff", with_totp=True)
    page = client.get(f"/admin/members/{staff.id}")
    assert "Reset two-factor authentication" in page.text
    wrong = client.post(
        f"/admin/members/{staff.id}/reset",
        data={"password": "wrong password!", "code": admin.code(clock), "reason": "lost phone"},
    )
    assert (
        wrong.status_code == 400 and "Your password is not right" in wrong.text and 'value="lost phone"' in wrong.text
    )
    no_reason = client.post(
        f"/admin/members/{staff.id}/reset", data={"password": PASSWORD, "code": admin.code(clock), "reason": ""}
    )
    assert no_reason.status_code == 400 and "Give a reason" in no_reason.text
    done = client.post(
        f"/admin/members/{staff.id}/reset",
        data={"password": PASSWORD, "code": admin.code(clock), "reason": "lost phone"},
        follow_redirects=True,
    )
    assert "was reset" in done.text and "Set up on this screen" in done.text
    mailbox.wait_for(1, to=staff.email)
    assert events(services, "practice:member:two_factor_reset")[-1].details["reason"] == "lost phone"


def test_policy_page_previews_who_would_be_affected_then_saves(client, admin, make_user, services, practice):
    make_user(role="staff", email="sam@riverside.example")
    make_user(role="provider", email="priya@riverside.example")
    form = {
        "require_two_factor": "true",
        "required_roles": ["staff"],
        "grace_days": "5",
        "remember_browser_days": "30",
        "idle_timeout_minutes": "15",
        "shared_workstation_idle_minutes": "2",
        "allowed_methods": ["recovery_code"],
    }
    preview = client.post("/admin/policy", data={**form, "action": "preview"})
    assert preview.status_code == 200
    assert re.search(r"<strong>1</strong> active member would have to set up", preview.text)
    assert "sam@riverside.example" in preview.text and "priya@riverside.example" not in preview.text
    assert services.policies.get(practice_id=practice.id).require_two_factor is False  # a preview saves nothing
    saved = client.post("/admin/policy", data={**form, "action": "save"}, follow_redirects=True)
    assert "Policy saved" in saved.text
    policy = services.policies.get(practice_id=practice.id)
    assert (policy.require_two_factor, policy.required_roles, policy.grace_days, policy.allowed_methods) == (
        True,
        ["staff"],
        5,
        ["totp", "recovery_code"],
    )
    bad = client.post("/admin/policy", data={**form, "grace_days": "45", "action": "save"})
    assert bad.status_code == 422 and "Grace period: enter a whole number of days from 0 to 30." in bad.text
    assert "grace_days must" not in bad.text  # the field as the page labels it, not its name in the API
    assert services.policies.get(practice_id=practice.id).grace_days == 5


def test_audit_page_filters_and_exports(client, admin, make_user, clock):
    staff = make_user(role="staff")
    page = client.get(f"/admin/audit?person={staff.email}")
    assert page.status_code == 200 and "<td>Member added" in page.text  # the event's label, not its name
    assert "practice:member:added" not in page.text
    assert not re.search(r"<td>Signed in\s", page.text)
    by_label = client.get("/admin/audit?event=member+ADDED")  # words of the label, any case
    assert "<td>Member added" in by_label.text and "<td>Security policy" not in by_label.text
    assert 'href="/admin/audit.csv?person=' in page.text
    bad = client.get("/admin/audit?since=02/11/2026")
    assert bad.status_code == 422 and "is not a date" in bad.text
    exported = client.get("/admin/audit.csv?event=practice:member")
    assert exported.headers["content-disposition"] == 'attachment; filename="audit-log.csv"'
    assert all(",practice:member:" in line for line in exported.text.splitlines()[1:])


def test_import_page_reports_every_row(client, admin, services, practice, mailbox):
    upload = b"email,name,role\nokay@riverside.example,Okay,staff\nnope,Bad,staff\n"
    response = client.post(
        "/admin/members/import", files={"file": ("m.csv", upload, "text/csv")}, data={"send_setup_links": "true"}
    )
    assert response.status_code == 200
    assert "<strong>1</strong> added, <strong>1</strong> not added." in response.text
    assert "Enter a valid email address" in response.text
    mailbox.wait_for(1, to="okay@riverside.example")
    not_utf8 = client.post(
        "/admin/members/import",
        files={"file": ("m.csv", "email,name,role\nä@x.org,Ä,staff\n".encode("latin-1"), "text/csv")},
    )
    assert not_utf8.status_code == 422 and "UTF-8" in not_utf8.text


# -- exports answer this site's own pages only ----------------------------------------------------------------

# What a browser sends with a request another site caused (a link, a redirect, an <img>), and without Fetch Metadata.
FOREIGN = [
    {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},
    {"sec-fetch-site": "same-site", "sec-fetch-mode": "navigate"},
    {"sec-fetch-site": "cross-site", "referer": "http://127.0.0.1/admin/members"},  # a forged referer does not help
    {"referer": "https://evil.example/page"},
    {"origin": "https://evil.example"},
    {"origin": "null"},
]


def export_links(client) -> list[str]:
    """The export links the members and audit pages show."""
    links = []
    for page in ("/admin/members?show=without_two_factor", "/admin/audit?event=practice:member"):
        [href] = re.findall(r'href="([^"]+\.csv[^"]*)"[^>]*download', client.get(page).text)
        links.append(html.unescape(href))
    return links


def test_exports_refuse_requests_another_site_caused(client, admin, services):
    exported_before = len(events(services, "practice:members:exported") + events(services, "practice:audit:exported"))
    for link in export_links(client):
        for headers in FOREIGN:
            refused = client.get(link, headers=headers)
            assert refused.status_code == 403, (link, headers)
            assert "text/csv" not in refused.headers["content-type"] and admin.email not in refused.text
    for path in ("/api/v1/practice/members", "/api/v1/practice/audit"):
        for headers in FOREIGN:
            refused = client.get(path, headers={"accept": "text/csv", **headers})
            assert refused.status_code == 403 and refused.json()["error"] == "cross_origin_refused", (path, headers)
    after = len(events(services, "practice:members:exported") + events(services, "practice:audit:exported"))
    assert after == exported_before  # nothing was exported under the admin's name


def test_the_pages_export_links_work(client, admin, services):
    for link in export_links(client):
        # As the browser sends a click on the page's own link, a typed address, and an older browser's referer.
        for headers in (
            {
                "sec-fetch-site": "same-origin",
                "sec-fetch-mode": "navigate",
                "referer": "http://127.0.0.1/admin/members",
            },
            {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"},
            {"referer": "http://127.0.0.1/admin/audit"},
        ):
            response = client.get(link, headers=headers)
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv"), headers
    assert len(events(services, "practice:members:exported")) == 3
    assert len(events(services, "practice:audit:exported")) == 3
    # A script with the admin's session (no browser headers at all) still gets its CSV from the API.
    scripted = client.get("/api/v1/practice/members", headers={"accept": "text/csv"})
    assert scripted.status_code == 200 and admin.email in scripted.text
