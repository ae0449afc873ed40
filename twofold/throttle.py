"""Throttling of failed attempts, shared by every process.

Sliding windows over the timestamps of recent failures: a key is blocked while
any window holds its limit. The failures live in Redis when configured (one
sorted set per key) and in the database otherwise, so both survive a restart of
Twofold and are seen by every worker.

Check before verifying anything, hit on every failing branch (Warehouse's
``_check_2fa_ratelimits`` pattern): while blocked, even a right answer is refused.

Password guesses go further: ``reserve`` records the failure *before* the
argon2 check, atomically with the check of every window (a Lua script in Redis,
an advisory lock or SQLite's single writer in the database), and a right
password releases it. So a burst of parallel guesses spread over any number of
processes and machines gets exactly the allowed number judged, never one per
worker more.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from redis.exceptions import RedisError
from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.errors import RedisUnavailable, Throttled
from twofold.store.models import ThrottleFailure
from twofold.store.prepared import Prepared

DAY = 86400

log = logging.getLogger("twofold.throttle")


@dataclass(frozen=True)
class Limit:
    window_seconds: int
    max_failures: int


@dataclass(frozen=True)
class Rule:
    """Named windows, e.g. 5 per 5 minutes, 20 per hour, 50 per day."""

    name: str
    limits: tuple[Limit, ...]

    @property
    def horizon(self) -> int:
        return max(limit.window_seconds for limit in self.limits)


# Code guesses per account, every method together.
CODE_PER_ACCOUNT = Rule("code", (Limit(300, 5), Limit(3600, 20), Limit(DAY, 50)))
# Password guesses per account *and* client (a client address, a browser the account knows, or a
# signed-in member re-authenticating): 5 per 5 minutes, 20 per hour, 50 per day. One attacker
# locks out only themselves.
PASSWORD_PER_CLIENT = Rule("password-client", (Limit(300, 5), Limit(3600, 20), Limit(DAY, 50)))
# The account-wide ceiling: every client the account does not know, together. Twice the
# per-client numbers, so a guesser from one place cannot lock the member out everywhere, and a
# spread-out guess (a botnet) still gets at most 100 a day (NIST SP 800-63B-4 allows 100). It does
# not apply to a browser that signed in to the account before (OWASP's device cookie).
PASSWORD_PER_ACCOUNT = Rule("password", (Limit(300, 10), Limit(3600, 40), Limit(DAY, 100)))
# Per client address: a practice's staff share one NAT address, so the limits are
# ten times the per-account ones; enough for a busy front desk, not for a spray.
PASSWORD_PER_IP = Rule("password-ip", (Limit(300, 50), Limit(3600, 200), Limit(DAY, 500)))


def wait_seconds(rule: Rule, failures: Sequence[float], now: float) -> int:
    """Seconds until every window of ``rule`` is below its limit; 0 if it is already."""
    wait = 0.0
    ordered = sorted(failures)
    for limit in rule.limits:
        inside = [t for t in ordered if t > now - limit.window_seconds]
        excess = len(inside) - limit.max_failures
        if excess >= 0:
            # The (excess+1)-th oldest failure must leave the window.
            wait = max(wait, inside[excess] + limit.window_seconds - now)
    return int(wait) + (1 if wait % 1 else 0)


def subject_key(rule: Rule, subject: str) -> str:
    """A storage key; the subject (an email or address) is hashed so it is not kept readable."""
    return f"{rule.name}:{hashlib.sha256(subject.encode()).hexdigest()[:40]}"


def client_key(email: str, client: str) -> str:
    """The key of one account and one client; every client key of an account shares a prefix."""
    return f"{account_client_prefix(email)}{hashlib.sha256(client.encode()).hexdigest()[:32]}"


def account_client_prefix(email: str) -> str:
    return f"{PASSWORD_PER_CLIENT.name}:{hashlib.sha256(email.encode()).hexdigest()[:40]}:"


def password_checks(
    email: str, ip: str | None = None, *, known_browser: str | None = None, client: str | None = None
) -> list[tuple[Rule, str]]:
    """The throttle keys of one password guess.

    From a browser the account knows (``known_browser``, the id in its device cookie), or from a
    client that is itself known (``client``, such as "signed-in" for re-authentication): that
    client's own key only, so guesses from elsewhere never lock it out. From anywhere else: the
    account-wide ceiling (first) and the account-and-address key. The address's own limit over
    every account is added whenever the address is known.
    """
    if known_browser or client:
        checks = [
            (PASSWORD_PER_CLIENT, client_key(email, f"browser:{known_browser}" if known_browser else client or ""))
        ]
    else:
        checks = [
            (PASSWORD_PER_ACCOUNT, subject_key(PASSWORD_PER_ACCOUNT, email)),
            (PASSWORD_PER_CLIENT, client_key(email, f"ip:{ip or 'unknown'}")),  # no address: one client
        ]
    if ip:
        checks.append((PASSWORD_PER_IP, subject_key(PASSWORD_PER_IP, ip)))
    return checks


def account_lock_keys(email: str, user_id: int | None) -> list[str]:
    """Every key (or key prefix, ending in ":") that can lock an account out of signing in."""
    keys = [subject_key(PASSWORD_PER_ACCOUNT, email), account_client_prefix(email)]
    if user_id is not None:
        keys.append(code_throttle_key(user_id)[1])
    return keys


def code_throttle_key(user_id: int) -> tuple[Rule, str]:
    """Every second-factor method of an account shares one throttle: switching gives no fresh tries."""
    return (CODE_PER_ACCOUNT, f"code:user:{user_id}")


class FailureStore(Protocol):
    name: str  # where the failures live, as readiness reports it: "database" or "redis"

    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        """Unix times of failures recorded for ``key`` after ``since``."""

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        """Record one failure; drop those older than ``keep_seconds``."""

    def ready(self) -> None:
        """Return when the store answers; raise ``Unavailable`` when it does not."""

    def persistence_problem(self) -> str | None:
        """Why failures recorded now could be forgotten by a restart of the store; None when they survive."""

    def reserve(self, session: Session | None, checks: Sequence[tuple[Rule, str]], at: float) -> tuple[int, object]:
        """Atomically: when no check blocks at ``at``, record a failure on every key and return ``(-1, token)``;
        else record nothing and return ``(index of a blocking check, None)``."""

    def release(self, session: Session | None, keys: Sequence[str], token: object) -> None:
        """Take back the failures ``reserve`` recorded under ``token``."""

    def clear(self, session: Session | None, keys: Sequence[str]) -> None:
        """Forget every failure of ``keys``; a key ending in ":" is a prefix of keys."""


# Built once: checked on every sign-in step, and building the expression costs more than running it.
_FAILURES_SINCE = Prepared(
    select(ThrottleFailure.at).where(ThrottleFailure.key == bindparam("key"), ThrottleFailure.at > bindparam("since"))
)


class DatabaseFailureStore:
    """Failures as rows, written in the caller's transaction."""

    name = "database"

    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        if session is None:
            raise RuntimeError("DatabaseFailureStore reads in the caller's transaction")
        rows = _FAILURES_SINCE.execute(session, {"key": key, "since": datetime.fromtimestamp(since, UTC)}).scalars()
        return [row.timestamp() for row in rows]

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        if session is None:
            raise RuntimeError("DatabaseFailureStore writes in the caller's transaction")
        self._insert(session, key, at, keep_seconds)

    def _insert(self, session: Session, key: str, at: float, keep_seconds: int) -> ThrottleFailure:
        moment = datetime.fromtimestamp(at, UTC)
        session.execute(
            delete(ThrottleFailure).where(
                ThrottleFailure.key == key, ThrottleFailure.at < moment - timedelta(seconds=keep_seconds)
            )
        )
        row = ThrottleFailure(key=key, at=moment)
        session.add(row)
        return row

    def reserve(self, session: Session | None, checks: Sequence[tuple[Rule, str]], at: float) -> tuple[int, object]:
        if session is None:
            raise RuntimeError("DatabaseFailureStore reserves in the caller's transaction")
        keys = sorted({key for _rule, key in checks})
        if session.get_bind().dialect.name == "postgresql":
            # Guesses about one key wait for each other here until the transaction ends; SQLite's
            # writing transactions are one at a time already. Sorted, so two never deadlock.
            for key in keys:
                session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
        for index, (rule, key) in enumerate(checks):
            if wait_seconds(rule, self.failures(session, key, at - rule.horizon), at):
                return index, None
        reserved = [self._insert(session, key, at, rule.horizon) for rule, key in checks]
        session.flush()
        return -1, [row.id for row in reserved]

    def release(self, session: Session | None, keys: Sequence[str], token: object) -> None:
        if session is None:
            raise RuntimeError("DatabaseFailureStore releases in the caller's transaction")
        ids = list(token) if isinstance(token, (list, tuple)) else []
        if ids:
            session.execute(delete(ThrottleFailure).where(ThrottleFailure.id.in_(ids)))

    def clear(self, session: Session | None, keys: Sequence[str]) -> None:
        if session is None:
            raise RuntimeError("DatabaseFailureStore clears in the caller's transaction")
        exact = [key for key in keys if not key.endswith(":")]
        prefixes = [key for key in keys if key.endswith(":")]
        session.execute(
            delete(ThrottleFailure).where(
                or_(
                    ThrottleFailure.key.in_(exact),
                    *(ThrottleFailure.key.startswith(p, autoescape=True) for p in prefixes),
                )
            )
        )

    def ready(self) -> None:
        """The rows live in the database, whose health is checked on its own."""

    def persistence_problem(self) -> str | None:
        return None


