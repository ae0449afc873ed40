"""Throttling of failed attempts, shared by every process.

Sliding windows over the timestamps of recent failures: a key is blocked while
any window holds its limit. The failures live in Redis when configured (one
sorted set per key) and in the database otherwise, so both survive a restart of
Twofold and are seen by every worker.

Check before verifying anything, hit on every failing branch (Warehouse's
``_check_2fa_ratelimits`` pattern): while blocked, even a right answer is refused.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.errors import Throttled
from twofold.store.models import ThrottleFailure
from twofold.store.prepared import Prepared

DAY = 86400


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


# Code guesses per account, every method together (issue 2, item 4).
CODE_PER_ACCOUNT = Rule("code", (Limit(300, 5), Limit(3600, 20), Limit(DAY, 50)))
# Password guesses per account: the same numbers.
PASSWORD_PER_ACCOUNT = Rule("password", (Limit(300, 5), Limit(3600, 20), Limit(DAY, 50)))
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


def password_checks(email: str, ip: str | None = None) -> list[tuple[Rule, str]]:
    """The throttle keys of one password guess: the account's, and the client address's when known."""
    checks = [(PASSWORD_PER_ACCOUNT, subject_key(PASSWORD_PER_ACCOUNT, email))]
    if ip:
        checks.append((PASSWORD_PER_IP, subject_key(PASSWORD_PER_IP, ip)))
    return checks


def code_throttle_key(user_id: int) -> tuple[Rule, str]:
    """Every second-factor method of an account shares one throttle: switching gives no fresh tries."""
    return (CODE_PER_ACCOUNT, f"code:user:{user_id}")


class FailureStore(Protocol):
    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        """Unix times of failures recorded for ``key`` after ``since``."""

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        """Record one failure; drop those older than ``keep_seconds``."""


# Built once: checked on every sign-in step, and building the expression costs more than running it.
_FAILURES_SINCE = Prepared(
    select(ThrottleFailure.at).where(ThrottleFailure.key == bindparam("key"), ThrottleFailure.at > bindparam("since"))
)


class DatabaseFailureStore:
    """Failures as rows, written in the caller's transaction."""

    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        from datetime import UTC

        if session is None:
            raise RuntimeError("DatabaseFailureStore reads in the caller's transaction")
        rows = _FAILURES_SINCE.execute(session, {"key": key, "since": datetime.fromtimestamp(since, UTC)}).scalars()
        return [row.timestamp() for row in rows]

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        from datetime import UTC

        if session is None:
            raise RuntimeError("DatabaseFailureStore writes in the caller's transaction")
        moment = datetime.fromtimestamp(at, UTC)
        session.execute(
            delete(ThrottleFailure).where(
                ThrottleFailure.key == key, ThrottleFailure.at < moment - timedelta(seconds=keep_seconds)
            )
        )
        session.add(ThrottleFailure(key=key, at=moment))


class RedisFailureStore:
    """Failures in one sorted set per key, scored by time."""

    def __init__(self, client, prefix: str = "twofold:throttle:") -> None:
        self._redis = client
        self._prefix = prefix

    def failures(self, session: Session | None, key: str, since: float) -> list[float]:
        return [
            score
            for _member, score in self._redis.zrangebyscore(self._prefix + key, f"({since}", "+inf", withscores=True)
        ]

    def add(self, session: Session | None, key: str, at: float, keep_seconds: int) -> None:
        name = self._prefix + key
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(name, {uuid.uuid4().hex: at})
        pipe.zremrangebyscore(name, "-inf", at - keep_seconds)
        pipe.expire(name, keep_seconds + 60)
        pipe.execute()


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

    def check(self, session: Session | None, checks: Iterable[tuple[Rule, str]], what: str = "attempts") -> None:
        """Raise ``Throttled`` while any key is blocked."""
        wait = self.retry_after(session, list(checks))
        if wait:
            raise Throttled(wait, what)

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
