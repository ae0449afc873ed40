"""A shared workstation in a real browser: the admin marks the front-desk browser, a receptionist signs
in there (no "remember" option), walks away past the shorter idle timeout, and the next person signs in
on the "who's next" page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from twofold.store.models import UserSession, Workstation

pytestmark = pytest.mark.browser


def sign_in(page, member, clock):
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    expect(page.get_by_text("Remember this browser")).to_have_count(0)  # never offered on a workstation
    page.get_by_label("Authentication code").fill(member.code(clock))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    clock.advance(seconds=30)  # the next sign-in needs a fresh code


def expect_whos_next(page):
    expect(page.get_by_text("Shared workstation: Front desk 1")).to_be_visible()
    email = page.get_by_label("Email")
    expect(email).to_be_focused()
    expect(email).to_have_value("")


def test_the_front_desk_walk(live_server, page, make_user):
    url, clock, services = live_server.url, live_server.clock, live_server.services
    services.settings.idle_check_seconds = 0.2  # the page asks the server five times a second
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    sam = make_user(role="staff", with_totp=True, email="sam@riverside.example")
    kim = make_user(role="staff", with_totp=True, email="kim@riverside.example")

    # The admin marks this browser from Administration › Workstations.
    page.goto(f"{url}/sign-in")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authentication code").fill(admin.code(clock))
    page.get_by_label("Remember this browser for 30 days").check()  # offered: not yet a workstation
    page.get_by_label("Remember this browser for 30 days").uncheck()
    page.get_by_role("button", name="Verify").click()
    clock.advance(seconds=30)
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Workstations").click()
    page.get_by_label("Name of this workstation").fill("Front desk 1")
    page.get_by_role("button", name="Mark this browser as a shared workstation").click()
    expect(page.get_by_role("status")).to_contain_text("This browser is now a shared workstation")
    expect(page.get_by_role("heading", name="Front desk 1 This browser")).to_be_visible()
    page.get_by_role("button", name="Sign out", exact=True).first.click()

    # Who's next: the workstation named, the email field focused and empty.
    expect_whos_next(page)
    sign_in(page, sam, clock)
    expect(page.get_by_text("after 2 minutes without activity").first).to_be_attached()

    # Sam walks away: the page's own timer signs out at the shorter timeout, to the who's-next page.
    warning = page.get_by_role("alertdialog")
    clock.advance(minutes=1)  # 1.5 minutes idle (the sign-in's code step moved the clock 30 seconds)
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("signed out after 2 minutes")
    clock.advance(seconds=30)
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=timed_out$"))  # no way back to Sam's page
    expect_whos_next(page)
    expect(page.get_by_role("status")).to_have_text("The last person was signed out after a period without activity.")
    expect(page.get_by_text("sam@riverside.example")).to_have_count(0)

    # The next person signs in at once.
    sign_in(page, kim, clock)
    with services.db.reading() as s:
        workstation = s.execute(select(Workstation)).scalar_one()
        sessions = s.execute(select(UserSession).order_by(UserSession.id)).scalars().all()
    assert [(row.user_id, row.workstation_id) for row in sessions] == [
        (admin.id, workstation.id),  # the admin's own session follows the mark from then on
        (sam.id, workstation.id),
        (kim.id, workstation.id),
    ]
    assert sessions[1].revoked_reason == "idle"
