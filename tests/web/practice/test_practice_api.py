"""The practice administration contract of /api/v1/practice, on every storage backend."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.practice_admin import add_members, events, setup_path, user_row
from tests.support.recovery import wait_for_subject
from twofold.crypto import otp

# The contract's fields, and one extension: how many browsers skip the code for the member.
MEMBER_KEYS = {"id", "email", "name", "role", "active", "two_factor", "last_sign_in_at", "remembered_browsers"}


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# -- members: list, search, filter, pages --------------------------------------------------


def test_members_list_has_the_contract_shape(client, admin, make_user, clock):
    signed_in_at = clock.now()
    staff = make_user(role="staff", with_totp=True)
    body = client.get("/api/v1/practice/members").json()
    assert set(body) == {"items", "total"} and body["total"] == 2
    item = next(i for i in body["items"] if i["id"] == staff.id)
    assert set(item) == MEMBER_KEYS
    assert item["two_factor"] == {"enabled": True, "methods": ["totp", "recovery_code"], "recovery_codes_left": 10}
    assert item["email"] == staff.email and item["role"] == "staff" and item["active"] is True
    assert item["last_sign_in_at"] is None
    me = next(i for i in body["items"] if i["id"] == admin.id)
    assert me["last_sign_in_at"] == signed_in_at.isoformat()


def test_without_two_factor_filter_and_search(client, admin, make_user):
    on = make_user(role="provider", with_totp=True, email="dr.on@riverside.example")
    off = make_user(role="staff", email="front.desk@riverside.example")
    without = client.get("/api/v1/practice/members", params={"without_two_factor": "true"}).json()
    assert [i["id"] for i in without["items"]] == [off.id] and without["total"] == 1
    assert {
        i["id"] for i in client.get("/api/v1/practice/members", params={"without_two_factor": "false"}).json()["items"]
    } == {admin.id, on.id, off.id}
    by_email = client.get("/api/v1/practice/members", params={"q": "DR.ON"}).json()
    assert [i["id"] for i in by_email["items"]] == [on.id]
    by_name = client.get("/api/v1/practice/members", params={"q": "front"}).json()
    assert [i["id"] for i in by_name["items"]] == [off.id]
    assert client.get("/api/v1/practice/members", params={"q": "%"}).json()["total"] == 0  # wildcards are literal


def test_members_are_paged_fifty_at_a_time(client, admin, services, practice):
    add_members(services, practice.id, 120)
    first = client.get("/api/v1/practice/members", params={"without_two_factor": "true"}).json()
    third = client.get("/api/v1/practice/members", params={"without_two_factor": "true", "page": 3}).json()
    assert first["total"] == third["total"] == 120
    assert len(first["items"]) == 50 and len(third["items"]) == 20
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in third["items"]}
    assert client.get("/api/v1/practice/members", params={"page": 0}).status_code == 422


# -- adding members -------------------------------------------------------------------------


def test_added_member_has_no_password_and_is_emailed_a_set_up_link(client, admin, mailbox, services):
    response = client.post(
        "/api/v1/practice/members", json={"email": "New.Nurse@Riverside.example", "name": "New Nurse", "role": "staff"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == MEMBER_KEYS and body["email"] == "new.nurse@riverside.example"
    assert body["two_factor"]["enabled"] is False
    [mail] = mailbox.wait_for(1, to="new.nurse@riverside.example")
    assert "Riverside Family Practice" in mail.subject and "72 hours" in mail.text
    assert setup_path(mail).startswith("/setup/")
    assert user_row(services, body["id"]).password_changed_at is None
    # Nobody can sign in with the placeholder password.
    assert client.post("/api/v1/sign-in", json={"email": body["email"], "password": ""}).status_code == 422
    added = events(services, "practice:member:added")[-1]
    assert added.actor_id == admin.id and added.subject_id == body["id"]


BAD_NEW_MEMBERS = [
    ({"email": "not-an-address", "name": "X", "role": "staff"}, 422, "invalid_email"),
    ({"email": "x@riverside.example", "name": "X", "role": "boss"}, 422, "unknown_role"),
    ({"email": "x@riverside.example", "name": "   ", "role": "staff"}, 422, "invalid_name"),
    ({"email": "admin@riverside.example", "name": "X", "role": "staff"}, 409, "duplicate_email"),
    ({"email": "x@riverside.example", "name": "X"}, 422, "validation_error"),
    # Exactly one plain address: no display name, no list, no header or line break smuggled in.
    *(
        ({"email": email, "name": "X", "role": "staff"}, 422, "invalid_email")
        for email in (
            "Eve <eve@evil.example>",
            "x@riverside.example, eve@evil.example",
            "x@riverside.example;eve@evil.example",
            "x@riverside.example\r\nBcc: eve@evil.example",
            "x@riverside.example\nBcc: eve@evil.example",
            '"x y"@riverside.example',
            "x(comment)@riverside.example",
            "x@riverside.example>,<eve@evil.example",
            "x@eve@evil.example",
            "x@-riverside.example",
            "x\t@riverside.example",
        )
    ),
    # A name is one line of text: no control characters, line breaks or direction overrides.
    *(
        ({"email": "x@riverside.example", "name": name, "role": "staff"}, 422, "invalid_name")
        for name in ("Eve\r\nBcc: eve@evil.example", "Eve\nSmith", "Tab\tName", "Nul\x00", "Ann \u202eevil", "a\u2028b")
    ),
    ({"email": "x@riverside.example", "name": "X", "role": "staff", "password": "p"}, 422, "validation_error"),
]


def test_bad_new_members_are_refused_and_change_nothing(client, admin, services, practice, mailbox):
    from tests.support.practice_admin import count_users

    before = count_users(services, practice.id)
    for body, status, error in BAD_NEW_MEMBERS:
        response = client.post("/api/v1/practice/members", json=body)
        assert (response.status_code, response.json()["error"]) == (status, error), body
        assert response.json()["message"]
    assert count_users(services, practice.id) == before
    services.notifier.flush(timeout=5)
    assert not mailbox.to("eve@evil.example") and not mailbox.to("x@riverside.example")


def test_a_plain_address_with_unusual_but_valid_characters_is_accepted(client, admin, mailbox):
    response = client.post(
        "/api/v1/practice/members",
        json={"email": "Dr.O'Neil+rx@Riverside.Example", "name": "Dr. Ó Néill", "role": "staff"},
    )
    assert response.status_code == 201 and response.json()["email"] == "dr.o'neil+rx@riverside.example"
    [message] = mailbox.wait_for(to="dr.o'neil+rx@riverside.example")
    assert message.rcpt_tos == ["dr.o'neil+rx@riverside.example"]


def test_csv_import_reports_each_row(client, admin, mailbox):
    csv_text = (
        "email,name,role\n"
        "ok.one@riverside.example,Ok One,staff\n"
        "not an address,Bad Address,staff\n"
        "ok.two@riverside.example,Ok Two,boss\n"
        "admin@riverside.example,Already Here,staff\n"
        "ok.three@riverside.example,Ok Three,provider\n"
        "OK.ONE@riverside.example,Again,staff\n"
    )
    response = client.post(
        "/api/v1/practice/members/import", content=csv_text.encode(), headers={"content-type": "text/csv"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["imported"], body["failed"]) == (2, 4)
    assert [(r["row"], r["status"], r["error"]) for r in body["rows"]] == [
        (2, "imported", None),
        (3, "failed", "invalid_email"),
        (4, "failed", "unknown_role"),
        (5, "failed", "duplicate_email"),
        (6, "imported", None),
        (7, "failed", "duplicate_email"),
    ]
    mailbox.wait_for(1, to="ok.three@riverside.example")
    emails = {i["email"] for i in client.get("/api/v1/practice/members").json()["items"]}
    assert emails == {"admin@riverside.example", "ok.one@riverside.example", "ok.three@riverside.example"}


def test_csv_import_refuses_address_lists_and_multi_line_names(client, admin, services, mailbox):
    csv_text = (
        "email,name,role\n"
        '"new@riverside.example, eve@evil.example",Eve,staff\n'
        '"Eve <eve@evil.example>",Eve,staff\n'
        'new@riverside.example,"Eve\r\nBcc: eve@evil.example",staff\n'
    )
    response = client.post(
        "/api/v1/practice/members/import", content=csv_text.encode(), headers={"content-type": "text/csv"}
    )
    assert [(r["row"], r["error"]) for r in response.json()["rows"]] == [
        (2, "invalid_email"),
        (3, "invalid_email"),
        (5, "invalid_name"),  # the line the record ends on
    ]
    services.notifier.flush(timeout=5)
    assert not mailbox.to("eve@evil.example") and not mailbox.to("new@riverside.example")


def test_csv_import_without_the_columns_is_refused_whole(client, admin):
    response = client.post(
        "/api/v1/practice/members/import", content=b"mail,fullname\na@b.org,A\n", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422 and "email, name and role" in response.json()["message"]
    assert client.get("/api/v1/practice/members").json()["total"] == 1


# -- roles, deactivation, the last admin -------------------------------------------------------------


def test_role_change_and_deactivation_end_the_members_sessions(client, anonymous, admin, make_user, services):
    staff = make_user(role="staff")
    assert sign_in(anonymous, staff).status_code == 200
    changed = client.patch(f"/api/v1/practice/members/{staff.id}", json={"role": "provider"})
    assert changed.status_code == 200 and changed.json()["role"] == "provider"
    assert anonymous.get("/api/v1/me").status_code == 401  # a new role means signing in again
    assert events(services, "practice:member:role_changed")[-1].details["sessions_ended"] == 1
    assert sign_in(anonymous, staff).status_code == 200
    off = client.patch(f"/api/v1/practice/members/{staff.id}", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert anonymous.get("/api/v1/me").status_code == 401
    assert sign_in(anonymous, staff).status_code == 401
    deactivated = events(services, "practice:member:deactivated")[-1]
    assert deactivated.details["sessions_ended"] == 1 and deactivated.actor_id == admin.id
    assert client.patch(f"/api/v1/practice/members/{staff.id}", json={"active": True}).json()["active"] is True
    assert sign_in(anonymous, staff).status_code == 200


def test_the_last_admin_can_be_neither_demoted_nor_deactivated(client, admin, services):
    for change in ({"role": "staff"}, {"active": False}, {"role": "provider", "active": False}):
        response = client.patch(f"/api/v1/practice/members/{admin.id}", json=change)
        assert response.status_code == 409 and response.json()["error"] == "last_admin", change
    row = user_row(services, admin.id)
    assert row.role == "admin" and row.active


def test_an_admin_can_be_demoted_while_another_admin_remains(client, admin, make_user, services):
    other = make_user(role="admin")
    assert client.patch(f"/api/v1/practice/members/{other.id}", json={"role": "staff"}).status_code == 200
    assert client.patch(f"/api/v1/practice/members/{admin.id}", json={"role": "staff"}).json()["error"] == "last_admin"
    # A deactivated admin does not count as the other admin.
    third = make_user(role="admin")
    client.patch(f"/api/v1/practice/members/{third.id}", json={"active": False})
    assert client.patch(f"/api/v1/practice/members/{admin.id}", json={"active": False}).json()["error"] == "last_admin"
    assert events(services, "practice:member:role_changed")[-1].details == {
        "from": "admin",
        "to": "staff",
        "sessions_ended": 0,
    }


def test_bad_member_changes_are_refused(client, admin, make_user, services):
    staff = make_user(role="staff")
    for body in ({}, {"role": "boss"}, {"active": "no"}, {"role": None, "active": None}, {"name": "x"}):
        response = client.patch(f"/api/v1/practice/members/{staff.id}", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] in ("validation_error", "invalid_input", "unknown_role"), body
    row = user_row(services, staff.id)
    assert (row.role, row.active, row.name) == ("staff", True, "Member1")


# -- set-up links --------------------------------------------------------------------------------


def test_setup_link_is_emailed_and_a_newer_one_revokes_it(client, anonymous, admin, make_user, mailbox):
    staff = make_user(role="staff")
    first = client.post(f"/api/v1/practice/members/{staff.id}/setup-link")
    assert first.status_code == 200 and first.json()["status"] == "sent" and first.json()["expires_at"]
    old = setup_path(mailbox.wait_for(1, to=staff.email)[0])
    assert anonymous.get(old).status_code == 200
    client.post(f"/api/v1/practice/members/{staff.id}/setup-link")
    new = setup_path(mailbox.wait_for(2, to=staff.email)[1])
    refused = anonymous.get(old)
    assert refused.status_code == 410 and "newer set-up link" in refused.text
    assert anonymous.get(new).status_code == 200


def test_no_setup_link_for_a_member_who_is_already_set_up(client, admin, make_user):
    done = make_user(role="staff", with_totp=True)
    response = client.post(f"/api/v1/practice/members/{done.id}/setup-link")
    assert response.status_code == 409 and response.json()["error"] == "member_already_set_up"


# -- set up on the admin's screen -------------------------------------------------------------------


def test_admin_sets_up_a_members_app_on_their_screen(client, anonymous, admin, make_user, clock, services):
    staff = make_user(role="staff")
    started = client.post(f"/api/v1/practice/members/{staff.id}/totp")
    assert started.status_code == 200
    enrollment = started.json()
    key = otp.from_b32(enrollment["secret"])
    code = otp.totp(key, clock.now().timestamp())
    assert (
        client.post(
            f"/api/v1/practice/members/{staff.id}/totp/confirm",
            json={"enrollment_id": enrollment["enrollment_id"], "code": wrong(code)},
        ).status_code
        == 400
    )
    done = client.post(
        f"/api/v1/practice/members/{staff.id}/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": code},
    )
    assert done.status_code == 200 and done.json() == {"status": "enabled"}
    assert client.get(f"/api/v1/practice/members/{staff.id}").json()["two_factor"]["enabled"] is True
    again = client.post(f"/api/v1/practice/members/{staff.id}/totp")
    assert again.status_code == 409 and again.json()["error"] == "two_factor_already_enabled"
    clock.advance(seconds=30)
    flow = anonymous.post("/api/v1/sign-in", json={"email": staff.email, "password": PASSWORD}).json()
    assert flow["status"] == "second_factor_required"
    signed = anonymous.post(
        f"/api/v1/sign-in/{flow['flow_id']}/second-factor",
        json={"method": "totp", "code": otp.totp(key, clock.now().timestamp())},
    )
    assert signed.status_code == 200
    set_up = events(services, "practice:member:two_factor_set_up")[-1]
    assert set_up.actor_id == admin.id and set_up.subject_id == staff.id


# -- admin reset ---------------------------------------------------------------------------------------


def test_admin_reset_needs_password_code_and_reason(client, admin, make_user, clock, services):
    staff = make_user(role="staff", with_totp=True)
    url = f"/api/v1/practice/members/{staff.id}/two-factor-reset"
    bad_password = client.post(
        url, json={"password": "not my password", "code": admin.code(clock), "reason": "lost phone"}
    )
    assert bad_password.status_code == 401 and bad_password.json()["error"] == "invalid_credentials"
    bad_code = client.post(url, json={"password": PASSWORD, "code": wrong(admin.code(clock)), "reason": "lost phone"})
    assert bad_code.status_code == 400 and bad_code.json()["error"] == "invalid_code"
    no_reason = client.post(url, json={"password": PASSWORD, "code": admin.code(clock), "reason": "  "})
    assert no_reason.status_code == 422
    missing = client.post(url, json={"password": PASSWORD, "code": admin.code(clock)})
    assert missing.status_code == 422
    malformed = client.post(url, json={"password": PASSWORD, "code": "12ab56", "reason": "lost phone"})
    assert malformed.status_code == 422  # not counted as an attempt
    assert client.get(f"/api/v1/practice/members/{staff.id}").json()["two_factor"]["enabled"] is True
    failures = events(services, "practice:member:two_factor_reset_failed")
    assert [e.details["reason"] for e in failures] == ["wrong_password", "wrong"]


def test_admin_reset_removes_methods_ends_sessions_emails_and_requires_enrolment(
    client, anonymous, admin, make_user, clock, services, mailbox
):
    staff = make_user(role="staff", with_totp=True)
    assert sign_in(anonymous, staff, clock).status_code == 200
    clock.advance(seconds=30)
    response = client.post(
        f"/api/v1/practice/members/{staff.id}/two-factor-reset",
        json={"password": PASSWORD, "code": admin.code(clock), "reason": "Lost phone on holiday"},
    )
    assert response.status_code == 200 and response.json() == {"status": "reset"}
    assert anonymous.get("/api/v1/me").status_code == 401
    assert client.get(f"/api/v1/practice/members/{staff.id}").json()["two_factor"] == {
        "enabled": False,
        "methods": [],
        "recovery_codes_left": 0,
    }
    [mail] = wait_for_subject(mailbox, staff.email, "Your two-factor authentication was reset by an admin")
    assert "Lost phone on holiday" in mail.text
    reset = events(services, "practice:member:two_factor_reset")[-1]
    assert reset.actor_id == admin.id and reset.subject_id == staff.id
    assert reset.details["reason"] == "Lost phone on holiday" and reset.details["methods_removed"] == [
        "totp",
        "recovery_code",
    ]
    assert reset.details["sessions_ended"] == 1 and reset.details["via"] == "admin"
    # At the next sign-in the member must enrol again: nothing else is open.
    assert sign_in(anonymous, staff).json() == {"status": "signed_in"}
    blocked = anonymous.get("/api/v1/me")
    assert blocked.status_code == 403 and blocked.json()["error"] == "two_factor_required"
    enrollment = anonymous.post("/api/v1/me/totp").json()
    key = otp.from_b32(enrollment["secret"])
    assert (
        anonymous.post(
            "/api/v1/me/totp/confirm",
            json={"enrollment_id": enrollment["enrollment_id"], "code": otp.totp(key, clock.now().timestamp())},
        ).status_code
        == 200
    )
    assert anonymous.get("/api/v1/me").status_code == 200


def test_an_admin_without_two_factor_cannot_reset_others(client, make_user, clock):
    bare_admin = make_user(role="admin", with_totp=False)
    staff = make_user(role="staff", with_totp=True)
    sign_in(client, bare_admin)
    response = client.post(
        f"/api/v1/practice/members/{staff.id}/two-factor-reset",
        json={"password": PASSWORD, "code": "123456", "reason": "x"},
    )
    assert response.status_code == 403 and response.json()["error"] == "admin_two_factor_required"


def test_an_admin_cannot_reset_their_own_two_factor_here(client, admin, clock):
    response = client.post(
        f"/api/v1/practice/members/{admin.id}/two-factor-reset",
        json={"password": PASSWORD, "code": admin.code(clock), "reason": "x"},
    )
    assert response.status_code == 403 and response.json()["error"] == "cannot_reset_self"


# -- policy ---------------------------------------------------------------------------------------------


def test_policy_reads_and_writes_the_contract_fields(client, admin, services):
    policy = client.get("/api/v1/practice/policy").json()
    assert set(policy) == {
        "require_two_factor",
        "required_roles",
        "grace_days",
        "allowed_methods",
        "remember_browser_days",
        "idle_timeout_minutes",
        "time_zone",
        "passkey_sign_in",
        "phishing_resistant_roles",
        "shared_workstation_idle_minutes",
    }
    assert policy["time_zone"] == "UTC"  # TWOFOLD_DEFAULT_TIME_ZONE unset
    new = {
        **policy,
        "require_two_factor": True,
        "required_roles": ["provider"],
        "grace_days": 14,
        "allowed_methods": ["totp", "recovery_code"],
        "remember_browser_days": 7,
        "idle_timeout_minutes": 10,
        "time_zone": "America/Chicago",
    }
    saved = client.put("/api/v1/practice/policy", json=new)
    assert saved.status_code == 200 and saved.json() == new
    assert client.get("/api/v1/practice/policy").json() == new
    bad_zone = client.put("/api/v1/practice/policy", json={"time_zone": "Mars/Olympus_Mons"})
    assert bad_zone.status_code == 422 and "time_zone" in bad_zone.json()["message"]
    partial = client.put("/api/v1/practice/policy", json={"grace_days": 3})
    assert partial.json() == {**new, "grace_days": 3}
    changed = events(services, "practice:policy:changed")
    assert changed[0].details["changes"]["require_two_factor"] == [False, True]
    assert changed[-1].details["changes"] == {"grace_days": [14, 3]} and changed[-1].actor_id == admin.id


BAD_POLICIES = [
    {"grace_days": 31},
    {"grace_days": -1},
    {"grace_days": "7"},
    {"remember_browser_days": 31},
    {"idle_timeout_minutes": 0},
    {"idle_timeout_minutes": 61},
    {"shared_workstation_idle_minutes": 0},
    {"shared_workstation_idle_minutes": 16},  # longer than the practice's idle timeout (15)
    {"idle_timeout_minutes": 1},  # shorter than the shared workstations' (2)
    {"required_roles": ["boss"]},
    {"allowed_methods": ["sms", "totp"]},
    {"allowed_methods": ["email"]},
    {"require_two_factor": "yes"},
    {"grace_days": 3.5},
    {"unknown_field": 1},
    {"required_roles": "staff"},
]


def test_bad_policy_is_refused_and_changes_nothing(client, admin, services):
    before = client.get("/api/v1/practice/policy").json()
    for body in BAD_POLICIES:
        response = client.put("/api/v1/practice/policy", json=body)
        assert response.status_code == 422 and response.json()["error"] in ("validation_error", "invalid_input"), body
    assert client.get("/api/v1/practice/policy").json() == before
    assert not events(services, "practice:policy:changed")


def test_policy_preview_lists_who_would_have_to_enrol_and_changes_nothing(client, admin, make_user, clock):
    staff = make_user(role="staff")
    provider = make_user(role="provider")
    make_user(role="provider", with_totp=True)
    inactive = make_user(role="staff")
    client.patch(f"/api/v1/practice/members/{inactive.id}", json={"active": False})
    everyone = client.post("/api/v1/practice/policy/preview", json={"require_two_factor": True, "grace_days": 5}).json()
    assert {i["id"] for i in everyone["items"]} == {staff.id, provider.id} and everyone["total"] == 2
    assert (
        everyone["due_at"]
        == (clock.now().replace(microsecond=0) + __import__("datetime").timedelta(days=5)).isoformat()
    )
    providers = client.post(
        "/api/v1/practice/policy/preview", json={"require_two_factor": True, "required_roles": ["provider"]}
    ).json()
    assert [i["id"] for i in providers["items"]] == [provider.id]
    off = client.post("/api/v1/practice/policy/preview", json={"require_two_factor": False}).json()
    assert off == {"items": [], "total": 0, "due_at": None}
    assert client.get("/api/v1/practice/policy").json()["require_two_factor"] is False


# -- audit log ----------------------------------------------------------------------------------------------


def test_audit_log_filters_by_actor_event_and_date(client, admin, make_user, clock):
    staff = make_user(role="staff")
    clock.advance(days=2)
    assert sign_in(client, admin, clock).status_code == 200
    client.patch(f"/api/v1/practice/members/{staff.id}", json={"role": "provider"})
    all_events = client.get("/api/v1/practice/audit").json()
    assert set(all_events) == {"items", "total"} and all_events["total"] >= 5
    newest = all_events["items"][0]
    assert newest["event"] == "practice:member:role_changed"
    assert newest["actor"] == {"id": admin.id, "email": admin.email, "name": "Admin"}
    assert newest["subject"]["id"] == staff.id and newest["ip"] == "testclient"
    by_actor = client.get("/api/v1/practice/audit", params={"actor": admin.email}).json()["items"]
    assert by_actor and all(e["actor"] and e["actor"]["id"] == admin.id for e in by_actor)
    assert client.get("/api/v1/practice/audit", params={"actor": str(admin.id)}).json()["total"] == len(by_actor)
    by_event = client.get("/api/v1/practice/audit", params={"event": "practice:member"}).json()["items"]
    assert {e["event"] for e in by_event} == {"practice:member:added", "practice:member:role_changed"}
    today = clock.now().date().isoformat()
    recent = client.get("/api/v1/practice/audit", params={"since": today, "event": "practice"}).json()["items"]
    assert [e["event"] for e in recent] == ["practice:member:role_changed"]
    older = client.get(
        "/api/v1/practice/audit",
        params={"until": (clock.now().date() - __import__("datetime").timedelta(days=1)).isoformat()},
    ).json()
    assert "practice:member:role_changed" not in {e["event"] for e in older["items"]}
    assert older["total"] == all_events["total"] - 3  # today: the sign-in (2 events) and the role change
    assert client.get("/api/v1/practice/audit", params={"since": "yesterday"}).status_code == 422
    assert client.get("/api/v1/practice/audit", params={"actor": "nobody@elsewhere.example"}).json()["total"] == 0


def test_audit_log_exports_csv_with_accept_header(client, admin, services):
    response = client.get("/api/v1/practice/audit", headers={"accept": "text/csv"}, params={"event": "practice"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "seq,at,event,actor_email,actor_name,subject_email,subject_name,ip,user_agent,details,hash"
    assert lines[1].split(",")[2] == "practice:created"
    assert events(services, "practice:audit:exported")[-1].actor_id == admin.id


def test_members_export_csv_with_accept_header(client, admin, make_user):
    make_user(role="staff", email="=cmd@riverside.example")
    response = client.get("/api/v1/practice/members", headers={"accept": "text/csv"})
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert lines[0].startswith("email,name,role,active,two_factor")
    assert any(line.startswith("'=cmd@riverside.example") for line in lines)  # a formula is defused


# -- roles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "provider"])
def test_members_who_are_not_admins_get_403(client, make_user, role):
    member = make_user(role=role)
    sign_in(client, member)
    for method, url in [
        ("get", "/api/v1/practice/members"),
        ("get", "/api/v1/practice/policy"),
        ("get", "/api/v1/practice/audit"),
    ]:
        response = client.request(method, url)
        assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_the_administration_api_is_in_the_openapi(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    for path, methods in {
        "/api/v1/practice/members": {"get", "post"},
        "/api/v1/practice/members/{member_id}": {"get", "patch"},
        "/api/v1/practice/members/{member_id}/setup-link": {"post"},
        "/api/v1/practice/members/{member_id}/two-factor-reset": {"post"},
        "/api/v1/practice/policy": {"get", "put"},
        "/api/v1/practice/audit": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "text/csv" in paths["/api/v1/practice/members/import"]["post"]["requestBody"]["content"]


def test_admin_reset_and_deactivation_forget_remembered_browsers(client, anonymous, admin, make_user, clock, services):
    """The member list counts remembered browsers; a reset or a deactivation ends them."""
    from sqlalchemy import select

    from twofold.store.models import RememberedBrowser

    staff = make_user(role="staff", with_totp=True)
    provider = make_user(role="provider", with_totp=True)
    for member in (staff, provider):
        with type(anonymous)(anonymous.app, base_url="http://127.0.0.1") as browser:
            assert sign_in(browser, member, clock, remember=True).status_code == 200
    listed = {item["id"]: item for item in client.get("/api/v1/practice/members").json()["items"]}
    assert listed[staff.id]["remembered_browsers"] == 1 and listed[provider.id]["remembered_browsers"] == 1

    clock.advance(seconds=30)
    reset = client.post(
        f"/api/v1/practice/members/{staff.id}/two-factor-reset",
        json={"password": PASSWORD, "code": admin.code(clock), "reason": "Lost phone"},
    )
    assert reset.status_code == 200
    assert client.patch(f"/api/v1/practice/members/{provider.id}", json={"active": False}).status_code == 200
    with services.db.reading() as s:
        reasons = {
            row.user_id: row.revoked_reason
            for row in s.execute(
                select(RememberedBrowser).where(RememberedBrowser.user_id.in_([staff.id, provider.id]))
            ).scalars()
        }
    assert reasons[staff.id] and reasons[provider.id]
    listed = {item["id"]: item for item in client.get("/api/v1/practice/members").json()["items"]}
    assert listed[staff.id]["remembered_browsers"] == 0 and listed[provider.id]["remembered_browsers"] == 0
