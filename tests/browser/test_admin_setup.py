"""Both ways an admin sets up a member's 2FA, end to end in Chromium; the link is read from the real SMTP server."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import PASSWORD, require_tool
from tests.support.practice_admin import LINK
from twofold.crypto import otp

pytestmark = pytest.mark.browser


def sign_in_with_code(page, base: str, email: str, password: str, code: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()


def test_a_new_member_sets_up_through_the_emailed_link(live_server, browser, make_user, mailbox, clock):
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    base = live_server.url
    admin_context = browser.new_context()
    page = admin_context.new_page()
    sign_in_with_code(page, base, admin.email, PASSWORD, admin.code(clock))
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Add a member").click()
    page.get_by_label("Full name").fill("Nora Nurse")
    page.get_by_label("Email").fill("nora@riverside.example")
    page.get_by_label("Role").select_option("staff")
    page.get_by_role("button", name="Add and email a set-up link").click()
    assert page.get_by_role("heading", name="Nora Nurse").is_visible()
    assert "emailed a link" in page.get_by_role("status").inner_text()

    [mail] = mailbox.wait_for(1, to="nora@riverside.example")
    link = LINK.search(mail.text).group(0)
    assert link.startswith(base + "/setup/")

    member_context = browser.new_context()
    member = member_context.new_page()
    member.goto(link)
    member.get_by_label("New password").fill(PASSWORD)
    member.get_by_label("The same password again").fill(PASSWORD)
    member.get_by_role("button", name="Continue").click()
    assert member.locator(".qr svg").is_visible()
    key = otp.from_b32(member.locator("#secret").inner_text().replace(" ", ""))
    member.get_by_label("Code from the app").fill(otp.totp(key, clock.now().timestamp()))
    member.get_by_role("button", name="Turn on two-factor authentication").click()
    assert member.get_by_role("heading", name="You are set up").is_visible()

    member.goto(link)  # the link works once
    assert "already been used" in member.locator("main").inner_text()

    clock.advance(seconds=30)
    sign_in_with_code(member, base, "nora@riverside.example", PASSWORD, otp.totp(key, clock.now().timestamp()))
    assert member.get_by_role("heading", name="Security").is_visible()
    assert "On." in member.locator(".status").inner_text()

    page.goto(f"{base}/admin/members?show=without_two_factor")
    assert "Nora Nurse" not in page.locator("main").inner_text()
    admin_context.close()
    member_context.close()


def test_admin_sets_up_a_member_on_this_screen_and_never_sees_the_key_again(
    live_server, browser, make_user, clock, tmp_path
):
    zbarimg = require_tool("zbarimg")
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    staff = make_user(role="staff", email="sam@riverside.example")
    base = live_server.url
    context = browser.new_context()
    page = context.new_page()
    sign_in_with_code(page, base, admin.email, PASSWORD, admin.code(clock))
    page.goto(f"{base}/admin/members?q=sam")
    page.get_by_role("link", name="Sam").click()
    page.get_by_role("button", name="Set up on this screen").click()

    # The member scans the QR code on the admin's screen with their phone.
    shot = tmp_path / "qr.png"
    page.locator(".qr svg").screenshot(path=str(shot))
    scanned = subprocess.run(
        [zbarimg, "--raw", "-q", str(shot)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert scanned.startswith("otpauth://totp/")
    secret = re.search(r"secret=([A-Z2-7]+)", scanned).group(1)
    key = otp.from_b32(secret)

    code = otp.totp(key, clock.now().timestamp())
    page.get_by_label("Code from the member's app").fill(f"{(int(code) + 1) % 10**6:06d}")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    assert page.get_by_role("alert").is_visible()
    assert page.locator(".qr svg").count() == 0 and page.locator("#secret").count() == 0  # not shown again

    page.get_by_label("Code from the member's app").fill(code)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    assert "Two-factor authentication is on for this member" in page.get_by_role("status").inner_text()
    assert secret not in page.content()
    assert page.get_by_role("button", name="Set up on this screen").count() == 0

    member_context = browser.new_context()
    member = member_context.new_page()
    clock.advance(seconds=30)
    sign_in_with_code(member, base, staff.email, PASSWORD, otp.totp(key, clock.now().timestamp()))
    assert member.get_by_role("heading", name="Security").is_visible()
    context.close()
    member_context.close()
