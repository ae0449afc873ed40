"""A session is renewed when what it is worth changes: turning 2FA on ends every other session
of the member and gives the current one a new id; a role change ends the member's sessions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import sign_in
from tests.support.practice_admin import events
from tests.web.factors.test_totp import current_code
from twofold.web.rendering import SESSION_COOKIE


def signed_in_client(app, member) -> TestClient:
    browser = TestClient(app, base_url="http://127.0.0.1")
    assert sign_in(browser, member).json()["status"] == "signed_in"
    return browser


def test_turning_two_factor_on_ends_every_other_session_and_renews_this_one(app, make_user, clock, services):
    member = make_user()
    with signed_in_client(app, member) as here, signed_in_client(app, member) as elsewhere:
        before = here.cookies[SESSION_COOKIE]
        enrollment = here.post("/api/v1/me/totp").json()
        confirmed = here.post(
            "/api/v1/me/totp/confirm",
            json={"enrollment_id": enrollment["enrollment_id"], "code": current_code(enrollment["secret"], clock)},
        )
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "enabled"
        after = here.cookies[SESSION_COOKIE]
        assert after != before
        assert here.get("/api/v1/me").status_code == 200
        assert elsewhere.get("/api/v1/me").status_code == 401  # a password-only session cannot change the password
        assert (
            elsewhere.post(
                "/api/v1/me/password",
                json={"current_password": member.password, "new_password": "a brand new passphrase"},
            ).status_code
            == 401
        )
    with TestClient(app, base_url="http://127.0.0.1", cookies={SESSION_COOKIE: before}) as old:
        assert old.get("/api/v1/me").status_code == 401
    active = services.sessions.resolve(after)
    assert active is not None and active.amr == ("pwd",)


def test_turning_two_factor_on_by_email_codes_ends_every_other_session_too(app, make_user, clock, mailbox):
    from tests.support.recovery import CONFIRM_CODE, emailed_code, wait_for_subject

    member = make_user()
    with signed_in_client(app, member) as here, signed_in_client(app, member) as elsewhere:
        before = here.cookies[SESSION_COOKIE]
        assert here.post("/api/v1/me/email-method").status_code == 202
        code = emailed_code(wait_for_subject(mailbox, member.email, CONFIRM_CODE)[-1])
        assert here.post("/api/v1/me/email-method/confirm", json={"code": code}).status_code == 200
        assert here.cookies[SESSION_COOKIE] != before and here.get("/api/v1/me").status_code == 200
        assert elsewhere.get("/api/v1/me").status_code == 401


def test_a_role_change_ends_the_members_sessions(client, admin, app, make_user, services):
    member = make_user(role="staff")
    with signed_in_client(app, member) as staff:
        changed = client.patch(f"/api/v1/practice/members/{member.id}", json={"role": "provider"})
        assert changed.status_code == 200 and changed.json()["role"] == "provider"
        assert staff.get("/api/v1/me").status_code == 401
    [event] = events(services, "practice:member:role_changed")
    assert event.details == {"from": "staff", "to": "provider", "sessions_ended": 1}
    assert client.get("/api/v1/me").status_code == 200  # the admin's own session is untouched
