"""A lockout is no weapon: wrong passwords lock out the client that sent them, the account-wide
ceiling spares a browser that signed in before, the member can unlock by email, an admin can
unlock; refused requests are summarised in the audit log, one event per lock window.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import PASSWORD, sign_in
from tests.web import test_throttle as stores
from tests.web.test_throttle import ON_EVERY_STORE, assert_throttled, events, open_flow, submit, wrong_code
from twofold.core.known_browsers import COOKIE_PREFIX
from twofold.store.models import AuditEvent
from twofold.web.server import redact_path

# The counters' stores as tests/web/test_throttle.py builds them (the database, or Redis).
store_backend = stores.store_backend
backend = stores.backend
make_failure_store = stores.make_failure_store
services = stores.services

UNLOCK_LINK = re.compile(r"https?://\S+(/sign-in/unlock/[0-9]+\.[0-9]+\.[0-9a-f]{32})")


def browser(app, address: str) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", client=(address, 40000))


def guess(client, member, typed: str = "wrong password"):
    return client.post("/api/v1/sign-in", json={"email": member.email, "password": typed})


def fail(client, member, times: int = 5) -> None:
    for _ in range(times):
        assert guess(client, member).status_code == 401


@ON_EVERY_STORE
def test_wrong_passwords_lock_out_only_the_client_that_sent_them(app, make_user, clock, services):
    member = make_user()
    with browser(app, "203.0.113.66") as attacker, browser(app, "198.51.100.20") as front_desk:
        fail(attacker, member)
        assert_throttled(guess(attacker, member, PASSWORD), 300)
        assert guess(front_desk, member, PASSWORD).json()["status"] == "signed_in"
    locked = events(services, "account:sign_in:locked_out")
    assert len(locked) == 1 and locked[0].ip == "203.0.113.66"


@ON_EVERY_STORE
def test_the_account_wide_ceiling_spares_a_browser_that_signed_in_before(app, make_user, clock, services, mailbox):
    member = make_user()
    with browser(app, "198.51.100.20") as known:
        assert guess(known, member, PASSWORD).json()["status"] == "signed_in"
        assert any(name.startswith(COOKIE_PREFIX) for name in known.cookies)
        known.post("/api/v1/sign-out")
        for address in ("203.0.113.1", "203.0.113.2"):  # a spread-out guess reaches the ceiling
            with browser(app, address) as attacker:
                fail(attacker, member)
        with browser(app, "192.0.2.50") as new_laptop:
            assert_throttled(guess(new_laptop, member, PASSWORD), 300)
        # The member's own browser keeps working while the account is locked for everyone else.
        assert guess(known, member, PASSWORD).json()["status"] == "signed_in"
        # Its own wrong passwords still count, on its own key.
        known.post("/api/v1/sign-out")
        fail(known, member)
        assert_throttled(guess(known, member, PASSWORD), 300)


def test_a_device_cookie_of_another_account_or_a_forged_one_is_not_known(app, make_user, clock):
    member, colleague = make_user(), make_user(email="colleague@riverside.example")
    with browser(app, "198.51.100.20") as shared:
        assert guess(shared, colleague, PASSWORD).json()["status"] == "signed_in"
        cookie = next(v for n, v in shared.cookies.items() if n.startswith(COOKIE_PREFIX))
    for address in ("203.0.113.1", "203.0.113.2"):
        with browser(app, address) as attacker:
            fail(attacker, member)
    name = app.state.services.sign_in.known_browsers.cookie_name(member.email)
    forged = cookie.rsplit(".", 1)[0] + "." + "0" * 32
    for value in (cookie, forged):
        with browser(app, "192.0.2.50") as other:
            other.cookies.set(name, value)
            assert_throttled(guess(other, member, PASSWORD), 300)


def test_the_lockout_emails_an_unlock_link_that_unlocks_the_browser_it_is_opened_in(
    app, make_user, clock, services, mailbox
):
    member = make_user()
    for address in ("203.0.113.1", "203.0.113.2"):
        with browser(app, address) as attacker:
            fail(attacker, member)
    [message] = mailbox.wait_for(1, to=member.email)
    assert "paused" in message.subject.lower()
    path = UNLOCK_LINK.search(message.text).group(1)
    with browser(app, "192.0.2.50") as new_laptop:
        assert_throttled(guess(new_laptop, member, PASSWORD), 300)
        page = new_laptop.get(path)
        assert page.status_code == 200 and "Unlock sign-in" in page.text
        assert guess(new_laptop, member, PASSWORD).status_code == 429  # opening the page alone changes nothing
        unlocked = new_laptop.post(path, follow_redirects=False)
        assert unlocked.status_code == 303 and unlocked.headers["location"] == "/sign-in?notice=unlocked"
        assert guess(new_laptop, member, PASSWORD).json()["status"] == "signed_in"
    [event] = events(services, "account:sign_in:unlocked")
    assert event.subject_id == member.id and event.details == {"by": "email_link"}
    # One email per lock, however long the attack goes on.
    for address in ("203.0.113.3", "203.0.113.4"):
        with browser(app, address) as attacker:
            fail(attacker, member)
    services.notifier.flush(timeout=5)
    assert len(mailbox.to(member.email)) == 1


@pytest.mark.parametrize(
    "token",
    ["1.2.3", "not-a-token", "1.99999999999.00000000000000000000000000000000", "9" * 30 + ".1.0"],
)
def test_a_bad_unlock_link_is_refused_and_changes_nothing(app, make_user, services, token):
    make_user()
    with browser(app, "192.0.2.50") as someone:
        response = someone.post(f"/sign-in/unlock/{token}")
        assert response.status_code == 404 and "not valid" in response.text
        assert not any(name.startswith(COOKIE_PREFIX) for name in someone.cookies)
    assert events(services, "account:sign_in:unlocked") == []


def test_an_unlock_link_expires_after_an_hour(app, make_user, clock, services):
    member = make_user()
    token = services.sign_in.known_browsers.unlock_token(user_id=member.id, email=member.email)
    clock.advance(hours=1)
    with browser(app, "192.0.2.50") as someone:
        assert someone.post(f"/sign-in/unlock/{token}").status_code == 404


def test_an_admin_unlocks_a_member_by_the_api_audited(client, admin, make_user, make_practice, app, services):
    member = make_user()
    for address in ("203.0.113.1", "203.0.113.2"):
        with browser(app, address) as attacker:
            fail(attacker, member)
    with browser(app, "192.0.2.50") as new_laptop:
        assert guess(new_laptop, member, PASSWORD).status_code == 429
        response = client.post(f"/api/v1/practice/members/{member.id}/unlock")
        assert response.status_code == 200 and response.json() == {"status": "unlocked"}
        assert guess(new_laptop, member, PASSWORD).json()["status"] == "signed_in"
    [event] = events(services, "practice:member:unlocked")
    assert event.actor_id == admin.id and event.subject_id == member.id
    elsewhere = make_user(practice_id=make_practice("Elsewhere").id, email="else@elsewhere.example")
    assert client.post(f"/api/v1/practice/members/{elsewhere.id}/unlock").status_code == 404
    assert client.post("/api/v1/practice/members/999999/unlock").status_code == 404


def test_an_admin_unlocks_a_member_from_the_members_page(client, admin, make_user, app, services):
    member = make_user()
    with browser(app, "203.0.113.1") as attacker:
        fail(attacker, member)
        page = client.get(f"/admin/members/{member.id}")
        assert f'action="/admin/members/{member.id}/unlock"' in page.text
        done = client.post(f"/admin/members/{member.id}/unlock", follow_redirects=False)
        assert done.status_code == 303
        assert "unlocked" in client.get(done.headers["location"]).text
        assert guess(attacker, member, PASSWORD).json()["status"] == "signed_in"


def test_a_member_cannot_unlock(app, make_user, clock):
    member = make_user(with_totp=True)
    with browser(app, "198.51.100.20") as staff:
        sign_in(staff, member, clock)
        assert staff.post(f"/api/v1/practice/members/{member.id}/unlock").status_code == 403


# -- the audit log under a flood ------------------------------------------------------------


def _audit_rows(services) -> int:
    with services.db.reading() as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


@ON_EVERY_STORE
def test_refused_sign_ins_are_summarised_once_per_lock_window(app, make_user, clock, services):
    member = make_user(with_totp=True)
    with browser(app, "203.0.113.66") as attacker:
        fail(attacker, member)
        before = _audit_rows(services)
        for _ in range(200):
            assert guess(attacker, member).status_code == 429
            clock.advance(seconds=1)
        assert _audit_rows(services) == before  # refusals are counted, not written one by one
        clock.advance(seconds=101)  # the window is over
        assert guess(attacker, member).status_code == 401  # the next failure writes the summary
    [summary] = events(services, "account:sign_in:throttled")
    assert summary.subject_id == member.id and summary.ip == "203.0.113.66"
    assert summary.details["refused"] == 200 and summary.details["step"] == "password"
    assert len(events(services, "account:sign_in:locked_out")) == 1


def test_refused_codes_are_summarised_once_per_lock_window(client, make_user, clock, services):
    member = make_user(with_totp=True)
    for _ in range(5):
        assert submit(client, open_flow(client, member), wrong_code(member, clock)).status_code == 401
    flow = open_flow(client, member)
    for _ in range(50):
        assert submit(client, flow, member.code(clock)).status_code == 429
    assert events(services, "account:sign_in:throttled") == []
    clock.advance(seconds=300)
    assert submit(client, flow, wrong_code(member, clock)).status_code == 401
    [summary] = events(services, "account:sign_in:throttled")
    assert summary.details["refused"] == 50 and summary.details["step"] == "second_factor"


def test_an_unlock_links_token_never_reaches_the_access_log():
    assert redact_path("/sign-in/unlock/12.1790000000.0123456789abcdef0123456789abcdef") == "/sign-in/unlock/***"
    assert redact_path("/sign-in/abcDEF123/code") == "/sign-in/***/code"
