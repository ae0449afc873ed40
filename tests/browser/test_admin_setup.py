"""Both ways an admin sets up a member's 2FA, end to end in Chromium; the link is read from the real SMTP server."""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, require_tool
from tests.support.practice_admin import LINK, invitations
from twofold.context import RequestContext
from twofold.crypto import otp
from twofold.store.models import User

pytestmark = pytest.mark.browser


def sign_in_with_code(page, base: str, email: str, password: str, code: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()


def expect_first_backup_codes(page) -> list[str]:
    """The backup codes page a member sees once, with download, print and copy; returns the codes."""
    expect(page.get_by_role("heading", name="Save your backup codes")).to_be_visible()
    codes = [code.strip() for code in page.locator("#recovery-codes li").all_inner_texts()]
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}", code) for code in codes), codes
    expect(page.get_by_role("button", name="Download as text")).to_be_visible()
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "\n".join(codes)
    page.get_by_label("I have saved these backup codes in a safe place").check()
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_text("Your backup codes are saved")).to_be_visible()
    return codes


def sign_in_with_backup_code(page, base: str, email: str, code: str) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Use a backup code instead").click()
    page.get_by_label("Backup code").fill(code)
    page.get_by_role("button", name="Use backup code").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()


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

    member_context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    member = member_context.new_page()
    member.goto(link)
    member.get_by_label("New password").fill(PASSWORD)
    member.get_by_label("The same password again").fill(PASSWORD)
    member.get_by_role("button", name="Continue").click()
    assert member.locator(".qr svg").is_visible()
    key = otp.from_b32(member.locator("#secret").inner_text().replace(" ", ""))
    member.get_by_label("Code from the app").fill(otp.totp(key, clock.now().timestamp()))
    member.get_by_role("button", name="Turn on two-factor authentication").click()
    # 2FA is on and the member is signed in, on the page that shows their backup codes once.
    expect(member.get_by_text("You are set up")).to_be_visible()
    codes = expect_first_backup_codes(member)
    expect(member.locator(".status").first).to_contain_text("On.")
    member.get_by_role("button", name="Sign out", exact=True).first.click()

    member.goto(link)  # the link works once
    assert "already been used" in member.locator("main").inner_text()

    sign_in_with_backup_code(member, base, "nora@riverside.example", codes[0])  # the lost-phone way works
    assert "On." in member.locator(".status").first.inner_text()

    page.goto(f"{base}/admin/members?show=without_two_factor")
    expect(page.locator("#alerts")).to_contain_text("Nora Nurse: Used a backup code")  # the admins are told
    listed = page.locator("main table")  # the members without 2FA (none left: no table)
    assert listed.count() == 0 or "Nora Nurse" not in listed.inner_text()
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
    expect(page.get_by_role("alert")).to_contain_text("not right")
    # A typo keeps the QR code, as the page says: the member may not have scanned it yet.
    expect(page.locator(".qr svg")).to_be_visible()
    page.locator(".qr svg").screenshot(path=str(shot))
    again = subprocess.run([zbarimg, "--raw", "-q", str(shot)], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == scanned  # the same key, not a new one
    expect(page.get_by_label("Code from the member's app")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Code from the member's app").fill(code)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    assert "Two-factor authentication is on for this member" in page.get_by_role("status").inner_text()
    assert secret not in page.content()
    assert page.get_by_role("button", name="Set up on this screen").count() == 0

    assert page.locator("#recovery-codes").count() == 0  # the member's codes are never on the admin's screen

    member_context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    member = member_context.new_page()
    clock.advance(seconds=30)
    sign_in_with_code(member, base, staff.email, PASSWORD, otp.totp(key, clock.now().timestamp()))
    # Handed over at the member's own first sign-in, once.
    expect(member.get_by_text("Your practice admin set up your authenticator app")).to_be_visible()
    codes = expect_first_backup_codes(member)
    member.get_by_role("button", name="Sign out", exact=True).first.click()
    sign_in_with_backup_code(member, base, staff.email, codes[3])
    expect(member.get_by_role("heading", name="Save your backup codes")).to_have_count(0)
    context.close()
    member_context.close()


def test_the_first_sign_in_after_a_set_up_link_explains_the_code_just_used(live_server, browser, make_user, clock):
    base, services = live_server.url, live_server.services
    staff = make_user(role="staff", email="sam@riverside.example")
    with services.db.transaction() as s:
        token = services.setup.issue(s, member=s.get(User, staff.id), created_by_id=None, context=RequestContext())

    phone_owner = browser.new_context()
    member = phone_owner.new_page()
    member.goto(f"{base}/setup/{token}")
    member.get_by_label("Password").fill(PASSWORD)
    member.get_by_role("button", name="Continue").click()
    key = otp.from_b32(member.locator("#secret").inner_text().replace(" ", ""))
    on_the_phone = otp.totp(key, clock.now().timestamp())
    member.get_by_label("Code from the app").fill(on_the_phone)
    member.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(member.get_by_role("heading", name="Save your backup codes")).to_be_visible()

    # At once, at the front desk's computer, with the same code still on the phone.
    desk = browser.new_context()
    try:
        front = desk.new_page()
        for _ in range(6):  # an impatient member: more tries than the five that start a wait
            sign_in_with_code(front, base, staff.email, PASSWORD, on_the_phone)
            expect(front.get_by_role("alert")).to_contain_text("That code was just used")
            expect(front.get_by_role("alert")).not_to_contain_text("Try again in")
        clock.advance(seconds=otp.PERIOD)  # the phone shows the next code
        front.get_by_label("Authentication code").fill(otp.totp(key, clock.now().timestamp()))
        front.get_by_role("button", name="Verify").click()
        expect(front.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    finally:
        desk.close()
        phone_owner.close()


def test_set_up_on_this_screen_says_one_try_left_before_the_lockout(live_server, browser, make_user, clock):
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    staff = make_user(role="staff", email="sam@riverside.example")
    base = live_server.url
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in_with_code(page, base, admin.email, PASSWORD, admin.code(clock))
        page.goto(f"{base}/admin/members/{staff.id}")
        page.get_by_role("button", name="Set up on this screen").click()
        key = otp.from_b32(page.locator("#secret").inner_text().replace(" ", ""))
        wrong = f"{(int(otp.totp(key, clock.now().timestamp())) + 1) % 10**6:06d}"
        alert = page.get_by_role("alert")
        for attempt in range(1, 5):
            page.get_by_label("Code from the member's app").fill(wrong)
            page.get_by_role("button", name="Turn on two-factor authentication").click()
            if attempt < 4:
                expect(alert).to_contain_text("not right")
                expect(alert).not_to_contain_text("try left")
        expect(alert).to_contain_text("1 try left")  # the fourth wrong code: the next one locks
        expect(page.locator(".qr svg")).to_be_visible()
        page.get_by_label("Code from the member's app").fill(wrong)
        page.get_by_role("button", name="Turn on two-factor authentication").click()
        expect(alert).to_contain_text("Try again in")
    finally:
        context.close()


def test_an_account_elsewhere_accepts_its_invitation_with_the_keyboard_on_a_phone(
    live_server, browser, make_user, make_practice, mailbox, clock
):
    """The owner of an address another practice added: sign in as usual from the invitation, accept
    with the keyboard, and the account moves. The page fits 360 px in both of its states."""
    lakeside = make_practice("Lakeside Clinic")
    make_user(role="admin", email="boss@lakeside.example", practice_id=lakeside.id)
    owner = make_user(role="provider", with_totp=True, email="owner@lakeside.example", practice_id=lakeside.id)
    admin = make_user(role="admin", email="admin@riverside.example")
    live_server.services.members.add_member(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        email=owner.email,
        name="Dr Owner",
        role="staff",
        context=RequestContext(),
        link_base=live_server.url,
    )
    [mail] = invitations(mailbox, owner.email)
    link = LINK.search(mail.text).group(0)
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_role("heading", name="Move your account to Riverside Family Practice")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.get_by_role("link", name="Sign in to accept").click()
        page.get_by_label("Email").fill(owner.email)
        page.get_by_label("Password").fill(owner.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Authentication code").fill(owner.code(clock))
        page.get_by_role("button", name="Verify").click()
        accept = page.get_by_role("button", name="Accept and move my account")
        expect(accept).to_be_focused()  # back on the invitation, ready for the keyboard
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.keyboard.press("Enter")
        expect(page.get_by_text("Your account now belongs to the practice that invited you")).to_be_visible()
    finally:
        context.close()
    with live_server.services.db.reading() as s:
        assert s.get(User, owner.id).practice_id == admin.practice_id
