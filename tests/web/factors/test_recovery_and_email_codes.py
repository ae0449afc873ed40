"""The backup-code, email-code and lost-phone contract of /api/v1, on every storage backend.

Every email goes through the real SMTP server of the ``mailbox`` fixture; codes are
read out of the received messages.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.recovery import (
    CHROME_ON_WINDOWS,
    CONFIRM_CODE,
    REAUTH_CODE,
    SIGN_IN_CODE,
    add_email_method,
    emailed_code,
    latest_code,
    second_factor,
    start_flow,
    wait_for_subject,
)
from twofold.crypto import otp
from twofold.store.models import AuditEvent, EmailCode, Practice, RecoveryCode, TotpCredential, User

CODE_SHAPE = re.compile(r"[2-9a-hjkmnp-z]{4}-[2-9a-hjkmnp-z]{4}")
# Table-driven variations of a rule run on SQLite only; the rule itself runs on every backend.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def events(services, name):
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)).scalars().all()


def me(client) -> dict:
    return client.get("/api/v1/me").json()["two_factor"]


def signed_in_member(client, make_user, clock, **kwargs):
    member = make_user(with_totp=True, **kwargs)
    assert sign_in(client, member, clock).status_code == 200
    clock.advance(seconds=30)  # that code's step is spent
    return member


def other_code(code: str) -> str:
    """A code of the same shape that is not ``code`` (its first digit changed)."""
    return ("3" if code[0] == "2" else "2") + code[1:]


# -- backup codes ----------------------------------------------------------------------


def test_turning_two_factor_on_answers_ten_unambiguous_backup_codes(client, make_user, clock, services, mailbox):
    member = make_user()
    sign_in(client, member)
    enrollment = client.post("/api/v1/me/totp").json()
    code = otp.totp(otp.from_b32(enrollment["secret"]), clock.now().timestamp())
    response = client.post("/api/v1/me/totp/confirm", json={"enrollment_id": enrollment["enrollment_id"], "code": code})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "enabled" and set(body) == {"status", "recovery_codes"}
    codes = body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(CODE_SHAPE.fullmatch(c) for c in codes), codes
    assert me(client) == {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 10}
    with services.db.reading() as s:
        stored = s.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert len(stored) == 10
    for c in codes:  # only keyed hashes are kept: neither form of any code is in the table
        assert c not in stored and c.replace("-", "") not in stored
    [notice] = wait_for_subject(mailbox, member.email, "Two-factor authentication is on")
    assert "10 backup codes" in notice.text and "authenticator app" in notice.text


@SQLITE_ONLY
def test_backup_codes_are_shown_only_when_two_factor_turns_on(client, make_user, clock):
    member = signed_in_member(client, make_user, clock)
    flow = start_flow(client, member)
    assert second_factor(client, flow["flow_id"], "recovery_code", member.recovery_codes[0]).status_code == 200
    replace = client.post(
        "/api/v1/me/totp/replace", json={"password": PASSWORD, "code": member.recovery_codes[1]}
    ).json()
    new_key = otp.from_b32(replace["secret"])
    confirmed = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": replace["enrollment_id"], "code": otp.totp(new_key, clock.now().timestamp())},
    ).json()
    assert confirmed == {"status": "replaced"}


def test_sign_in_with_a_backup_code_counts_down_and_tells_the_owner(client, make_user, clock, mailbox, services):
    member = make_user(with_totp=True)
    flow = start_flow(client, member, headers=CHROME_ON_WINDOWS)
    assert flow["methods"] == ["totp", "recovery_code"]
    response = second_factor(
        client, flow["flow_id"], "recovery_code", member.recovery_codes[3], headers=CHROME_ON_WINDOWS
    )
    assert response.status_code == 200 and response.json() == {"status": "signed_in"}
    assert me(client)["recovery_codes_left"] == 9
    [notice] = wait_for_subject(mailbox, member.email, "A backup code was used to sign in")
    assert notice.to == member.email
    for fact in (
        "You have 9 backup codes left.",
        "Chrome on Windows",
        "testclient",
        "Monday 2 November 2026",
        "If this was not you",
    ):
        assert fact in notice.text
    assert "Chrome on Windows" in notice.html
    assert member.recovery_codes[3] not in notice.text  # the code itself is never mailed back
    [succeeded] = [e for e in events(services, "account:sign_in:succeeded") if e.subject_id == member.id]
    assert succeeded.details == {"method": "recovery_code", "codes_left": 9}


@SQLITE_ONLY
@pytest.mark.parametrize("typed", [str.upper, lambda c: c.replace("-", ""), lambda c: f" {c[:4]} {c[5:]} "])
def test_a_backup_code_is_accepted_as_people_type_it(client, make_user, typed):
    member = make_user(with_totp=True)
    flow = start_flow(client, member)
    assert second_factor(client, flow["flow_id"], "recovery_code", typed(member.recovery_codes[0])).status_code == 200


def test_a_backup_code_works_only_once(client, anonymous, make_user, services):
    member = make_user(with_totp=True)
    code = member.recovery_codes[0]
    assert second_factor(client, start_flow(client, member)["flow_id"], "recovery_code", code).status_code == 200
    again = second_factor(anonymous, start_flow(anonymous, member)["flow_id"], "recovery_code", code)
    assert again.status_code == 401 and again.json()["error"] == "invalid_code"
    assert "already used" in again.json()["message"]
    [failed] = [e for e in events(services, "account:sign_in:code_failed") if e.subject_id == member.id]
    assert failed.details["reason"] == "reused" and code not in str(failed.details)


@SQLITE_ONLY
def test_a_malformed_backup_code_changes_nothing(client, make_user):
    member = make_user(with_totp=True)
    flow = start_flow(client, member)
    response = second_factor(client, flow["flow_id"], "recovery_code", "0000-1111")  # 0 and 1 are not in the alphabet
    assert response.status_code == 422 and "backup code" in response.json()["message"]
    assert second_factor(client, flow["flow_id"], "recovery_code", member.recovery_codes[0]).status_code == 200


def test_generating_new_codes_needs_the_password_and_a_code(client, make_user, clock):
    member = signed_in_member(client, make_user, clock)
    wrong_password = client.post(
        "/api/v1/me/recovery-codes", json={"password": "not my password", "code": member.code(clock)}
    )
    assert wrong_password.status_code == 401 and wrong_password.json()["error"] == "invalid_credentials"
    right = member.code(clock)
    wrong_code = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": other_code(right)})
    assert wrong_code.status_code == 400 and wrong_code.json()["error"] == "invalid_code"
    garbage = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": "hello"})
    assert garbage.status_code == 422
    assert me(client)["recovery_codes_left"] == 10
    assert client.post("/api/v1/recovery-codes").status_code == 404


def test_regenerated_codes_invalidate_the_old_set(client, anonymous, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    response = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": member.code(clock)})
    assert response.status_code == 200
    fresh = response.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(member.recovery_codes)
    assert me(client)["recovery_codes_left"] == 10
    old = second_factor(anonymous, start_flow(anonymous, member)["flow_id"], "recovery_code", member.recovery_codes[5])
    assert old.status_code == 401
    assert (
        second_factor(anonymous, start_flow(anonymous, member)["flow_id"], "recovery_code", fresh[5]).status_code == 200
    )
    [notice] = wait_for_subject(mailbox, member.email, "New backup codes were generated")
    assert "All earlier backup codes stopped working" in notice.text


@SQLITE_ONLY
def test_a_backup_code_can_confirm_new_codes_when_the_phone_is_gone(client, make_user, clock):
    member = make_user(with_totp=True)
    second_factor(client, start_flow(client, member)["flow_id"], "recovery_code", member.recovery_codes[0])
    response = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": member.recovery_codes[1]})
    assert response.status_code == 200 and len(response.json()["recovery_codes"]) == 10


# -- email codes ------------------------------------------------------------------------


def test_email_is_a_method_only_after_the_address_confirms(client, make_user, clock, mailbox, services):
    member = signed_in_member(client, make_user, clock)
    response = client.post("/api/v1/me/email-method", headers=CHROME_ON_WINDOWS)
    assert response.status_code == 202
    assert response.json() == {"status": "sent", "sent_to": member.email, "expires_in": 600, "resend_after": 30}
    assert "email" not in me(client)["methods"]
    [message] = wait_for_subject(mailbox, member.email, CONFIRM_CODE)
    assert message.to == member.email and "Chrome on Windows" in message.text
    code = emailed_code(message)
    wrong = client.post("/api/v1/me/email-method/confirm", json={"code": other_code(code)})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_code"
    assert "email" not in me(client)["methods"]
    added = client.post("/api/v1/me/email-method/confirm", json={"code": code})
    assert added.status_code == 200 and added.json() == {"status": "added"}
    assert me(client)["methods"] == ["totp", "email", "recovery_code"]
    [notice] = wait_for_subject(mailbox, member.email, "Email codes were added to your sign-in methods")
    assert member.email in notice.text and "weakest" in notice.text
    with services.db.reading() as s:
        assert code not in s.execute(select(EmailCode.code_hash)).scalars().all()
    assert all(code not in str(e.details) for e in events(services, "account:email_code:sent"))


def test_sign_in_with_a_code_read_from_the_email(client, anonymous, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    flow = start_flow(anonymous, member, headers=CHROME_ON_WINDOWS)
    assert flow["methods"] == ["totp", "email", "recovery_code"]
    sent = anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/email-code", headers=CHROME_ON_WINDOWS)
    assert sent.status_code == 202 and sent.json()["expires_in"] == 600
    message = wait_for_subject(mailbox, member.email, SIGN_IN_CODE)[-1]
    assert "Chrome on Windows" in message.text and "10 minutes" in message.text
    done = second_factor(anonymous, flow["flow_id"], "email", emailed_code(message))
    assert done.status_code == 200 and done.json() == {"status": "signed_in"}
    assert anonymous.get("/api/v1/me").json()["email"] == member.email


@SQLITE_ONLY
@pytest.mark.parametrize(("after_seconds", "accepted"), [(0, True), (599, True), (600, False), (3600, False)])
def test_an_email_code_is_valid_ten_minutes(client, anonymous, make_user, clock, mailbox, after_seconds, accepted):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    flow = start_flow(anonymous, member)
    anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/email-code")
    code = latest_code(mailbox, member.email)
    clock.advance(seconds=after_seconds)
    flow = start_flow(anonymous, member)  # a sign-in flow lives 10 minutes too; the code must outlive no flow
    response = second_factor(anonymous, flow["flow_id"], "email", code)
    assert response.status_code == (200 if accepted else 401)


def test_only_the_newest_email_code_works(client, anonymous, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    flow = start_flow(anonymous, member)["flow_id"]
    anonymous.post(f"/api/v1/sign-in/{flow}/email-code")
    first = latest_code(mailbox, member.email)
    clock.advance(seconds=30)
    assert anonymous.post(f"/api/v1/sign-in/{flow}/email-code").status_code == 202
    second = emailed_code(wait_for_subject(mailbox, member.email, SIGN_IN_CODE, 2)[-1])
    refused = second_factor(anonymous, flow, "email", first)
    assert refused.status_code == 401 and "newer one" in refused.json()["message"]
    assert second_factor(anonymous, flow, "email", second).status_code == 200


def test_an_email_code_works_only_once(client, anonymous, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    flow = start_flow(anonymous, member)["flow_id"]
    anonymous.post(f"/api/v1/sign-in/{flow}/email-code")
    code = latest_code(mailbox, member.email)
    assert second_factor(anonymous, flow, "email", code).status_code == 200
    again = second_factor(client, start_flow(client, member)["flow_id"], "email", code)
    assert again.status_code == 401


def test_sending_is_limited_to_one_per_30_seconds_and_five_per_hour(
    client, anonymous, make_user, clock, mailbox, services
):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)  # the confirming code was send 1 of the hour
    flow = start_flow(anonymous, member)["flow_id"]
    send = lambda: anonymous.post(f"/api/v1/sign-in/{flow}/email-code")  # noqa: E731
    assert send().status_code == 202  # send 2
    too_soon = send()
    assert too_soon.status_code == 429 and too_soon.json()["retry_after"] == 30
    assert too_soon.headers["Retry-After"] == "30" and "a moment ago" in too_soon.json()["message"]
    clock.advance(seconds=10)
    assert send().json()["retry_after"] == 20
    for _ in range(3):  # sends 3, 4, 5
        clock.advance(seconds=30)
        assert send().status_code == 202
    clock.advance(seconds=30)
    hourly = send()
    assert hourly.status_code == 429 and "5 codes within an hour" in hourly.json()["message"]
    assert hourly.json()["retry_after"] > 30
    clock.advance(seconds=hourly.json()["retry_after"])
    flow = start_flow(anonymous, member)["flow_id"]
    assert send().status_code == 202
    assert len(wait_for_subject(mailbox, member.email, SIGN_IN_CODE, 5)) == 5
    assert events(services, "account:sign_in:code_send_limited")


def test_a_practice_can_disallow_email_codes(client, anonymous, make_user, clock, mailbox, services, practice):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    with services.db.transaction() as s:
        s.execute(update(Practice).where(Practice.id == practice.id).values(allowed_methods=["totp"]))
    flow = start_flow(anonymous, member)
    assert flow["methods"] == ["totp", "recovery_code"]  # the app and backup codes always work
    send = anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/email-code")
    assert send.status_code == 400 and send.json()["error"] == "method_not_available"
    assert second_factor(anonymous, flow["flow_id"], "email", "12345678").status_code == 400
    assert second_factor(anonymous, flow["flow_id"], "recovery_code", member.recovery_codes[0]).status_code == 200
    other = signed_in_member(anonymous, make_user, clock)
    refused = anonymous.post("/api/v1/me/email-method")
    assert refused.status_code == 403 and refused.json()["error"] == "email_not_allowed"
    assert "email" not in me(anonymous)["methods"] and other.email not in [
        m.to for m in mailbox.messages if m.subject == CONFIRM_CODE
    ]


@SQLITE_ONLY
def test_a_disallowed_email_only_account_never_falls_back_to_the_password(
    client, anonymous, make_user, clock, mailbox, services, practice
):
    member = make_user(role="staff")
    sign_in(client, member)
    added = add_email_method(client, mailbox, member, clock)
    assert len(added["recovery_codes"]) == 10
    with services.db.transaction() as s:
        s.execute(update(Practice).where(Practice.id == practice.id).values(allowed_methods=["totp", "recovery_code"]))
        s.execute(update(RecoveryCode).values(used_at=clock.now()))
    response = anonymous.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
    assert response.json()["status"] == "second_factor_required" and response.json()["methods"] == []
    assert anonymous.get("/api/v1/me").status_code == 401


def test_email_alone_turns_two_factor_on_for_staff_with_backup_codes(client, anonymous, make_user, clock, mailbox):
    member = make_user(role="staff")
    sign_in(client, member)
    added = add_email_method(client, mailbox, member, clock)
    assert added["status"] == "added" and len(added["recovery_codes"]) == 10
    assert me(client) == {"enabled": True, "methods": ["email", "recovery_code"], "recovery_codes_left": 10}
    [notice] = wait_for_subject(mailbox, member.email, "Two-factor authentication is on")
    assert "codes sent by email" in notice.text
    flow = start_flow(anonymous, member)
    assert flow["methods"] == ["email", "recovery_code"]
    anonymous.post(f"/api/v1/sign-in/{flow['flow_id']}/email-code")
    assert second_factor(anonymous, flow["flow_id"], "email", latest_code(mailbox, member.email)).status_code == 200


def test_an_admin_never_has_email_as_the_only_method(client, anonymous, make_user, clock, mailbox, services):
    admin = make_user(role="admin", with_totp=False)
    sign_in(client, admin)
    refused = client.post("/api/v1/me/email-method")
    assert refused.status_code == 403 and refused.json()["error"] == "authenticator_required"
    assert not mailbox.to(admin.email)
    with_app = signed_in_member(anonymous, make_user, clock, role="admin")
    add_email_method(anonymous, mailbox, with_app, clock)
    assert me(anonymous)["methods"] == ["totp", "email", "recovery_code"]
    with services.db.transaction() as s:  # should the app ever go (a reset, a role change), email does not count alone
        s.execute(TotpCredential.__table__.delete().where(TotpCredential.user_id == with_app.id))
    assert start_flow(client, with_app)["methods"] == ["recovery_code"]
    # And a staff member with email only who becomes an admin loses email until an app is added.
    staff = make_user(role="staff")
    sign_in(client, staff)
    add_email_method(client, mailbox, staff, clock)
    with services.db.transaction() as s:
        s.execute(update(User).where(User.id == staff.id).values(role="admin"))
    assert start_flow(client, staff)["methods"] == ["recovery_code"]


def test_removing_email_needs_reauthentication_and_another_method(client, anonymous, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    wrong = client.request(
        "DELETE", "/api/v1/me/email-method", json={"password": "wrong password!", "code": member.code(clock)}
    )
    assert wrong.status_code == 401
    removed = client.request(
        "DELETE", "/api/v1/me/email-method", json={"password": PASSWORD, "code": member.code(clock)}
    )
    assert removed.status_code == 200 and removed.json() == {"status": "removed"}
    assert me(client)["methods"] == ["totp", "recovery_code"]
    [notice] = wait_for_subject(mailbox, member.email, "Email codes were removed from your sign-in methods")
    assert "If this was not you" in notice.text
    again = client.request("DELETE", "/api/v1/me/email-method", json={"password": PASSWORD, "code": member.code(clock)})
    assert again.status_code == 409 and again.json()["error"] == "email_method_not_added"
    staff = make_user(role="staff")
    sign_in(anonymous, staff)
    codes = add_email_method(anonymous, mailbox, staff, clock)["recovery_codes"]
    last = anonymous.request("DELETE", "/api/v1/me/email-method", json={"password": PASSWORD, "code": codes[0]})
    assert last.status_code == 409 and last.json()["error"] == "last_method"


def test_an_emailed_code_can_confirm_a_security_change(client, make_user, clock, mailbox):
    member = make_user(role="staff")
    sign_in(client, member)
    add_email_method(client, mailbox, member, clock)
    assert client.post("/api/v1/me/email-code").status_code == 202
    code = latest_code(mailbox, member.email, REAUTH_CODE)
    response = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": code})
    assert response.status_code == 200 and len(response.json()["recovery_codes"]) == 10
    reused = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": code})
    assert reused.status_code == 400


@SQLITE_ONLY
def test_email_code_answers_are_4xx_for_bad_input(client, make_user, clock, mailbox):
    member = signed_in_member(client, make_user, clock)
    assert client.post("/api/v1/me/email-method/confirm", json={"code": "12345678"}).status_code == 400
    assert client.post("/api/v1/me/email-method/confirm", json={"code": "abc"}).status_code == 422
    assert client.post("/api/v1/me/email-method/confirm", json={"code": 12345678}).status_code == 422
    assert client.post("/api/v1/me/email-method/confirm", json={}).status_code == 422
    assert client.post("/api/v1/me/email-code").status_code == 409
    flow = start_flow(client, member)["flow_id"]
    assert client.post(f"/api/v1/sign-in/{flow}/email-code").status_code == 400
    assert client.post("/api/v1/sign-in/nonexistent/email-code").status_code == 404


# -- the combined throttle --------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("failing", "then"),
    [("totp", "recovery_code"), ("recovery_code", "totp"), ("email", "recovery_code"), ("recovery_code", "email")],
)
def test_switching_method_gives_no_fresh_attempts(
    client, anonymous, make_user, clock, mailbox, services, failing, then
):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    wrong = {"totp": other_code(member.code(clock)), "recovery_code": "zzzz-zzzz", "email": "00000000"}[failing]
    flow = start_flow(anonymous, member)["flow_id"]
    for _ in range(5):
        assert second_factor(anonymous, flow, failing, wrong).status_code == 401
    fresh = start_flow(anonymous, member)["flow_id"]  # five wrong codes ended the first flow
    if then == "email":
        assert anonymous.post(f"/api/v1/sign-in/{fresh}/email-code").status_code == 202
        right = latest_code(mailbox, member.email)
    else:
        right = member.code(clock) if then == "totp" else member.recovery_codes[0]
    blocked = second_factor(anonymous, fresh, then, right)
    assert blocked.status_code == 429 and blocked.json()["error"] == "throttled"
    assert blocked.json()["retry_after"] > 0
    assert events(services, "account:sign_in:locked_out")


@SQLITE_ONLY
def test_reauthentication_codes_count_against_the_same_throttle(client, anonymous, make_user, clock):
    member = signed_in_member(client, make_user, clock)
    for _ in range(5):
        response = client.post("/api/v1/me/recovery-codes", json={"password": PASSWORD, "code": "zzzz-zzzz"})
        assert response.status_code == 400
    blocked = second_factor(
        anonymous, start_flow(anonymous, member)["flow_id"], "recovery_code", member.recovery_codes[0]
    )
    assert blocked.status_code == 429


# -- the lost phone -------------------------------------------------------------------------


def test_lost_phone_sign_in_with_a_backup_code_then_replace_the_app(
    client, anonymous, make_user, clock, mailbox, services
):
    member = make_user(with_totp=True)
    assert (
        second_factor(
            client, start_flow(client, member)["flow_id"], "recovery_code", member.recovery_codes[0]
        ).status_code
        == 200
    )
    replace = client.post("/api/v1/me/totp/replace", json={"password": PASSWORD, "code": member.recovery_codes[1]})
    assert replace.status_code == 200 and set(replace.json()) == {"enrollment_id", "secret", "otpauth_uri", "qr_svg"}
    new_key = otp.from_b32(replace.json()["secret"])
    # Until the new app is confirmed, the old one still signs in.
    assert (
        second_factor(anonymous, start_flow(anonymous, member)["flow_id"], "totp", member.code(clock)).status_code
        == 200
    )
    clock.advance(seconds=30)
    confirmed = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": replace.json()["enrollment_id"], "code": otp.totp(new_key, clock.now().timestamp())},
    )
    assert confirmed.json() == {"status": "replaced"}
    clock.advance(seconds=30)
    old = second_factor(anonymous, start_flow(anonymous, member)["flow_id"], "totp", member.code(clock))
    assert old.status_code == 401
    new = second_factor(
        anonymous, start_flow(anonymous, member)["flow_id"], "totp", otp.totp(new_key, clock.now().timestamp())
    )
    assert new.status_code == 200
    assert me(client)["recovery_codes_left"] == 8
    [notice] = wait_for_subject(mailbox, member.email, "Your authenticator app was replaced")
    assert "no longer work" in notice.text
    assert events(services, "account:two_factor:totp_replacement_started")[0].details == {"proof": "recovery_code"}
    assert events(services, "account:two_factor:totp_replaced")


@SQLITE_ONLY
def test_replacing_the_app_needs_reauthentication(client, make_user, clock):
    member = signed_in_member(client, make_user, clock)
    plain = client.post("/api/v1/me/totp")
    assert plain.status_code == 409 and "Replace authenticator app" in plain.json()["message"]
    assert (
        client.post(
            "/api/v1/me/totp/replace", json={"password": "wrong password!", "code": member.code(clock)}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/me/totp/replace", json={"password": PASSWORD, "code": "zzzz-zzzz"}).status_code == 400
    assert client.post("/api/v1/me/totp/replace", json={"password": PASSWORD}).status_code == 422


def test_turning_off_with_a_backup_code_removes_every_method_and_tells_the_owner(
    client, make_user, clock, mailbox, services
):
    member = signed_in_member(client, make_user, clock)
    add_email_method(client, mailbox, member, clock)
    response = client.request(
        "DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": member.recovery_codes[0]}
    )
    assert response.status_code == 200
    assert me(client) == {"enabled": False, "methods": [], "recovery_codes_left": 0}
    with services.db.reading() as s:
        assert not s.execute(select(RecoveryCode)).scalars().all()
    [notice] = wait_for_subject(mailbox, member.email, "Two-factor authentication was turned off")
    assert "your backup codes no longer work" in notice.text
    assert events(services, "account:two_factor:disabled")[-1].details == {"proof": "recovery_code"}


@SQLITE_ONLY
def test_the_openapi_document_carries_every_route_of_the_contract(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/me/recovery-codes", "post"),
        ("/api/v1/me/email-method", "post"),
        ("/api/v1/me/email-method/confirm", "post"),
        ("/api/v1/me/email-method", "delete"),
        ("/api/v1/sign-in/{flow_id}/email-code", "post"),
        ("/api/v1/me/totp/replace", "post"),
        ("/api/v1/me/email-code", "post"),
    ]:
        assert method in paths[path], (path, method)
    assert "202" in paths["/api/v1/sign-in/{flow_id}/email-code"]["post"]["responses"]
    assert "503" in paths["/api/v1/sign-in/{flow_id}/email-code"]["post"]["responses"]
    assert "recovery_codes" in spec["components"]["schemas"]["TotpConfirmedPublic"]["properties"]
    assert "recovery_codes_left" in spec["components"]["schemas"]["TwoFactorPublic"]["properties"]
