"""In Chromium: turn 2FA on, download and print the backup codes, sign in with one, see the count drop."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.support.recovery import CONFIRM_CODE, SIGN_IN_CODE, latest_code
from twofold.crypto import otp

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def sign_in_page(page, url: str, email: str) -> None:
    page.goto(f"{url}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_enroll_download_codes_sign_in_with_one_and_see_the_count_drop(live_server, page, make_user, tmp_path):
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    member = make_user()
    sign_in_page(page, live_server.url, member.email)
    page.get_by_role("button", name="Set up authenticator app").click()
    key = otp.from_b32(page.locator("#secret").inner_text())
    page.get_by_label("Code from the app").fill(otp.totp(key, live_server.clock.now().timestamp()))
    page.get_by_role("button", name="Turn on two-factor authentication").click()

    expect(page.get_by_role("heading", name="Save your backup codes")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[2-9a-z]{4}-[2-9a-z]{4}", c) for c in codes)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as text").click()
    download = download_info.value
    assert download.suggested_filename == "twofold-backup-codes.txt"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_text()
    assert [line for line in text.splitlines() if re.fullmatch(r"[2-9a-z]{4}-[2-9a-z]{4}", line)] == codes

    # The printed sheet is the codes and whose they are, without the page around them.
    page.emulate_media(media="print")
    assert page.locator("#recovery-codes").is_visible()
    assert not page.locator(".topbar").is_visible() and not page.get_by_role("button", name="Print").is_visible()
    expect(page.get_by_text(f"For {member.email}")).to_be_visible()
    page.emulate_media(media="screen")
    assert page.get_by_role("button", name="Print").is_visible()

    page.get_by_label("I have saved these backup codes in a safe place").check()
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_text("Your backup codes are saved")).to_be_visible()
    expect(page.locator("#codes-left")).to_contain_text("10 of 10 backup codes left")

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in_page(page, live_server.url, member.email)
    page.get_by_text("Use a backup code instead").click()
    page.get_by_label("Backup code").fill(codes[4].upper().replace("-", " "))
    page.get_by_role("button", name="Use backup code").click()
    expect(page.locator("#codes-left")).to_contain_text("9 of 10 backup codes left")
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_email_me_a_code_in_chromium(live_server, page, make_user, mailbox):
    member = make_user(role="staff", with_totp=True)
    sign_in_page(page, live_server.url, member.email)
    page.get_by_label("Authentication code").fill(member.code(live_server.clock))
    page.get_by_role("button", name="Verify", exact=True).click()
    page.get_by_role("button", name="Add email codes").click()
    page.get_by_label("Code from the email").fill(latest_code(mailbox, member.email, CONFIRM_CODE))
    page.get_by_role("button", name="Add email codes").click()
    expect(page.get_by_text("Email codes are added")).to_be_visible()
    live_server.clock.advance(seconds=30)

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in_page(page, live_server.url, member.email)
    page.get_by_text("Email me a code instead").click()
    page.get_by_role("button", name="Email me a code").click()
    expect(page.get_by_text(f"We emailed a code to {member.email}")).to_be_visible()
    page.get_by_label("Code from the email").fill(latest_code(mailbox, member.email, SIGN_IN_CODE))
    page.get_by_role("button", name="Verify emailed code").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()


def test_a_wrong_backup_code_is_marked_at_the_backup_code_field(live_server, page, make_user):
    member = make_user(with_totp=True)
    sign_in_page(page, live_server.url, member.email)
    page.get_by_text("Use a backup code instead").click()
    page.get_by_label("Backup code").fill("aaaa-bbbb")
    page.get_by_role("button", name="Use backup code").click()
    field = page.get_by_label("Backup code")
    expect(page.locator("#code-error")).to_be_visible()
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    assert field.get_attribute("aria-describedby").split() == ["code-error", "recovery-code-hint"]
    expect(page.get_by_label("Authentication code")).not_to_have_attribute("aria-invalid", "true")
