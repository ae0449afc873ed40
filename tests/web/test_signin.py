"""The sign-in contract of /api/v1, on every storage backend."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, backends, sign_in
from twofold.core.signin import FLOW_COOKIE
from twofold.crypto import otp
from twofold.store.models import AuditEvent, SignInFlow, UserSession
from twofold.web.rendering import SESSION_COOKIE


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def events(services, name=None):
    with services.db.reading() as s:
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    return [row for row in rows if name is None or row.event == name]


def test_password_only_account_signs_in_directly(client, make_user):
    member = make_user()
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"status": "signed_in"}
    cookie = response.headers["set-cookie"]
    assert "twofold_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = client.get("/api/v1/me").json()
    assert me["email"] == member.email
    assert me["two_factor"] == {"enabled": False, "methods": [], "recovery_codes_left": 0}


def test_unknown_email_and_wrong_password_get_the_same_answer(client, make_user):
    member = make_user()
    wrong = client.post("/api/v1/sign-in", json={"email": member.email, "password": "not the password"})
    unknown = client.post("/api/v1/sign-in", json={"email": "nobody@riverside.example", "password": "whatever it is"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"] == "invalid_credentials"


def test_email_is_matched_without_case_or_spaces(client, make_user):
    member = make_user()
    response = client.post("/api/v1/sign-in", json={"email": f"  {member.email.upper()} ", "password": PASSWORD})
    assert response.json()["status"] == "signed_in"


def test_totp_account_needs_a_code_and_the_flow_grants_nothing(client, make_user, clock, services):
    member = make_user(with_totp=True)
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
    body = response.json()
    assert body["status"] == "second_factor_required" and body["methods"] == ["totp", "recovery_code"]
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")  # only the flow cookie
    assert client.get("/api/v1/me").status_code == 401
    with services.db.reading() as s:
        flow = s.get(SignInFlow, services.sign_in.flow_hasher.hash(body["flow_id"]))
        assert flow.state == "password_verified" and flow.attempts == 0
        assert (flow.expires_at - flow.created_at).total_seconds() == 600
    done = client.post(
        f"/api/v1/sign-in/{body['flow_id']}/second-factor", json={"method": "totp", "code": member.code(clock)}
    )
    assert done.status_code == 200 and done.json() == {"status": "signed_in"}
    assert client.get("/api/v1/me").json()["two_factor"] == {
        "enabled": True,
        "methods": ["totp", "recovery_code"],
        "recovery_codes_left": 10,
    }


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_neighbouring_steps_are_accepted(client, make_user, clock, offset):
    member = make_user(with_totp=True)
    clock.advance(seconds=120)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    response = client.post(
        f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock, offset)}
    )
    assert response.status_code == 200


def _far_wrong_code(member, clock) -> str:
    near = {member.code(clock, d) for d in range(-12, 13)}
    return next(c for c in (f"{n:06d}" for n in range(123_456, 1_000_000, 7919)) if c not in near)


@pytest.mark.parametrize("offset", [-10, -2, 2, 10])
def test_a_code_of_another_time_step_gets_the_answer_of_a_wrong_code(client, make_user, clock, services, offset):
    """A guessed code that is right for a future step must not be confirmed: it would become valid later."""
    member = make_user(with_totp=True)
    clock.advance(seconds=600)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    drifted = client.post(
        f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock, offset)}
    )
    wrong = client.post(
        f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": _far_wrong_code(member, clock)}
    )
    assert drifted.status_code == wrong.status_code == 401
    assert drifted.json() == wrong.json()
    assert "clock" not in drifted.json()["message"].lower()
    with services.db.reading() as s:  # the reason is kept for the practice's admins
        reasons = s.execute(
            select(AuditEvent.details).where(AuditEvent.event == "account:sign_in:code_failed").order_by(AuditEvent.id)
        ).scalars()
        assert [d["reason"] for d in reasons] == ["out_of_sync", "wrong"]


def test_wrong_code_is_refused_without_a_clock_hint(client, make_user, clock):
    member = make_user(with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    right = member.code(clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": wrong})
    assert response.status_code == 401 and response.json()["error"] == "invalid_code"
    assert "clock" not in response.json()["message"].lower() or wrong in {member.code(clock, d) for d in range(-10, 11)}


def test_code_is_never_accepted_twice(client, anonymous, make_user, clock):
    member = make_user(with_totp=True)
    assert sign_in(client, member, clock).status_code == 200
    flow = anonymous.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    replay = anonymous.post(
        f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)}
    )
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_code"


def test_an_earlier_step_after_a_later_one_is_refused(client, anonymous, make_user, clock):
    """RFC 6238 §5.2: nothing at or before the last accepted step."""
    member = make_user(with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    assert (
        client.post(
            f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock, 1)}
        ).status_code
        == 200
    )
    flow = anonymous.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    late = anonymous.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert late.status_code == 401


def test_the_confirming_code_counts_as_used(client, make_practice, services, clock):
    from twofold.context import RequestContext

    user = services.accounts.add_member(
        practice_id=make_practice().id,
        email="new@riverside.example",
        name="New",
        role="staff",
        password=PASSWORD,
        context=RequestContext(),
    )
    enrollment = services.totp_enrollment.start_totp_enrollment(user=user, context=RequestContext())
    key = otp.from_b32(enrollment.secret)
    code = otp.totp(key, clock.now().timestamp())
    services.totp_enrollment.confirm_totp(
        user=user, enrollment_id=enrollment.enrollment_id, code=code, context=RequestContext()
    )
    flow = client.post("/api/v1/sign-in", json={"email": "new@riverside.example", "password": PASSWORD}).json()[
        "flow_id"
    ]
    assert (
        client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": code}).status_code == 401
    )


def test_unknown_and_expired_flows(client, make_user, clock):
    member = make_user(with_totp=True)
    assert (
        client.post("/api/v1/sign-in/doesnotexist/second-factor", json={"method": "totp", "code": "123456"}).status_code
        == 404
    )
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    clock.advance(minutes=10, seconds=1)
    response = client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert response.status_code == 410 and response.json()["error"] == "flow_expired"


def test_a_used_flow_cannot_be_used_again(client, make_user, clock):
    member = make_user(with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    assert (
        client.post(
            f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)}
        ).status_code
        == 200
    )
    clock.advance(seconds=30)
    again = client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert again.status_code == 410


def test_session_id_is_new_at_every_sign_in_and_stored_only_hashed(client, make_user, services):
    member = make_user()
    first = sign_in(client, member).cookies["twofold_session"]
    second = sign_in(client, member).cookies["twofold_session"]
    assert first != second and len(first) >= 43  # 256 bits in URL-safe base64
    with services.db.reading() as s:
        hashes = s.execute(select(UserSession.token_hash)).scalars().all()
    assert len(hashes) == 2 and first not in hashes and second not in hashes


def test_sign_out_ends_the_session_server_side(client, make_user, anonymous):
    member = make_user()
    token = sign_in(client, member).cookies["twofold_session"]
    assert client.post("/api/v1/sign-out").json() == {"status": "signed_out"}
    anonymous.cookies.set("twofold_session", token)
    assert anonymous.get("/api/v1/me").status_code == 401


def test_sign_ins_and_failures_are_audited_with_ip_and_browser(client, make_user, clock, services):
    member = make_user(with_totp=True)
    headers = {"user-agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/130"}
    client.post("/api/v1/sign-in", json={"email": member.email, "password": "wrong password"}, headers=headers)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}, headers=headers).json()[
        "flow_id"
    ]
    client.post(
        f"/api/v1/sign-in/{flow}/second-factor",
        json={"method": "totp", "code": "000000" if member.code(clock) != "000000" else "111111"},
        headers=headers,
    )
    client.post(
        f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)}, headers=headers
    )
    names = [e.event for e in events(services) if e.subject_id == member.id]
    for expected in (
        "account:two_factor:enabled",
        "account:sign_in:password_failed",
        "account:sign_in:second_factor_required",
        "account:sign_in:code_failed",
        "account:sign_in:succeeded",
    ):
        assert expected in names
    succeeded = events(services, "account:sign_in:succeeded")[-1]
    assert succeeded.ip and succeeded.user_agent == headers["user-agent"] and succeeded.actor_id == member.id


# -- the flow is bound to the browser that passed the password ---------------------------------


def test_a_flow_id_alone_finishes_no_sign_in(app, client, make_user, clock):
    member = make_user(with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    with TestClient(app, base_url="http://127.0.0.1") as thief:
        stolen = thief.post(
            f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)}
        )
        assert stolen.status_code == 404 and stolen.json()["error"] == "flow_not_found"
        thief.cookies.set(FLOW_COOKIE, "a-guessed-flow-cookie-value")
        assert thief.get(f"/sign-in/{flow}/code").status_code == 404
        assert thief.post(f"/sign-in/{flow}/code", data={"code": member.code(clock)}).status_code == 410
        assert thief.post(f"/api/v1/sign-in/{flow}/email-code").status_code == 404
        assert SESSION_COOKIE not in thief.cookies
    done = client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert done.status_code == 200  # the browser that passed the password still can


def test_flow_ids_and_flow_cookies_are_stored_only_as_keyed_hashes(client, make_user, services):
    member = make_user(with_totp=True)
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
    flow_id, cookie = response.json()["flow_id"], response.cookies[FLOW_COOKIE]
    assert "httponly" in response.headers["set-cookie"].lower()
    with services.db.reading() as s:
        [row] = s.execute(select(SignInFlow)).scalars().all()
    assert row.id != flow_id and flow_id not in row.id and len(row.id) == 64
    assert row.binding_hash and cookie not in row.binding_hash and row.binding_hash != row.id


def test_a_flow_ends_after_five_wrong_codes(client, make_user, clock):
    member = make_user(with_totp=True)
    flow = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    for _ in range(5):
        wrong = client.post(
            f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": _far_wrong_code(member, clock)}
        )
        assert wrong.status_code == 401
    clock.advance(minutes=5)  # past the account's code throttle: only the flow's own cap is left
    ended = client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert ended.status_code == 410 and ended.json()["error"] == "flow_expired"
    assert "too many wrong codes" in ended.json()["message"]
    again = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
    done = client.post(f"/api/v1/sign-in/{again}/second-factor", json={"method": "totp", "code": member.code(clock)})
    assert done.status_code == 200


def test_signing_in_again_ends_the_session_the_browser_held(client, make_user, clock, services):
    """Asked again (an app's reauth_minutes) or someone else at the same browser: the old session ends now."""
    member = make_user(with_totp=True)
    other = make_user(with_totp=True)
    assert sign_in(client, member, clock).status_code == 200
    first = client.cookies[SESSION_COOKIE]
    clock.advance(seconds=30)
    assert sign_in(client, member, clock).status_code == 200
    second = client.cookies[SESSION_COOKIE]
    clock.advance(seconds=30)
    assert sign_in(client, other, clock).status_code == 200
    third = client.cookies[SESSION_COOKIE]
    assert len({first, second, third}) == 3
    assert services.sessions.resolve(first) is None and services.sessions.resolve(second) is None
    assert services.sessions.resolve(third).user.id == other.id
    with services.db.reading() as s:
        reasons = s.execute(select(UserSession.revoked_reason).order_by(UserSession.id)).scalars().all()
    assert reasons[-3:] == ["replaced", "replaced", None]


def test_a_code_step_without_a_session_cookie_ends_nothing(anonymous, make_user, clock, services):
    member = make_user(with_totp=True)
    with TestClient(anonymous.app, base_url="http://127.0.0.1") as elsewhere:
        assert sign_in(elsewhere, member, clock).status_code == 200
    clock.advance(seconds=30)
    assert sign_in(anonymous, member, clock).status_code == 200
    with services.db.reading() as s:
        assert s.execute(select(UserSession.revoked_reason)).scalars().all() == [None, None]
