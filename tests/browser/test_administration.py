"""Administration in Chromium: the export buttons download, and a link on another site exports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.test_admin_setup import sign_in_with_code
from tests.conftest import PASSWORD
from tests.support.practice_admin import events

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
