"""The throttle's windows and its storage contract.

Every FailureStore (rows in SQLite or PostgreSQL, sorted sets in Redis) passes
the same contract tests; the windows are proven on each of them with the clock
moved, never by sleeping.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.conftest import REDIS_URL, skip_or_fail
from twofold.errors import Throttled
from twofold.store.db import Database
from twofold.store.models import ThrottleFailure
from twofold.throttle import (
    CODE_PER_ACCOUNT,
    DAY,
    PASSWORD_PER_ACCOUNT,
    PASSWORD_PER_CLIENT,
    PASSWORD_PER_IP,
    Blocked,
    DatabaseFailureStore,
    Limit,
    RedisFailureStore,
    Reservation,
    Rule,
    Throttle,
    account_client_prefix,
    password_checks,
    subject_key,
    wait_seconds,
)

STORES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=STORES)
def store_backend(request) -> str:
    return request.param


@pytest.fixture
def backend(store_backend) -> str:
    """The database under the test; the Redis store runs beside SQLite."""
    return "sqlite" if store_backend == "redis" else store_backend


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own, deleted afterwards."""
    if not REDIS_URL:
        skip_or_fail("TWOFOLD_TEST_REDIS_URL is not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"twofold-test:{uuid.uuid4().hex}:"
    yield prefix
    for name in client.scan_iter(match=prefix + "*"):
        client.delete(name)
    client.close()


class Harness:
    """A throttle on one store, with the database transactions the callers would use."""

    def __init__(self, *, make_store, database_url: str, clock) -> None:
        self.make_store = make_store
        self.store = make_store()
        self.db = Database(database_url, pool_size=2)
        self.clock = clock
        self.throttle = Throttle(store=self.store, clock=clock)

    def restarted(self) -> Harness:
        """The same storage seen by a new process: new store object, new database engine."""
        return Harness(make_store=self.make_store, database_url=self.db.url, clock=self.clock)

    def hit(self, rule: Rule, key: str) -> int:
        with self.db.transaction() as s:
            return self.throttle.hit(s, [(rule, key)])

    def wait(self, rule: Rule, key: str) -> int:
        with self.db.reading() as s:
            return self.throttle.retry_after(s, [(rule, key)])

    def add(self, key: str, at: float, keep: int) -> None:
        with self.db.transaction() as s:
            self.store.add(s, key, at, keep)

    def failures(self, key: str, since: float) -> list[float]:
        with self.db.reading() as s:
            return sorted(self.store.failures(s, key, since))


@pytest.fixture
def harness(store_backend, database_url, clock, request):
    if store_backend == "redis":
        import redis

        prefix = request.getfixturevalue("redis_prefix")
        make_store = lambda: RedisFailureStore(redis.Redis.from_url(REDIS_URL), prefix=prefix)  # noqa: E731
    else:
        make_store = DatabaseFailureStore
    built = Harness(make_store=make_store, database_url=database_url, clock=clock)
    yield built
    built.db.dispose()


def now(clock) -> float:
    return clock.now().timestamp()


# -- the rules as the issue states them --------------------------------------


@pytest.mark.parametrize(
    ("rule", "limits"),
    [
        (CODE_PER_ACCOUNT, [(300, 5), (3600, 20), (DAY, 50)]),
        (PASSWORD_PER_CLIENT, [(300, 5), (3600, 20), (DAY, 50)]),
        (PASSWORD_PER_ACCOUNT, [(300, 10), (3600, 40), (DAY, 100)]),
        (PASSWORD_PER_IP, [(300, 50), (3600, 200), (DAY, 500)]),
    ],
    ids=["code-per-account", "password-per-account-and-client", "password-account-ceiling", "password-per-ip"],
)
def test_the_limits_per_five_minutes_hour_and_day(rule, limits):
    assert [(limit.window_seconds, limit.max_failures) for limit in rule.limits] == limits


FIVE = Rule("t", (Limit(300, 5),))


@pytest.mark.parametrize(
    ("failures", "now", "expected"),
    [
        ([], 1000.0, 0),
        ([900.0, 910, 920, 930], 1000.0, 0),  # four: still allowed
        ([900.0, 910, 920, 930, 940], 1000.0, 200),  # the fifth blocks until the first leaves
        ([700.0, 910, 920, 930, 940], 1000.0, 0),  # the first already left the window
        ([900.5, 910, 920, 930, 940], 1000.0, 201),  # a partial second is rounded up
        ([900.0, 910, 920, 930, 940, 950], 1000.0, 210),  # six: the second must leave too
        ([950.0, 940, 930, 920, 910, 900], 1000.0, 210),  # order does not matter
    ],
)
def test_wait_seconds_is_the_time_until_the_window_is_below_its_limit(failures, now, expected):
    assert wait_seconds(FIVE, failures, now) == expected


def test_subject_keys_do_not_keep_the_email_readable():
    key = subject_key(PASSWORD_PER_ACCOUNT, "dr.lee@riverside.example")
    assert "riverside" not in key and "lee" not in key
    assert key == subject_key(PASSWORD_PER_ACCOUNT, "dr.lee@riverside.example")
    assert key != subject_key(PASSWORD_PER_IP, "dr.lee@riverside.example")


def test_throttled_says_how_long_to_wait():
    error = Throttled(125, "code attempts")
    assert error.retry_after == 125 and error.code == "throttled"
    assert "Try again in 3 minutes" in error.message
    assert Throttled(0).retry_after == 1  # never "wait 0 seconds"


# -- the storage contract, on every store --------------------------------------


def test_store_returns_failures_strictly_after_since(harness, clock):
    t = now(clock)
    for offset in (0, 10, 20):
        harness.add("k", t + offset, 300)
    assert harness.failures("k", t) == pytest.approx([t + 10, t + 20])
    assert harness.failures("k", t - 1) == pytest.approx([t, t + 10, t + 20])


def test_store_keeps_keys_apart(harness, clock):
    harness.add("a", now(clock), 300)
    assert harness.failures("b", 0) == []
    assert len(harness.failures("a", 0)) == 1


def test_store_drops_failures_older_than_kept(harness, clock):
    t = now(clock)
    harness.add("k", t, 300)
    harness.add("k", t + 301, 300)
    assert harness.failures("k", 0) == pytest.approx([t + 301])


def test_store_counts_two_failures_at_the_same_moment(harness, clock):
    t = now(clock)
    harness.add("k", t, 300)
    harness.add("k", t, 300)
    assert len(harness.failures("k", t - 1)) == 2


def test_failures_survive_a_restart(harness, clock):
    for _ in range(5):
        harness.hit(CODE_PER_ACCOUNT, "code:user:1")
    again = harness.restarted()
    try:
        assert again.wait(CODE_PER_ACCOUNT, "code:user:1") == 300
    finally:
        again.db.dispose()


# -- the windows, on every store ---------------------------------------------


def test_four_failures_leave_the_account_free(harness, clock):
    for _ in range(4):
        assert harness.hit(CODE_PER_ACCOUNT, "k") == 0
        clock.advance(seconds=10)
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 0


def test_the_fifth_failure_in_five_minutes_blocks_until_the_first_leaves_the_window(harness, clock):
    for _ in range(4):
        harness.hit(CODE_PER_ACCOUNT, "k")
        clock.advance(seconds=30)
    assert harness.hit(CODE_PER_ACCOUNT, "k") == 300 - 4 * 30
    clock.advance(seconds=100)
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 80
    clock.advance(seconds=80)
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 0


def test_the_throttle_check_raises_with_retry_after(harness, clock):
    for _ in range(5):
        harness.hit(CODE_PER_ACCOUNT, "k")
    with harness.db.reading() as s, pytest.raises(Throttled) as caught:
        harness.throttle.check(s, [(CODE_PER_ACCOUNT, "k")], "code attempts")
    assert caught.value.retry_after == 300


def test_twenty_failures_in_an_hour_block_until_the_first_is_an_hour_old(harness, clock):
    start = now(clock)
    for batch in range(4):  # 5 failures, wait out the 5 minutes, again: 20 in 15 minutes
        for _ in range(5):
            harness.hit(CODE_PER_ACCOUNT, "k")
        if batch < 3:
            clock.advance(seconds=300)
            assert harness.wait(CODE_PER_ACCOUNT, "k") == 0
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 3600 - (now(clock) - start)
    clock.advance(seconds=300)  # the 5-minute window is clear, the hour is not
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 3600 - (now(clock) - start)
    clock.set(datetime.fromtimestamp(start + 3600, UTC))
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 0


def test_fifty_failures_in_a_day_block_until_the_first_is_a_day_old(harness, clock):
    start = now(clock)
    for i in range(50):  # one every 25 minutes: never 5 in 5 minutes, never 20 in an hour
        blocked = harness.hit(CODE_PER_ACCOUNT, "k")
        if i < 49:
            assert blocked == 0
            clock.advance(minutes=25)
    assert blocked == DAY - (now(clock) - start)
    clock.advance(seconds=blocked - 1)
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 1
    clock.advance(seconds=1)
    assert harness.wait(CODE_PER_ACCOUNT, "k") == 0


def test_fifty_failures_per_address_in_five_minutes_block_the_address(harness, clock):
    key = subject_key(PASSWORD_PER_IP, "203.0.113.7")
    for _ in range(49):
        harness.hit(PASSWORD_PER_IP, key)
    assert harness.wait(PASSWORD_PER_IP, key) == 0
    assert harness.hit(PASSWORD_PER_IP, key) == 300


def test_the_longest_wait_of_several_keys_is_the_answer(harness, clock):
    for _ in range(5):
        harness.hit(PASSWORD_PER_CLIENT, "account")
    clock.advance(seconds=100)
    with harness.db.reading() as s:
        wait = harness.throttle.retry_after(s, [(PASSWORD_PER_IP, "address"), (PASSWORD_PER_CLIENT, "account")])
    assert wait == 200


def test_database_store_writes_in_the_callers_transaction(backend, database_url, clock):
    """A rolled-back transaction leaves no failure behind (the row rides on the caller's commit)."""
    db = Database(database_url, pool_size=2)
    try:
        store = DatabaseFailureStore()

        def add_then_roll_back() -> None:
            with db.transaction() as s:
                store.add(s, "k", now(clock), 300)
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            add_then_roll_back()
        with db.reading() as s:
            assert s.execute(select(ThrottleFailure)).scalars().all() == []
    finally:
        db.dispose()


@pytest.mark.redis
def test_redis_keys_carry_the_prefix_and_expire(redis_prefix, clock):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        store = RedisFailureStore(client, prefix=redis_prefix)
        store.add(None, "code:user:7", now(clock), 300)
        names = [n.decode() for n in client.scan_iter(match=redis_prefix + "*")]
        assert names == [redis_prefix + "code:user:7"]
        assert 0 < client.ttl(names[0]) <= 360
    finally:
        client.close()


# -- reservations: a guess is counted before it is judged -----------------------------------


def reserve(harness, checks):
    with harness.db.transaction() as s:
        return harness.throttle.reserve(s, checks)


def test_a_reservation_counts_until_released(harness, clock):
    checks = [(PASSWORD_PER_CLIENT, "client"), (PASSWORD_PER_IP, "address")]
    held = [reserve(harness, checks) for _ in range(5)]
    assert all(isinstance(r, Reservation) for r in held)
    blocked = reserve(harness, checks)
    assert isinstance(blocked, Blocked) and blocked.key == "client" and blocked.wait == 300
    assert harness.wait(PASSWORD_PER_IP, "address") == 0  # a refused reservation records nothing
    assert len(harness.failures("address", now(clock) - 300)) == 5
    with harness.db.transaction() as s:
        harness.throttle.release(s, held[0])
    assert harness.wait(PASSWORD_PER_CLIENT, "client") == 0
    assert len(harness.failures("client", now(clock) - 300)) == 4
    assert len(harness.failures("address", now(clock) - 300)) == 4


def test_reservations_at_one_moment_are_released_one_by_one(harness, clock):
    first, second = reserve(harness, [(PASSWORD_PER_CLIENT, "k")]), reserve(harness, [(PASSWORD_PER_CLIENT, "k")])
    with harness.db.transaction() as s:
        harness.throttle.release(s, first)
    assert harness.failures("k", now(clock) - 300) == [now(clock)]
    assert isinstance(second, Reservation)


def test_clearing_forgets_a_key_and_every_key_under_a_prefix(harness, clock):
    for key in ("password:a", "password-client:a:1", "password-client:a:2", "password-client:b:1"):
        harness.hit(PASSWORD_PER_CLIENT, key)
    with harness.db.transaction() as s:
        harness.throttle.clear(s, ["password:a", "password-client:a:"])
    since = now(clock) - 300
    remaining = {
        k
        for k in ("password:a", "password-client:a:1", "password-client:a:2", "password-client:b:1")
        if harness.failures(k, since)
    }
    assert remaining == {"password-client:b:1"}


def test_a_known_browser_is_counted_on_its_own_key_only():
    known = password_checks("dr.lee@riverside.example", "203.0.113.7", known_browser="b1")
    unknown = password_checks("dr.lee@riverside.example", "203.0.113.7")
    assert [rule for rule, _ in known] == [PASSWORD_PER_CLIENT, PASSWORD_PER_IP]
    assert [rule for rule, _ in unknown] == [PASSWORD_PER_ACCOUNT, PASSWORD_PER_CLIENT, PASSWORD_PER_IP]
    assert known[0][1] != unknown[1][1]
    assert all(
        key.startswith(account_client_prefix("dr.lee@riverside.example")) for key in (known[0][1], unknown[1][1])
    )
