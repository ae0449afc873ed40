"""Practice administration in Chromium, as an admin uses it: the export buttons download and a link on
another site exports nothing; the audit log in plain words, searchable by those words; the policy form's
errors at the field they are about."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_admin_setup import sign_in_with_code
from tests.conftest import PASSWORD
from tests.support.practice_admin import events
from twofold.context import RequestContext
from twofold.store.models import User

pytestmark = pytest.mark.browser


def test_export_buttons_download_and_foreign_links_are_refused(live_server, browser, make_user, clock, services):
    admin = make_user(role="admin", email="admin@riverside.example")
    base = live_server.url
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    sign_in_with_code(page, base, admin.email, PASSWORD, admin.code(clock))
    page.goto(f"{base}/admin/members")
    with page.expect_download() as members_download:
        page.get_by_role("link", name="Export as CSV").click()
    assert admin.email in Path(members_download.value.path()).read_text(encoding="utf-8")
    page.goto(f"{base}/admin/audit")
    with page.expect_download() as audit_download:
        page.get_by_role("link", name="Export these events as CSV").click()
    assert "practice:members:exported" in Path(audit_download.value.path()).read_text(encoding="utf-8")
    exported = len(events(services, "practice:members:exported"))
    # Another site links to the export: the browser goes there with the admin's cookie, and gets a refusal.
    foreign = context.new_page()
    foreign.set_content(f'<a id="go" href="{base}/admin/members.csv">cute cats</a>')
    with foreign.expect_navigation():
        foreign.click("#go")
    assert "Exports are only given to this site's own pages" in foreign.content()
    assert len(events(services, "practice:members:exported")) == exported
    context.close()


def admin_signed_in(page, admin, clock) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(admin.code(clock))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    clock.advance(seconds=30)


def test_the_audit_log_reads_in_plain_words_and_finds_a_reset_by_its_label(live_server, page, make_user):
    clock, services = live_server.clock, live_server.services
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    sam = make_user(role="staff", with_totp=True, email="sam@riverside.example")
    with services.db.reading() as s:
        admin_user = s.get(User, admin.id)
    services.resets.reset_member_two_factor(
        practice_id=admin.practice_id,
        admin=admin_user,
        member_id=sam.id,
        password=PASSWORD,
        code=admin.code(clock),
        reason="Lost phone",
        context=RequestContext(),
    )
    clock.advance(seconds=30)
    admin_signed_in(page, admin, clock)

    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Audit log").click()
    main = page.get_by_role("main")
    expect(main.locator("table.audit")).to_contain_text("Two-factor authentication reset by an admin")
    assert not re.search(r"\b(account|practice):[a-z_]+:", main.inner_text())  # no internal event names

    page.get_by_role("combobox", name="Event").fill("reset")
    page.get_by_role("button", name="Filter").click()
    rows = main.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Two-factor authentication reset by an admin")
    expect(rows.first).to_contain_text("Sam")


def test_a_policy_number_out_of_range_is_named_by_its_label_at_its_field(live_server, page, make_user):
    clock = live_server.clock
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    admin_signed_in(page, admin, clock)
    page.goto("/admin/policy")
    page.get_by_label("Grace period (days, 0 to 30)").fill("45")
    page.get_by_role("button", name="Save policy").click()
    field, error = page.locator("#grace_days"), page.locator("#policy-error")
    expect(error).to_have_text("Grace period: enter a whole number of days from 0 to 30.")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    assert field.get_attribute("aria-describedby").split() == ["policy-error", "grace_days-hint"]
    expect(field).to_have_value("45")  # what was typed stays, to correct
    assert "grace_days" not in error.inner_text()


def test_the_practice_time_zone_shows_local_times_and_the_whole_grace_period(live_server, browser, page, make_user):
    clock = live_server.clock  # 2 Nov 2026, 09:00 UTC: 03:00 in Chicago (CST, UTC-6)
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    staff = make_user(role="staff", email="sam@riverside.example")
    admin_signed_in(page, admin, clock)
    page.goto("/admin/policy")
    page.get_by_label("Time zone").select_option("America/Chicago")
    page.get_by_label("Require two-factor authentication").check()
    page.get_by_label("Grace period (days, 0 to 30)").fill("7")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Policy saved")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")
    expect(page.get_by_text("Required since 02 Nov 2026, 03:01 CST")).to_be_visible()

    # The API keeps UTC, in ISO 8601.
    policy = page.request.get("/api/v1/practice/policy").json()
    assert policy["time_zone"] == "America/Chicago"
    assert page.request.get("/api/v1/me/session").json()["expires_at"].endswith("+00:00")

    member_context = browser.new_context(base_url=live_server.url)
    try:
        member = member_context.new_page()
        member.goto("/sign-in")
        member.get_by_label("Email").fill(staff.email)
        member.get_by_label("Password").fill(staff.password)
        member.get_by_role("button", name="Sign in").click()
        expect(member.get_by_text("until 09 Nov 2026, 03:01 CST (7 days left)")).to_be_visible()
    finally:
        member_context.close()

    page.goto("/admin/audit")
    times = page.locator("table.audit time").all_inner_texts()
    assert times and all(t.endswith(" CST") for t in times), times
