"""Invariant 1 under real concurrency: a one-time code is accepted at most once.

The app is served by uvicorn over real HTTP; twenty clients, each on its own
connection and thread, are released together by a barrier. Run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD, backends, sign_in
from tests.support.live import all_at_once, live_server
from tests.support.practice_admin import setup_path
from twofold.core.signin import FLOW_COOKIE
from twofold.crypto import otp
from twofold.store.models import AuditEvent, ThrottleFailure, TotpCredential, UserSession

RACERS = 20


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def count(services, model, *where) -> int:
    with services.db.reading() as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def events(services, name: str) -> int:
    return count(services, AuditEvent, AuditEvent.event == name)


def clients(base: str, n: int) -> list[httpx.Client]:
    opened = [httpx.Client(base_url=base, timeout=30) for _ in range(n)]
    for client in opened:
        client.get("/api/v1/me")  # open the keep-alive connection before the race
    return opened


def open_flows(racers: list[httpx.Client], member) -> list[str]:
    """One sign-in flow per client (password checks in parallel too, to keep the suite quick)."""
    body = {"email": member.email, "password": PASSWORD}
    return [
        a.json()["flow_id"] for a in all_at_once(len(racers), lambda i: racers[i].post("/api/v1/sign-in", json=body))
    ]


def close(opened: list[httpx.Client]) -> None:
    for client in opened:
        client.close()


def test_one_code_submitted_on_twenty_flows_signs_in_exactly_once(app, services, make_user, clock):
    member = make_user(with_totp=True)
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        flows = open_flows(racers, member)
        code = member.code(clock)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post(
                f"/api/v1/sign-in/{flows[i]}/second-factor", json={"method": "totp", "code": code}
            ),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401, 429}, statuses
    assert count(services, UserSession, UserSession.user_id == member.id) == 1
    assert events(services, "account:sign_in:succeeded") == 1


def test_one_code_submitted_twenty_times_on_one_flow_signs_in_exactly_once(app, services, make_user, clock):
    member = make_user(with_totp=True)
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        flow = racers[0].post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
        for racer in racers[1:]:  # one browser's many connections (a double-click), all with its flow cookie
            racer.cookies.set(FLOW_COOKIE, racers[0].cookies[FLOW_COOKIE])
        code = member.code(clock)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": code}),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401, 410, 429}, statuses
    assert count(services, UserSession, UserSession.user_id == member.id) == 1
    assert events(services, "account:sign_in:succeeded") == 1


def test_one_enrollment_code_confirmed_twenty_times_turns_two_factor_on_once(app, services, make_user, clock):
    member = make_user()
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        body = {"email": member.email, "password": PASSWORD}
        signed_in = all_at_once(RACERS, lambda i: racers[i].post("/api/v1/sign-in", json=body))  # twenty sessions
        assert [a.status_code for a in signed_in] == [200] * RACERS
        enrollment = racers[0].post("/api/v1/me/totp").json()
        code = otp.totp(otp.from_b32(enrollment["secret"]), clock.now().timestamp())
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post(
                "/api/v1/me/totp/confirm", json={"enrollment_id": enrollment["enrollment_id"], "code": code}
            ),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert all(400 <= s < 500 for s in statuses if s != 200), statuses
    assert events(services, "account:two_factor:enabled") == 1
    assert (
        count(services, TotpCredential, TotpCredential.user_id == member.id, TotpCredential.confirmed_at.is_not(None))
        == 1
    )


def test_twenty_concurrent_wrong_codes_are_judged_at_most_five_times(app, services, make_user, clock):
    """The throttle holds under concurrency too: no burst gets more than the 5 allowed guesses."""
    member = make_user(with_totp=True)
    near = {member.code(clock, d) for d in range(-10, 11)}
    wrong = [f"{n:06d}" for n in range(100_000, 999_999, 37_000) if f"{n:06d}" not in near][:RACERS]
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        flows = open_flows(racers, member)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post(
                f"/api/v1/sign-in/{flows[i]}/second-factor", json={"method": "totp", "code": wrong[i]}
            ),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == RACERS - 5, statuses
    assert count(services, ThrottleFailure) == 5


def test_twenty_concurrent_wrong_passwords_are_judged_at_most_five_times(app, services, make_user):
    """Password guesses hash outside any transaction; a burst must still get only the 5 allowed."""
    member = make_user()
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post("/api/v1/sign-in", json={"email": member.email, "password": f"wrong guess {i}"}),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == RACERS - 5, statuses


def test_twenty_concurrent_wrong_passwords_to_turn_two_factor_off_are_judged_at_most_five_times(
    app, services, make_user, clock
):
    """Re-authentication is no side door: a signed-in burst of wrong passwords gets the same 5."""
    member = make_user(with_totp=True)
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        owner = racers[0]
        flow = owner.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["flow_id"]
        assert (
            owner.post(
                f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": member.code(clock)}
            ).status_code
            == 200
        )
        for other in racers[1:]:
            other.cookies.update(owner.cookies)  # one stolen session, twenty connections
        clock.advance(seconds=30)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].request(
                "DELETE", "/api/v1/me/totp", json={"password": f"wrong guess {i}", "code": member.code(clock)}
            ),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == RACERS - 5, statuses
    assert services.accounts.two_factor_status(type("U", (), {"id": member.id})()).enabled


def test_twenty_concurrent_wrong_current_passwords_are_judged_at_most_five_times(app, services, make_user):
    """Changing the password is no side door for guessing it either."""
    member = make_user()
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        owner = racers[0]
        assert owner.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).status_code == 200
        for other in racers[1:]:
            other.cookies.update(owner.cookies)
        answers = all_at_once(
            RACERS,
            lambda i: racers[i].post(
                "/api/v1/me/password",
                json={"current_password": f"wrong guess {i}", "new_password": "a brand new passphrase"},
            ),
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == RACERS - 5, statuses


def test_twenty_concurrent_wrong_passwords_on_a_set_up_link_are_judged_at_most_five_times(
    app, services, make_user, client, clock, mailbox
):
    """The set-up link's "enter your password" step is no side door for guessing it either."""
    admin = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    assert sign_in(client, admin, clock).status_code == 200
    member = make_user(role="staff")
    assert client.post(f"/api/v1/practice/members/{member.id}/setup-link").status_code == 200
    link = setup_path(mailbox.wait_for(1, to=member.email)[0])
    with live_server(app, access_log=False) as base:
        racers = clients(base, RACERS)
        answers = all_at_once(
            RACERS, lambda i: racers[i].post(f"{link}/password", data={"password": f"wrong guess number {i}"})
        )
        close(racers)
    statuses = [a.status_code for a in answers]
    assert statuses.count(400) == 5, statuses
    assert statuses.count(429) == RACERS - 5, statuses
    assert all(a.headers["retry-after"].isdigit() for a in answers if a.status_code == 429)
    assert (
        count(services, ThrottleFailure) == 5 * 3
    )  # the account-wide key, the account-and-address key, the address key