# Reserve a failure on every key, or on none when any window is full: one atomic step in Redis.
# KEYS: the keys; ARGV: now, member, then per key its horizon, its number of windows and
# (seconds, max failures) per window. Returns 0 when reserved, else the 1-based blocking key.
_RESERVE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local i = 3
local horizons = {}
for k = 1, #KEYS do
  horizons[k] = tonumber(ARGV[i])
  local windows = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, windows do
    local seconds = tonumber(ARGV[i])
    local most = tonumber(ARGV[i + 1])
    i = i + 2
    if redis.call('ZCOUNT', KEYS[k], '(' .. (now - seconds), '+inf') >= most then
      return k
    end
  end
end
for k = 1, #KEYS do
  redis.call('ZADD', KEYS[k], now, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now - horizons[k])
  redis.call('EXPIRE', KEYS[k], horizons[k] + 60)
end
return 0
"""


@contextmanager
def _redis_answers() -> Iterator[None]:
    """A Redis that is down, restarting or too slow is ``RedisUnavailable`` (503), never a 500.

    Guesses are not let through unthrottled while Redis is away: failing open would hand
    an attacker unlimited tries for as long as they can keep Redis busy.
    """
    try:
        yield
    except RedisError as exc:
        log.warning("redis unavailable: %s", type(exc).__name__)
        raise RedisUnavailable() from exc


class RedisFailureStore:
    """Failures in one sorted set per key, scored by time.

    Redis must keep them across its own restart (``appendonly yes``): a Redis that
    forgets them gives every attacker fresh tries. ``persistence_problem`` says
    whether it does; ``twofold serve`` refuses a production Redis that does not.
    """

    name = "redis"

    def __init__(self, client, prefix: str = "twofold:throttle:") -> None:
        self._redis = client
        self._prefix = prefix

    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        with _redis_answers():
            found = self._redis.zrangebyscore(self._prefix + key, f"({since}", "+inf", withscores=True)
        return [score for _member, score in found]

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        name = self._prefix + key
        with _redis_answers():
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(name, {uuid.uuid4().hex: at})
            pipe.zremrangebyscore(name, "-inf", at - keep_seconds)
            pipe.expire(name, keep_seconds + 60)
            pipe.execute()

    def ready(self) -> None:
        with _redis_answers():
            self._redis.ping()

    def persistence_problem(self) -> str | None:
        with _redis_answers():
            info = self._redis.info("persistence")
        if str(info.get("aof_enabled", "0")) == "1":
            return None
        return (
            "Redis keeps the sign-in throttle's counters in memory only (appendonly is off), so a Redis restart "
            "forgets every failed guess and gives attackers fresh tries. Turn on its append-only file: "
            "'appendonly yes' in redis.conf (or CONFIG SET appendonly yes, then CONFIG REWRITE)."
        )

    def reserve(self, session: Session | None, checks: Sequence[tuple[Rule, str]], at: float) -> tuple[int, object]:
        member = uuid.uuid4().hex
        args: list[object] = [repr(at), member]
        for rule, _key in checks:
            args += [rule.horizon, len(rule.limits)]
            for limit in rule.limits:
                args += [limit.window_seconds, limit.max_failures]
        with _redis_answers():
            blocking = int(self._redis.eval(_RESERVE, len(checks), *(self._prefix + key for _r, key in checks), *args))
        return (blocking - 1, None) if blocking else (-1, member)

    def release(self, session: Session | None, keys: Sequence[str], token: object) -> None:
        with _redis_answers():
            pipe = self._redis.pipeline(transaction=True)
            for key in keys:
                pipe.zrem(self._prefix + key, token)
            pipe.execute()

    def clear(self, session: Session | None, keys: Sequence[str]) -> None:
        names = [self._prefix + key for key in keys if not key.endswith(":")]
        with _redis_answers():
            for prefix in (key for key in keys if key.endswith(":")):
                names += self._redis.scan_iter(match=_glob_escape(self._prefix + prefix) + "*", count=500)
            if names:
                self._redis.delete(*names)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A failure recorded ahead of a password check: kept when the guess was wrong, released when right."""

    checks: tuple[tuple[Rule, str], ...]
    token: object


