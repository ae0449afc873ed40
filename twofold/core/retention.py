"""Purging what has ended: expired sign-in flows and codes, ended sessions, remembered browsers
and set-up links, old throttle failures. The audit log is never touched.

Why purge at all: each of these rows holds personal data (an IP address, a browser) or a
hash of a credential, and keeps it for no one once it has ended (GDPR art. 5(1)(e),
storage limitation); and tables that only grow make every lookup and backup slower.

What is kept: every audit event, which records each sign-in, refusal, session end and
set-up by itself (with its own IP and browser), so an investigation never needs the
purged rows. Rows that ended less than ``keep_days`` ago are kept too, so the Security
page, a set-up link's "already used" answer and an operator with ``psql`` still see
recent history. Rows that are live are never purged, whatever their age.

Each kind is deleted in batches, each batch its own short transaction, so a purge of a
large backlog never holds SQLite's single write turn (or PostgreSQL row locks) for long.
Other features add their own kinds with ``Retention.rules.append(PurgeRule(...))``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from twofold.clock import Clock
from twofold.errors import Unavailable
from twofold.store.db import Database
from twofold.store.models import (
    EmailCode,
    RememberedBrowser,
    SetupLink,
    SignInFlow,
    ThrottleFailure,
    TotpCredential,
    UserSession,
    Workstation,
)
from twofold.throttle import DAY

log = logging.getLogger("twofold.retention")

BATCH = 2000
# Short-lived things (a sign-in flow, an emailed code, an unconfirmed app) are dead once expired;
# a day's grace keeps their "expired" answer (rather than "not found") for whoever comes back late.
GRACE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PurgeRule:
    """One kind of row: which are purgeable, given now and the end of the keeping period."""

    name: str
    key: InstrumentedAttribute
    condition: Callable[[datetime, datetime], ColumnElement[bool]]


def _ended_before(revoked_at: InstrumentedAttribute, expires_at: InstrumentedAttribute, moment: datetime):
    return or_(revoked_at < moment, expires_at < moment)


DEFAULT_RULES = [
    PurgeRule("sign-in flows", SignInFlow.id, lambda now, kept: SignInFlow.expires_at < now - GRACE),
    PurgeRule("email codes", EmailCode.id, lambda now, kept: EmailCode.expires_at < now - GRACE),
    PurgeRule(
        "unconfirmed app set-ups",
        TotpCredential.id,
        lambda now, kept: and_(TotpCredential.confirmed_at.is_(None), TotpCredential.expires_at < now - GRACE),
    ),
    # Past its absolute end, signed out, or idle far longer than any practice's idle limit allows.
    PurgeRule(
        "sessions",
        UserSession.id,
        lambda now, kept: or_(
            _ended_before(UserSession.revoked_at, UserSession.expires_at, kept), UserSession.last_seen_at < kept
        ),
    ),
    PurgeRule(
        "remembered browsers",
        RememberedBrowser.id,
        lambda now, kept: _ended_before(RememberedBrowser.revoked_at, RememberedBrowser.expires_at, kept),
    ),
    PurgeRule(
        "set-up links",
        SetupLink.id,
        lambda now, kept: or_(SetupLink.used_at < kept, SetupLink.revoked_at < kept, SetupLink.expires_at < kept),
    ),
    # An unmarked shared workstation: its cookie counts for nothing, and its events stay in the audit log.
    PurgeRule("unmarked workstations", Workstation.id, lambda now, kept: Workstation.revoked_at < kept),
    # No throttle window is longer than a day: older failures count for nothing.
    PurgeRule(
        "throttle failures", ThrottleFailure.id, lambda now, kept: ThrottleFailure.at < now - timedelta(seconds=DAY)
    ),
]


@dataclass(kw_only=True)
class Retention:
    """Deletes what ended more than ``keep_days`` ago (short-lived things a day after expiry)."""

    db: Database
    clock: Clock
    keep_days: int = 30
    rules: list[PurgeRule] = field(default_factory=lambda: list(DEFAULT_RULES))
    batch: int = BATCH

    def purge(self) -> dict[str, int]:
        """Purge every kind; the number of rows deleted per kind, in rule order."""
        now = self.clock.now()
        kept = now - timedelta(days=self.keep_days)
        counts: dict[str, int] = {}
        for rule in self.rules:
            counts[rule.name] = self._purge(rule, now, kept)
        if any(counts.values()):
            log.info("purged %s", ", ".join(f"{n} {name}" for name, n in counts.items() if n))
        return counts

    def _purge(self, rule: PurgeRule, now: datetime, kept: datetime) -> int:
        table = rule.key.class_
        total = 0
        while True:
            with self.db.transaction() as s:
                ids = select(rule.key).where(rule.condition(now, kept)).limit(self.batch)
                result = s.execute(delete(table).where(rule.key.in_(ids)).execution_options(synchronize_session=False))
            deleted = cast(CursorResult, result).rowcount
            total += deleted
            if deleted < self.batch:
                return total


class ScheduledJob:
    """Runs ``job()`` about every ``interval`` seconds from a background thread of a server process,
    the first time between half and one and a half intervals after start, so the workers of a
    deployment spread out and a process that is restarted often still runs it. The jobs given
    here are idempotent: two processes running one at once do no harm."""

    def __init__(self, job: Callable[[], object], *, interval: float, name: str) -> None:
        self._job = job
        self._interval = interval
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"twofold-{self._name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        wait = self._interval * random.uniform(0.5, 1.5)  # noqa: S311 - spreading start times, not a secret
        while not self._stop.wait(wait):
            try:
                self._job()
            except Unavailable:
                log.warning("scheduled %s skipped: the database is unavailable", self._name)
            except Exception:  # a background job must never take the server down; the next pass tries again
                log.exception("scheduled %s failed", self._name)
            self.passes += 1
            wait = self._interval


class ScheduledPurge(ScheduledJob):
    """``retention.purge()`` on a schedule (deleting is idempotent)."""

    def __init__(self, retention: Retention, *, interval: float) -> None:
        super().__init__(retention.purge, interval=interval, name="purge")
