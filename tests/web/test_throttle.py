"""Guessing is throttled through the API: codes per account, passwords per account
and per address, with a clear wait; on SQLite, PostgreSQL and Redis counters.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import PASSWORD, REDIS_URL, skip_or_fail
from twofold.crypto import otp
from twofold.store.models import AuditEvent
from twofold.throttle import DAY, PASSWORD_PER_IP, RedisFailureStore, subject_key
from twofold.web.app import create_app
from twofold.wiring import build_services

STORES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=["sqlite"])
def store_backend(request) -> str:
    """Where the counters live. Tests where storage matters run on every store (ON_EVERY_STORE)."""
    return request.param


ON_EVERY_STORE = pytest.mark.parametrize("store_backend", STORES, indirect=True)


@pytest.fixture
def backend(store_backend) -> str:
    return "sqlite" if store_backend == "redis" else store_backend


@pytest.fixture
def make_failure_store(store_backend):
    """A factory of the counters' store as a new process would build it (None: the database)."""
    if store_backend != "redis":
        yield lambda: None
        return
    if not REDIS_URL:
        skip_or_fail("TWOFOLD_TEST_REDIS_URL is not set")
    import redis

    prefix = f"twofold-test:{uuid.uuid4().hex}:"
    clients = []

    def factory():
        clients.append(redis.Redis.from_url(REDIS_URL))
        return RedisFailureStore(clients[-1], prefix=prefix)

    yield factory
    for name in clients[0].scan_iter(match=prefix + "*") if clients else ():
        clients[0].delete(name)
    for client in clients:
        client.close()


@pytest.fixture
def services(settings, clock, notifier, make_failure_store):
    built = build_services(settings, clock=clock, notifier=notifier, failure_store=make_failure_store())
    yield built
    built.close()


def events(services, name: str) -> list[AuditEvent]:
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)).scalars().all()


def wrong_code(member, clock) -> str:
    near = {member.code(clock, d) for d in range(-10, 11)}
    return next(c for c in (f"{n:06d}" for n in range(123_456, 1_000_000, 7919)) if c not in near)


def open_flow(client, member) -> str:
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": member.password})
    assert response.status_code == 200, response.text
    return response.json()["flow_id"]


def submit(client, flow: str, code: str):
    return client.post(f"/api/v1/sign-in/{flow}/second-factor", json={"method": "totp", "code": code})


def fail_codes(client, member, clock, times: int = 5, flow: str | None = None) -> str:
    flow = flow or open_flow(client, member)
    for _ in range(times):
        response = submit(client, flow, wrong_code(member, clock))
        assert response.status_code == 401, response.text
    return flow


