"""Is this process able to serve? One indexed read, for load balancers and operators."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from twofold.errors import Unavailable
from twofold.store.db import Database
from twofold.store.models import AuditChainHead

log = logging.getLogger("twofold.health")

# The first migration writes this row; reading it proves the database answers and is migrated.
PROBE_CHAIN = 0


@dataclass(kw_only=True, slots=True)
class HealthCheck:
    db: Database

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
