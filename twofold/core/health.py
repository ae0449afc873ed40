"""Is this process able to serve? For load balancers, orchestrators and operators.

Three questions, three answers: ``alive`` (the process answers at all), ``check`` (the
database answers one indexed read and is migrated) and ``ready`` (everything a sign-in
needs answers: the database and, when configured, Redis).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from twofold.errors import Unavailable
from twofold.store.db import Database
from twofold.store.models import AuditChainHead
from twofold.throttle import FailureStore

log = logging.getLogger("twofold.health")

# The first migration writes this row; reading it proves the database answers and is migrated.
PROBE_CHAIN = 0


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each dependency's state (``"ok"`` or what is wrong), and the first failure's error if any."""

    checks: dict[str, str]
    error: Unavailable | None


@dataclass(kw_only=True, slots=True)
class HealthCheck:
    db: Database
    counters: FailureStore

    def check(self) -> None:
        """Return when the database answers one primary-key read; raise ``Unavailable`` otherwise."""
        try:
            with self.db.reading() as s:
                head = s.get(AuditChainHead, PROBE_CHAIN)
        except SQLAlchemyError as exc:
            log.warning("health check: database error %s", type(exc).__name__)
            raise Unavailable() from exc
        if head is None:
            raise Unavailable("The database is not migrated. Run: twofold db upgrade")

    def ready(self) -> Readiness:
        """The database and the throttle's store (Redis, when configured), each checked, none skipped."""
        checks: dict[str, str] = {}
        error: Unavailable | None = None
        probes = [("database", self.check)]
        if self.counters.name != "database":  # throttle rows in the database are covered by its check
            probes.append((self.counters.name, self.counters.ready))
        for name, probe in probes:
            try:
                probe()
                checks[name] = "ok"
            except Unavailable as exc:
                checks[name] = exc.code
                error = error or exc
        return Readiness(checks=checks, error=error)
