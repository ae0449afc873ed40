"""Administration › Report in Chromium: reached from the admin tabs, a period chosen with the keyboard,
a wrong period marked at its field, the charts drawn, the printable page without navigation, and
the CSV download."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_administration import admin_signed_in

pytestmark = pytest.mark.browser


def test_an_admin_opens_the_report_and_its_printable_page(live_server, browser, make_user):
    clock = live_server.clock
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    make_user(role="staff", email="sam@riverside.example")
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    try:
        page = context.new_page()
        admin_signed_in(page, admin, clock)
        page.goto("/admin/members")
        page.get_by_role("navigation", name="Administration").get_by_role("link", name="Report").click()
        expect(page.get_by_role("heading", name="Compliance report")).to_be_visible()
        chart = page.get_by_role("img", name="Members with two-factor authentication on, by role")
        expect(chart).to_be_visible()
        assert chart.bounding_box()["width"] > 100  # drawn, not collapsed
        expect(page.locator("#enrolment tbody tr.total td").last).to_have_text("50.0%")

        page.get_by_label("From (date)").fill("2026-11-05")
        page.get_by_label("To (date, included)").fill("2026-11-01")
        page.get_by_label("To (date, included)").press("Enter")
        start = page.get_by_label("From (date)")
        expect(start).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#report-error")).to_contain_text("must not be after")
        start.fill("2026-10-01")
        page.get_by_role("button", name="Show report").click()
        expect(page.locator("#period")).to_contain_text("2026-10-01 to 2026-11-01")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download as CSV").click()
        assert "enrolment,all,1,2,50.0," in Path(download.value.path()).read_text(encoding="utf-8")

        page.get_by_role("link", name="Printable page").click()
        expect(page.get_by_role("heading", name="Two-factor authentication compliance report")).to_be_visible()
        expect(page.locator("#practice-name")).to_have_text("Riverside Family Practice")
        expect(page.get_by_role("navigation")).to_have_count(0)
        expect(page.get_by_role("img")).to_have_count(2)
        page.emulate_media(media="print")
        expect(page.get_by_role("button", name="Print")).to_be_hidden()
    finally:
        context.close()
