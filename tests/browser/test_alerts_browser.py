"""Admin alerts in Chromium: an admin chooses how they hear of each alert, with the keyboard, and finds an
alert about a member on the Members page, linked to the member, and dismisses it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_administration import admin_signed_in
from twofold.store.models import User

pytestmark = pytest.mark.browser


def test_an_admin_chooses_their_alerts_and_sees_one_on_the_members_page(live_server, page, make_user):
    clock, services = live_server.clock, live_server.services
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    member = make_user(role="provider", with_totp=True, email="dr.patel@riverside.example")
    page.set_default_timeout(10_000)
    page.context.set_default_navigation_timeout(10_000)
    page.goto(live_server.url + "/sign-in")
    admin_signed_in(page, admin, clock)

    page.goto(live_server.url + "/admin/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    used = page.get_by_role("group", name="Used a backup code")
    expect(used.get_by_label("Email each one as it happens")).to_be_checked()  # the default
    # By keyboard: arrow keys move a radio group's choice.
    used.get_by_label("Email each one as it happens").focus()
    page.keyboard.press("ArrowDown")
    expect(used.get_by_label("One email a day (digest)")).to_be_checked()
    page.get_by_role("group", name="Locked out after too many wrong tries").get_by_label(
        "Off (Members page only)"
    ).check()
    page.get_by_role("button", name="Save my choices").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Alert choices saved.")
    chosen = services.alerts.preferences(user_id=admin.id)
    assert (chosen["backup_code_used"], chosen["locked_out"], chosen["two_factor_disabled"]) == (
        "digest",
        "off",
        "immediate",
    )

    # The member signs in with a backup code: the alert is on the Members page.
    with services.db.transaction() as s:
        assert services.recovery_codes.verify(
            s, user=s.get(User, member.id), response=member.recovery_codes[0]
        ).accepted
    page.get_by_role("link", name="Members").click()
    alerts = page.get_by_role("region", name="Recent alerts")
    expect(alerts).to_contain_text("Dr.Patel: Used a backup code (9 left).")
    expect(alerts).to_contain_text("02 Nov 2026")
    alerts.get_by_role("button", name="Dismiss: Dr.Patel, used a backup code").click()
    expect(page.get_by_role("status")).to_have_text("Alert dismissed for every admin of the practice.")
    expect(page.get_by_role("region", name="Recent alerts")).to_contain_text("dismissed")
    page.get_by_role("region", name="Recent alerts").get_by_role("link", name="Dr.Patel").click()
    expect(page).to_have_url(f"{live_server.url}/admin/members/{member.id}")
