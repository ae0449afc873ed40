"""Every page fits a phone: at 360 and 390 CSS pixels wide nothing scrolls sideways, and the
controls a person needs (Sign out) are on screen. Tables become stacked rows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.practice_admin import invitations, setup_path
from twofold.audit import AlertKind
from twofold.context import RequestContext
from twofold.store.models import User

pytestmark = pytest.mark.browser

PAGES = [
    "/account/security",
    "/admin/members",
    "/admin/members/{member}",
    "/admin/policy",
    "/admin/audit",
    "/admin/report",
    "/admin/workstations",
    "/admin/alerts",
]
# Pages without the top bar (nothing to sign out with): they must fit too.
BARE_PAGES = ["/admin/report/print"]


def signed_in_admin(page, admin, clock) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(admin.code(clock))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    clock.advance(seconds=30)


def overflow(page) -> dict:
    """How far the page reaches past the screen's right edge, and the widest offender."""
    return page.evaluate(
        """() => {
        const width = document.documentElement.clientWidth;
        let worst = null, reach = width;
        for (const el of document.querySelectorAll('body *')) {
          const box = el.getBoundingClientRect();
          if (box.width && box.right > reach + 0.5) { reach = box.right; worst = el.tagName + '.' + el.className + '#' + el.id; }
        }
        return {scroll: document.documentElement.scrollWidth, width, reach: Math.round(reach), worst};
    }"""
    )


@pytest.mark.parametrize("width", [360, 390])
def test_every_page_fits_a_phone(live_server, browser, make_user, make_practice, mailbox, width):
    clock = live_server.clock
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    member = make_user(role="staff", with_totp=True, email="sam.longname-example@riverside.example")
    services = live_server.services
    with services.db.transaction() as s:  # the Members page's Recent alerts, with a long name in it
        services.audit.alerts.raise_alert(
            s, kind=AlertKind.BACKUP_CODES_LOW, practice_id=member.practice_id, subject_id=member.id
        )
    # An invitation (/setup/<token> for an address with an account in another practice), seen signed in.
    elsewhere = make_user(role="staff", email="pat.longname-example@lakeside.example", practice_id=make_practice().id)
    live_server.services.members.add_member(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        email=elsewhere.email,
        name="Pat Longname-Example",
        role="staff",
        context=RequestContext(),
        link_base=live_server.url,
    )
    invitation = setup_path(invitations(mailbox, elsewhere.email)[0])
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 780}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.goto("/sign-in")
        assert overflow(page)["scroll"] <= width, ("/sign-in", overflow(page))
        signed_in_admin(page, admin, clock)
        with live_server.services.db.reading() as s:  # a listed workstation (another browser), long-named
            admin_row = s.get(User, admin.id)
        live_server.services.workstations.mark(
            admin=admin_row, name="Front desk by the east entrance, second window", context=RequestContext()
        )
        for path in [*PAGES, invitation]:
            page.goto(path.format(member=member.id))
            found = overflow(page)
            assert found["scroll"] <= width and found["reach"] <= width, (path, found)
            sign_out = page.get_by_role("button", name="Sign out", exact=True).first
            expect(sign_out).to_be_in_viewport()
        for path in BARE_PAGES:
            page.goto(path)
            found = overflow(page)
            assert found["scroll"] <= width and found["reach"] <= width, (path, found)
        page.goto("/admin/members")
        role = page.locator("td[data-label=Role]").first  # a stacked row: each cell on its own line, labelled
        assert role.evaluate("td => getComputedStyle(td).display") == "block"
        assert role.evaluate("td => getComputedStyle(td, '::before').content") == '"Role: "'
    finally:
        context.close()
