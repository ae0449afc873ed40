"""In Chromium: remembered browsers across contexts, revocation from the settings page,
and the idle warning with "Stay signed in"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from twofold.audit import EventTag
from twofold.store.models import AuditEvent, Practice, UserSession

pytestmark = pytest.mark.browser


def password_step(page, url, member, next_path: str | None = None):
    page.goto(f"{url}/sign-in" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()


def code_step(page, member, clock, remember: bool = False):
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    page.get_by_label("Authentication code").fill(member.code(clock))
    if remember:
        page.get_by_label("Remember this browser for 30 days").check()
    page.get_by_role("button", name="Verify").click()
    expect(page).not_to_have_url(re.compile(r"/code$"))
    clock.advance(seconds=30)  # the next sign-in needs a fresh code


def expect_security_page(page, url):
    expect(page).to_have_url(f"{url}/account/security")
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()


def test_a_remembered_browser_skips_the_code_and_a_fresh_one_does_not(live_server, browser, page, make_user):
    url, clock = live_server.url, live_server.clock
    member = make_user(with_totp=True)
    password_step(page, url, member)
    code_step(page, member, clock, remember=True)
    expect_security_page(page, url)
    page.get_by_role("button", name="Sign out", exact=True).first.click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    saved = page.context.storage_state()
    assert any(cookie["name"].startswith("twofold_rb_") and cookie["httpOnly"] for cookie in saved["cookies"])

    same_browser = browser.new_context(storage_state=saved)
    try:
        again = same_browser.new_page()
        password_step(again, url, member)
        expect_security_page(again, url)  # no code asked
    finally:
        same_browser.close()

    fresh = browser.new_context()
    try:
        other = fresh.new_page()
        password_step(other, url, member)
        expect(other.get_by_label("Authentication code")).to_be_visible()
        expect(other).to_have_url(re.compile(r"/sign-in/[^/]+/code$"))
    finally:
        fresh.close()


def test_revoking_from_the_settings_page_asks_the_other_browser_again(live_server, browser, page, make_user):
    url, clock = live_server.url, live_server.clock
    member = make_user(with_totp=True)
    password_step(page, url, member)
    code_step(page, member, clock, remember=True)
    expect_security_page(page, url)

    office = browser.new_context()
    try:
        desk = office.new_page()
        password_step(desk, url, member)
        code_step(desk, member, clock)
        expect_security_page(desk, url)
        browsers = desk.locator("#remembered-browsers")
        expect(browsers.get_by_role("row")).to_have_count(2)  # header + the other browser
        expect(browsers.get_by_text("This browser")).to_have_count(0)
        browsers.get_by_role("button", name="Forget Chrome on Linux").click()
        expect(desk.get_by_text("That browser is forgotten")).to_be_visible()
        sessions = desk.locator("#sessions")
        expect(sessions.get_by_text("This session")).to_be_visible()
        desk.get_by_role("button", name="Sign out all other sessions").click()
        expect(desk.get_by_text("Every other session is signed out.")).to_be_visible()
    finally:
        office.close()

    page.reload()  # the very next request of the first browser
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Faccount%2Fsecurity"))
    password_step(page, url, member)
    expect(page.get_by_label("Authentication code")).to_be_visible()


def test_the_idle_warning_appears_and_stay_signed_in_keeps_the_session(live_server, page, make_user, accessibility):
    url, clock, services = live_server.url, live_server.clock, live_server.services
    services.settings.idle_check_seconds = 0.2  # the page asks the server five times a second
    member = make_user(with_totp=True)
    password_step(page, url, member)
    code_step(page, member, clock)
    expect_security_page(page, url)
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_hidden()

    clock.advance(minutes=14)  # 14.5 minutes without activity since the sign-in
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("signed out after 15 minutes")
    accessibility.check(page)  # the warning opens without a load
    page.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_be_hidden()
    expect(page.locator("#main")).to_be_focused()  # focus is not lost on the hidden button
    with services.db.reading() as s:
        assert s.execute(select(UserSession.last_seen_at)).scalar_one() == clock.now()  # kept alive server-side

    # 29 minutes after the sign-in, but only 14.5 since "Stay signed in": still signed in.
    clock.advance(minutes=14, seconds=30)
    expect(warning).to_be_visible()
    clock.advance(minutes=1)
    # The session has ended: the page goes to sign-in and, after the code, comes back.
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=timed_out&next=%2Faccount%2Fsecurity"))
    expect(page.get_by_text("signed out after a period without activity")).to_be_visible()
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    code_step(page, member, clock)
    expect_security_page(page, url)


def test_stay_signed_in_cannot_pass_the_absolute_limit(live_server, page, make_user):
    url, clock, services = live_server.url, live_server.clock, live_server.services
    services.settings.idle_check_seconds = 0.2
    member = make_user()
    password_step(page, url, member)
    expect_security_page(page, url)
    with services.db.transaction() as s:  # as if the session had been busy for 11 h 59 min 30 s
        s.execute(update(UserSession).values(expires_at=clock.now() + timedelta(seconds=30)))
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible()
    clock.advance(seconds=20)
    page.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_contain_text("reached its time limit")
    expect(page.get_by_role("button", name="Stay signed in")).to_be_hidden()
    clock.advance(seconds=10)
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=timed_out"))


def test_the_idle_sign_out_holds_to_the_second_and_is_audited_once(live_server, page, make_user):
    url, clock, services = live_server.url, live_server.clock, live_server.services
    services.settings.idle_check_seconds = 0.2
    member = make_user()
    with services.db.transaction() as s:  # a 2-minute idle policy
        s.execute(update(Practice).values(idle_timeout_minutes=2))
    password_step(page, url, member)
    expect_security_page(page, url)
    warning = page.get_by_role("alertdialog")

    # Half a second before the idle end: the page warns and stays; its asking is not activity.
    clock.advance(minutes=1, seconds=59, microseconds=500_000)
    expect(warning).to_contain_text("About 1 second left.")
    expect_security_page(page, url)
    with services.db.reading() as s:
        session = s.execute(select(UserSession)).scalar_one()
        assert session.revoked_at is None
        assert session.last_seen_at == clock.now() - timedelta(minutes=1, seconds=59, microseconds=500_000)

    clock.advance(microseconds=500_000)  # the idle end, to the second
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=timed_out"))
    expect(page.get_by_label("Email")).to_be_visible()

    # Left alone for 5.5 minutes on the sign-in page, and then reloaded: still signed out, one event.
    clock.advance(minutes=5, seconds=30)
    page.reload()
    page.goto(f"{url}/account/security")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Faccount%2Fsecurity"))
    with services.db.reading() as s:
        session = s.execute(select(UserSession)).scalar_one()
        assert session.revoked_reason == "idle"
        expired = s.execute(select(AuditEvent).where(AuditEvent.event == EventTag.SESSION_EXPIRED)).scalars().all()
    assert len(expired) == 1
    assert expired[0].subject_id == member.id


def test_a_remembered_browser_shows_both_of_its_limits(live_server, page, make_user):
    url, clock = live_server.url, live_server.clock
    member = make_user(with_totp=True)
    remembered_on = clock.now()
    password_step(page, url, member)
    code_step(page, member, clock, remember=True)
    expect_security_page(page, url)
    row = page.locator("#remembered-browsers tbody tr")
    until = remembered_on + timedelta(days=30)
    expect(row).to_contain_text(f"trusted until {until.day} {until:%b %Y}, or 14 days without use")