def assert_throttled(response, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "throttled" and body["retry_after"] == retry_after
    assert response.headers["retry-after"] == str(retry_after)
    assert "try again in" in body["message"].lower()


# -- codes ---------------------------------------------------------------------


@ON_EVERY_STORE
def test_five_wrong_codes_in_five_minutes_make_even_the_right_code_wait(client, make_user, clock, services):
    member = make_user(with_totp=True)
    flow = open_flow(client, member)
    for _ in range(5):
        assert submit(client, flow, wrong_code(member, clock)).status_code == 401
        clock.advance(seconds=20)
    assert_throttled(submit(client, open_flow(client, member), member.code(clock)), 300 - 5 * 20)
    locked = events(services, "account:sign_in:locked_out")
    assert len(locked) == 1 and locked[0].subject_id == member.id
    assert locked[0].details["step"] == "second_factor" and locked[0].details["retry_after"] == 220


def test_the_right_code_is_accepted_once_the_wait_is_over(client, make_user, clock):
    member = make_user(with_totp=True)
    fail_codes(client, member, clock)
    flow = open_flow(client, member)  # five wrong codes ended the first flow
    wait = submit(client, flow, member.code(clock)).json()["retry_after"]
    clock.advance(seconds=wait - 1)
    assert_throttled(submit(client, flow, member.code(clock)), 1)
    clock.advance(seconds=1)
    assert submit(client, flow, member.code(clock)).status_code == 200


@ON_EVERY_STORE
def test_a_new_flow_does_not_reset_the_throttle(client, make_user, clock):
    member = make_user(with_totp=True)
    fail_codes(client, member, clock)
    assert_throttled(submit(client, open_flow(client, member), member.code(clock)), 300)


def test_the_code_just_used_is_explained_and_not_counted_but_wrong_codes_still_are(client, anonymous, make_user, clock):
    member = make_user(with_totp=True)
    used = member.code(clock)
    assert submit(client, open_flow(client, member), used).status_code == 200
    flow = open_flow(anonymous, member)
    for _ in range(6):  # more than the five that start a wait
        refused = submit(anonymous, flow, used)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_code" and "just used" in refused.json()["message"]
    fail_codes(anonymous, member, clock, flow=flow)  # five wrong codes: those are guesses
    clock.advance(seconds=30)
    assert_throttled(submit(anonymous, open_flow(anonymous, member), member.code(clock)), 270)


@ON_EVERY_STORE
def test_the_code_throttle_survives_a_restart(
    client, make_user, clock, settings, notifier, make_failure_store, services
):
    member = make_user(with_totp=True)
    fail_codes(client, member, clock)
    clock.advance(seconds=60)
    restarted = build_services(settings, clock=clock, notifier=notifier, failure_store=make_failure_store())
    try:
        with TestClient(create_app(restarted), base_url="http://127.0.0.1") as again:
            assert_throttled(submit(again, open_flow(again, member), member.code(clock)), 240)
    finally:
        restarted.close()


@ON_EVERY_STORE
def test_twenty_wrong_codes_in_an_hour_and_fifty_in_a_day_lock_for_longer(client, make_user, clock):
    member = make_user(with_totp=True)
    start = clock.now()

    def elapsed() -> int:
        return int((clock.now() - start).total_seconds())

    for hour in range(2):  # 4 batches of 5, five minutes apart, in each of two hours
        for batch in range(4):
            fail_codes(client, member, clock)
            if batch < 3:
                clock.advance(minutes=5)
        hour_start = hour * 3600
        assert_throttled(submit(client, open_flow(client, member), member.code(clock)), hour_start + 3600 - elapsed())
        clock.advance(minutes=5)  # the 5-minute window has passed, the hourly one has not
        assert_throttled(submit(client, open_flow(client, member), member.code(clock)), hour_start + 3600 - elapsed())
        clock.advance(seconds=hour_start + 3600 - elapsed())
    fail_codes(client, member, clock)  # 45
    clock.advance(minutes=5)
    fail_codes(client, member, clock)  # 50 within the day
    clock.advance(minutes=30)  # past the 5-minute and hourly waits, inside the day
    assert_throttled(submit(client, open_flow(client, member), member.code(clock)), DAY - elapsed())
    clock.advance(seconds=DAY - elapsed())
    assert submit(client, open_flow(client, member), member.code(clock)).status_code == 200


def test_wrong_confirmation_codes_share_the_code_throttle(client, make_user, clock, services):
    member = make_user()
    client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
    enrollment = client.post("/api/v1/me/totp").json()
    key = otp.from_b32(enrollment["secret"])
    right = otp.totp(key, clock.now().timestamp())
    wrong = next(
        c
        for c in ("111111", "222222", "333333")
        if c not in {otp.totp(key, clock.now().timestamp() + 30 * d) for d in range(-10, 11)}
    )
    for attempt in range(1, 6):
        answer = client.post(
            "/api/v1/me/totp/confirm", json={"enrollment_id": enrollment["enrollment_id"], "code": wrong}
        )
        if attempt < 5:
            assert answer.status_code == 400 and answer.json()["error"] == "invalid_code"
        else:  # the fifth wrong code starts the wait and says so
            assert answer.status_code == 429 and answer.json()["error"] == "throttled"
    assert_throttled(
        client.post("/api/v1/me/totp/confirm", json={"enrollment_id": enrollment["enrollment_id"], "code": right}), 300
    )
    assert [e.subject_id for e in events(services, "account:sign_in:locked_out")] == [member.id]
    assert client.get("/api/v1/me").json()["two_factor"]["enabled"] is False


def test_wrong_codes_when_turning_two_factor_off_share_the_code_throttle(client, make_user, clock, services):
    member = make_user(with_totp=True)
    submit(client, open_flow(client, member), member.code(clock))
    clock.advance(seconds=30)
    for _ in range(5):
        answer = client.request(
            "DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": wrong_code(member, clock)}
        )
        assert answer.status_code == 400
    answer = client.request("DELETE", "/api/v1/me/totp", json={"password": PASSWORD, "code": member.code(clock)})
    assert_throttled(answer, 300)
    assert [e.subject_id for e in events(services, "account:sign_in:locked_out")] == [member.id]
    assert client.get("/api/v1/me").json()["two_factor"]["enabled"] is True