@dataclass(frozen=True, slots=True)
class Blocked:
    """A reservation refused: the wait, and the key whose window is full."""

    wait: int
    key: str


@dataclass(kw_only=True, slots=True)
class Throttle:
    store: FailureStore
    clock: Clock
    stripes: int = 256
    _locks: list[threading.Lock] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._locks = [threading.Lock() for _ in range(self.stripes)]

    @contextmanager
    def one_at_a_time(self, subject: str) -> Iterator[None]:
        """Hold while checking, verifying and recording one guess about ``subject`` (an account).

        Password checks run outside any transaction (argon2 must not hold a database
        lock), so without this, a burst of parallel guesses would all read the same
        counters before any failure is recorded. Striped locks serialise guesses per
        account within a process; across processes a burst gains at most one guess
        per worker.
        """
        with self._locks[hash(subject) % len(self._locks)]:
            yield

    def retry_after(self, session: Session | None, checks: Iterable[tuple[Rule, str]]) -> int:
        """Seconds to wait before another attempt may be made; 0 when allowed."""
        now = self.clock.now().timestamp()
        wait = 0
        for rule, key in checks:
            wait = max(wait, wait_seconds(rule, self.store.failures(session, key, now - rule.horizon), now))
        return wait

    def blocking(self, session: Session | None, checks: Iterable[tuple[Rule, str]]) -> Blocked | None:
        """The longest wait of ``checks`` and the key that causes it; None when none blocks."""
        now = self.clock.now().timestamp()
        worst: Blocked | None = None
        for rule, key in checks:
            wait = wait_seconds(rule, self.store.failures(session, key, now - rule.horizon), now)
            if wait and (worst is None or wait > worst.wait):
                worst = Blocked(wait, key)
        return worst

    def check(self, session: Session | None, checks: Iterable[tuple[Rule, str]], what: str = "attempts") -> None:
        """Raise ``Throttled`` while any key is blocked."""
        wait = self.retry_after(session, list(checks))
        if wait:
            raise Throttled(wait, what)

    @property
    def in_database(self) -> bool:
        """Whether the counters live in the database (then every call needs a session)."""
        return isinstance(self.store, DatabaseFailureStore)

    def reserve(self, session: Session | None, checks: Iterable[tuple[Rule, str]]) -> Reservation | Blocked:
        """Count one guess as failed before judging it, unless a window is already full (then nothing changes).

        Atomic across processes and machines: of any burst, exactly as many get a
        reservation as the limits allow.
        """
        checks = tuple(checks)
        now = self.clock.now().timestamp()
        index, token = self.store.reserve(session, checks, now)
        if index < 0:
            return Reservation(checks, token)
        rule, key = checks[index]
        wait = wait_seconds(rule, self.store.failures(session, key, now - rule.horizon), now)
        return Blocked(max(1, wait), key)

    def release(self, session: Session | None, reservation: Reservation) -> None:
        """Take a reservation back: the guess was right."""
        self.store.release(session, [key for _rule, key in reservation.checks], reservation.token)

    def clear(self, session: Session | None, keys: Sequence[str]) -> None:
        """Forget the failures of ``keys`` (a key ending in ":" names every key it begins)."""
        self.store.clear(session, keys)

    def tries_left(self, session: Session | None, checks: Iterable[tuple[Rule, str]]) -> int:
        """How many more failures the keys take before a wait starts (0: the next attempt waits)."""
        now = self.clock.now().timestamp()
        left = None
        for rule, key in checks:
            failures = self.store.failures(session, key, now - rule.horizon)
            for limit in rule.limits:
                recent = sum(1 for at in failures if at > now - limit.window_seconds)
                room = max(0, limit.max_failures - recent)
                left = room if left is None else min(left, room)
        return left if left is not None else 0

    def hit(self, session: Session | None, checks: Iterable[tuple[Rule, str]]) -> int:
        """Record a failure against each key; return the wait it caused (0: none yet)."""
        checks = list(checks)
        now = self.clock.now().timestamp()
        for rule, key in checks:
            self.store.add(session, key, now, rule.horizon)
        return self.retry_after(session, checks)
