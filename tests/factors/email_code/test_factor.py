"""Email codes at the factor: newest only, expiry, single use under a race, send limits across stores."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.conftest import REDIS_URL, SECRET_KEY, backends, skip_or_fail
from twofold.crypto.secret_box import TokenHasher
from twofold.factors.base import Outcome
from twofold.factors.email_code.factor import CHALLENGE, CONFIRM_ADDRESS, EmailCodeFactor, SendLimited
from twofold.store.models import User
from twofold.throttle import DatabaseFailureStore, RedisFailureStore, Throttle


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def issue(services, member, purpose=CHALLENGE, factor=None):
    factor = factor or services.email_codes
    with services.db.transaction() as s:
        return factor.issue(s, user=s.get(User, member.id), purpose=purpose)


def check(services, member, code, purpose=CHALLENGE):
    with services.db.transaction() as s:
        return services.email_codes.check(s, user=s.get(User, member.id), code=code, purpose=purpose)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_codes_are_eight_random_digits(services, make_user, clock):
    member = make_user()
    codes = set()
    for _ in range(5):
        codes.add(issue(services, member))
        clock.advance(minutes=13)
    assert len(codes) == 5 and all(len(c) == 8 and c.isdigit() for c in codes)


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("seconds", "outcome"), [(0, Outcome.ACCEPTED), (599, Outcome.ACCEPTED), (600, Outcome.EXPIRED)]
)
def test_a_code_expires_after_ten_minutes(services, make_user, clock, seconds, outcome):
    member = make_user()
    code = issue(services, member)
    clock.advance(seconds=seconds)
    assert check(services, member, code).outcome is outcome


def test_only_the_newest_code_of_a_purpose_is_valid(services, make_user, clock):
    member = make_user()
    first = issue(services, member)
    clock.advance(seconds=30)
    confirm = issue(services, member, CONFIRM_ADDRESS)
    clock.advance(seconds=30)
    second = issue(services, member)
    assert check(services, member, first).outcome is Outcome.WRONG
    assert check(services, member, confirm).outcome is Outcome.WRONG  # a code is good only for its purpose
    assert check(services, member, confirm, CONFIRM_ADDRESS).accepted
    assert check(services, member, second).accepted
    assert check(services, member, second).outcome is Outcome.REUSED


def test_two_concurrent_uses_of_one_email_code_give_one_success(services, make_user):
    member = make_user()
    code = issue(services, member)
    barrier = threading.Barrier(6)
    outcomes: list[Outcome] = []

    def attempt() -> None:
        barrier.wait()
        outcomes.append(check(services, member, code).outcome)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == sorted([Outcome.ACCEPTED] + [Outcome.REUSED] * 5)


def test_concurrent_sends_pass_the_limit_once(services, make_user):
    member = make_user()
    barrier = threading.Barrier(6)
    sent: list[str] = []
    limited: list[int] = []

    def attempt() -> None:
        barrier.wait()
        try:
            sent.append(issue(services, member))
        except SendLimited as exc:
            limited.append(exc.retry_after)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(sent) == 1 and len(limited) == 5


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["sqlite"])
def test_send_limits_hold_with_the_redis_store(services, make_user, clock):
    if not REDIS_URL:
        skip_or_fail("TWOFOLD_TEST_REDIS_URL is not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"twofold-test:{uuid.uuid4().hex}:"
    throttle = Throttle(store=RedisFailureStore(client, prefix=prefix), clock=clock)
    factor = EmailCodeFactor(
        hasher=TokenHasher(SECRET_KEY, "email-code"), clock=clock, throttle=throttle, mail=services.mail, stronger=[]
    )
    member = make_user()
    try:
        issue(services, member, factor=factor)  # t = 0
        clock.advance(seconds=10)
        with pytest.raises(SendLimited) as soon:
            issue(services, member, factor=factor)
        assert soon.value.retry_after == 20
        for _ in range(4):  # t = 40, 70, 100, 130
            clock.advance(seconds=30)
            issue(services, member, factor=factor)
        clock.advance(seconds=30)
        with pytest.raises(SendLimited) as hourly:
            issue(services, member, factor=factor)
        assert hourly.value.retry_after == 3600 - 160
        assert client.keys(prefix + "*")  # the counts live in Redis, shared by every process
    finally:
        for key in client.keys(prefix + "*"):
            client.delete(key)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_send_limit_messages_say_when(services, make_user, clock):
    member = make_user()
    issue(services, member)
    with pytest.raises(SendLimited) as soon:
        issue(services, member)
    assert soon.value.retry_after == 30 and "30 seconds" in soon.value.message
    for _ in range(4):
        clock.advance(seconds=30)
        issue(services, member)
    clock.advance(seconds=30)
    with pytest.raises(SendLimited) as hourly:
        issue(services, member)
    assert hourly.value.retry_after == 3600 - 150 and "58 minutes" in hourly.value.message


def test_database_store_counts_sends_in_the_same_transaction(services, make_user):
    """No Redis: the limit is rows in throttle_failures, written with the code (rolled back together)."""
    assert isinstance(services.throttle.store, DatabaseFailureStore)
    member = make_user()

    def issue_then_fail() -> None:
        with services.db.transaction() as s:
            services.email_codes.issue(s, user=s.get(User, member.id), purpose=CHALLENGE)
            raise RuntimeError("the request failed after issuing")

    with pytest.raises(RuntimeError):
        issue_then_fail()
    issue(services, member)  # the rolled-back send did not count
