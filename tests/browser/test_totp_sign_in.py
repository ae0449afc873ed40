"""A user sets up an authenticator app and signs in with it, in Chromium, through the pages."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.conftest import require_tool
from twofold.crypto import otp

pytestmark = pytest.mark.browser


def sign_in_through_the_page(page, member) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()


def test_user_sets_up_an_app_from_the_page_and_signs_in_with_its_code(page, live_server, make_user, tmp_path):
    clock = live_server.clock
    member = make_user()

    sign_in_through_the_page(page, member)
    expect(page).to_have_url(re.compile(r"/account/security$"))
    expect(page.locator(".status")).to_contain_text("Off.")

    page.get_by_role("button", name="Set up authenticator app").click()
    expect(page.get_by_role("heading", name="Set up your authenticator app")).to_be_visible()
    typed_key = page.locator("#secret").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", typed_key), typed_key  # 160 bits, in groups of four
    key = otp.from_b32(typed_key)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy key").click()  # for a password manager or a desktop app
    expect(page.locator("#secret-copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == typed_key.replace(" ", "")

    # What the user's phone would scan: a screenshot of the page, decoded by ZBar.
    screenshot = tmp_path / "totp-setup.png"
    page.screenshot(path=str(screenshot), full_page=True)
    scanned = subprocess.run(
        [require_tool("zbarimg"), "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(screenshot)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert scanned.returncode == 0, "no QR code found in the screenshot of the set-up page"
    assert scanned.stdout.rstrip("\n") == otp.otpauth_uri(
        key=key, account=member.email, issuer="Riverside Family Practice"
    )

    page.get_by_label("Code from the app").fill(otp.totp(key, clock.now().timestamp()))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    # 2FA is on: the backup codes are shown once, and the user confirms they kept them.
    expect(page.get_by_label("I have saved these backup codes in a safe place")).to_be_visible()
    page.get_by_label("I have saved these backup codes in a safe place").check()
    page.get_by_role("button", name="Done").click()
    expect(page.locator(".status").first).to_contain_text("On.")

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=signed_out$"))

    sign_in_through_the_page(page, member)
    expect(page).to_have_url(re.compile(r"/sign-in/[A-Za-z0-9_-]+/code$"))
    clock.advance(seconds=otp.PERIOD)  # the confirming code is spent; the app now shows the next step's
    page.get_by_label("Authentication code").fill(otp.totp(key, clock.now().timestamp()))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/account/security$"))
    expect(page.locator(".status")).to_contain_text("On.")
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(member.email.split("@")[0].title())
