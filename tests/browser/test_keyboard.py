"""Keyboard only: sign-in with a password and a code, setting up an authenticator app from the
Security page, saving the backup codes, and an admin resetting a member's two-factor
authentication. The tests use nothing but the keyboard (Tab, Shift+Tab, Enter, Space, typing):
no clicks, no filling of fields, and they check where focus is at each step."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from twofold.crypto import otp

pytestmark = pytest.mark.browser

FOCUSED = """() => {
  const el = document.activeElement;
  return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name') || '',
          text: (el.getAttribute('aria-label') || el.textContent || '').trim().replace(/\\s+/g, ' ')};
}"""


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def tab_to(page, *, limit: int = 60, back: bool = False, **wanted: str) -> list[dict]:
    """Press Tab (or Shift+Tab) until the focused element has ``wanted`` (id, name, tag, or text, a
    regular expression); returns every element focused on the way, the last one the wanted one."""
    path = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = focused(page)
        path.append(now)
        if all(re.fullmatch(pattern, now[key]) for key, pattern in wanted.items()):
            return path
    raise AssertionError(f"Tab never reached {wanted}; went through {path}")


FOCUS_IS = (
    """(wanted) => {
  const now = ("""
    + FOCUSED
    + """)();
  return Object.entries(wanted).every(([key, pattern]) => new RegExp("^(?:" + pattern + ")$").test(now[key]));
}"""
)


def expect_focus(page, **wanted: str) -> None:
    """Wait, as Playwright's expect does (5 s at most), until the focused element has ``wanted``: a page
    answered with an error moves focus by ``autofocus``, which Chromium applies after the page shows."""
    try:
        page.wait_for_function(FOCUS_IS, arg=wanted, timeout=5000, polling="raf")
    except PlaywrightTimeout:
        raise AssertionError(focused(page)) from None


def sign_in_with_password(page, email: str) -> None:
    page.goto("/sign-in")
    expect_focus(page, id="email")  # the page opens on its first field
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect_focus(page, id="password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def sign_in_with_app(page, member, clock) -> None:
    sign_in_with_password(page, member.email)
    expect(page.get_by_label("Authentication code")).to_be_visible()
    expect_focus(page, id="code")
    page.keyboard.type(member.code(clock))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()


def test_sign_in_with_password_and_app_code_by_keyboard(live_server, page, make_user):
    member = make_user(with_totp=True)
    sign_in_with_password(page, member.email)
    expect(page.get_by_label("Authentication code")).to_be_visible()
    expect_focus(page, id="code")
    page.keyboard.type("000000")  # a wrong code first: the page comes back on the same field, marked
    page.keyboard.press("Enter")
    expect(page.locator("#code-error")).to_be_visible()
    expect_focus(page, id="code")
    assert page.locator("#code").get_attribute("aria-invalid") == "true"
    page.keyboard.type(member.code(live_server.clock))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()


def test_set_up_an_app_and_save_the_backup_codes_by_keyboard(live_server, page, make_user, accessibility):
    member = make_user()
    sign_in_with_password(page, member.email)
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    tab_to(page, tag="button", text="Set up authenticator app")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()

    # From the top of the page, Tab reaches the QR code, then the typed key and its Copy button,
    # and only then the code field.
    page.keyboard.press("Tab")
    expect_focus(page, text="Skip to content")
    path = tab_to(page, id="code")
    order = [step["id"] or step["text"] for step in path]
    qr = next(i for i, step in enumerate(path) if step["text"].startswith("QR code for your authenticator app"))
    assert path[qr]["tag"] == "a"
    assert order.index("secret") > qr and order.index("Copy key") > order.index("secret"), order
    key = otp.from_b32(page.locator("#secret").inner_text())
    accessibility.check(page)  # with focus on the code field (the rings and the copy button shown)
    page.keyboard.type(otp.totp(key, live_server.clock.now().timestamp()))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Save your backup codes")).to_be_visible()
    with page.expect_download() as download:
        tab_to(page, tag="button", text="Download as text")
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "twofold-backup-codes.txt"

    # "Done" without the box ticked: the page says so at the box, and focuses it.
    tab_to(page, tag="button", text="Done")
    page.keyboard.press("Enter")
    expect(page.locator("#saved-error")).to_be_visible()
    expect_focus(page, id="saved")
    assert page.locator("#saved").get_attribute("aria-invalid") == "true"
    # The box is a real checkbox (Space ticks it) and Done a real button (Enter sends it).
    page.keyboard.press("Space")
    assert page.locator("#saved").is_checked()
    page.keyboard.press("Tab")
    expect_focus(page, tag="button", text="Done")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your backup codes are saved")).to_be_visible()


def test_an_admin_resets_a_members_two_factor_by_keyboard(live_server, page, make_user, accessibility):
    clock = live_server.clock
    admin = make_user(role="admin")
    member = make_user(with_totp=True)
    sign_in_with_app(page, admin, clock)
    clock.advance(seconds=30)  # a fresh code for the reset
    tab_to(page, tag="a", text="Administration")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    tab_to(page, tag="a", text=re.escape(member.email.split("@")[0].title()) + ".*")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=member.email.split("@")[0].title())).to_be_visible()

    tab_to(page, tag="summary", text="Reset two-factor authentication \\(lost phone\\)")
    page.keyboard.press("Enter")  # opens the section
    accessibility.check(page)  # the opened section, reached without a load
    page.keyboard.press("Tab")
    expect_focus(page, id="reset-reason")
    page.keyboard.type("Lost phone")
    page.keyboard.press("Tab")
    expect_focus(page, id="reset-password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect_focus(page, id="reset-code")
    page.keyboard.press("Enter")  # no code yet: refused, back on the code field
    expect(page.locator("#reset-error")).to_be_visible()
    expect_focus(page, id="reset-code")
    page.keyboard.press("Shift+Tab")
    expect_focus(page, id="reset-password")
    page.keyboard.type(PASSWORD)  # a password is never sent back to the page
    page.keyboard.press("Tab")
    page.keyboard.type(admin.code(clock))
    tab_to(page, tag="button", text="Reset two-factor authentication")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Two-factor authentication was reset.")).to_be_visible()