# -- passwords -----------------------------------------------------------------


@ON_EVERY_STORE
def test_five_wrong_passwords_make_even_the_right_password_wait_from_that_address(
    client, app, make_user, clock, services
):
    member = make_user()
    for _ in range(5):
        assert (
            client.post("/api/v1/sign-in", json={"email": member.email, "password": "wrong password"}).status_code
            == 401
        )
        clock.advance(seconds=10)
    assert_throttled(client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}), 250)
    locked = events(services, "account:sign_in:locked_out")
    assert len(locked) == 1 and locked[0].subject_id == member.id and locked[0].details["step"] == "password"
    clock.advance(seconds=250)
    assert (
        client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()["status"]
        == "signed_in"
    )


def test_an_unknown_email_is_throttled_exactly_like_a_real_one(client, make_user, clock):
    member = make_user()
    answers = {}
    for email in (member.email, "nobody@riverside.example"):
        for _ in range(5):
            client.post("/api/v1/sign-in", json={"email": email, "password": "wrong password"})
        answers[email] = client.post("/api/v1/sign-in", json={"email": email, "password": PASSWORD})
    real, unknown = answers.values()
    assert real.status_code == unknown.status_code == 429
    assert real.json() == unknown.json()


@ON_EVERY_STORE
def test_the_password_throttle_survives_a_restart(client, make_user, clock, settings, notifier, make_failure_store):
    member = make_user()
    for _ in range(5):
        client.post("/api/v1/sign-in", json={"email": member.email, "password": "wrong password"})
    restarted = build_services(settings, clock=clock, notifier=notifier, failure_store=make_failure_store())
    try:
        with TestClient(create_app(restarted), base_url="http://127.0.0.1") as again:
            assert_throttled(again.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}), 300)
    finally:
        restarted.close()


@ON_EVERY_STORE
def test_password_guesses_are_limited_per_address(app, make_user, clock, services):
    """50 failures from one address in 5 minutes block that address, for every account."""
    member = make_user()
    address = "203.0.113.7"
    with services.db.transaction() as s:  # 49 earlier failures from this address, on other accounts
        for _ in range(49):
            services.throttle.hit(s, [(PASSWORD_PER_IP, subject_key(PASSWORD_PER_IP, address))])
    with (
        TestClient(app, base_url="http://127.0.0.1", client=(address, 40000)) as spray,
        TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.20", 40000)) as colleague,
    ):
        assert (
            spray.post(
                "/api/v1/sign-in", json={"email": "guess@riverside.example", "password": "hunter2hunter2"}
            ).status_code
            == 401
        )
        locked = events(services, "account:sign_in:locked_out")
        assert len(locked) == 1 and locked[0].ip == address
        assert_throttled(spray.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}), 300)
        assert colleague.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).status_code == 200
