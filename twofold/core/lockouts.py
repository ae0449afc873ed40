"""Lock windows: one audit event when a throttle key locks, one summary when the lock is over.

An attacker who keeps sending refused sign-ins must not be able to flood (or, with
a size-capped log, rotate) the audit log. So the moment a counted failure locks a
key is audited once (``account:sign_in:locked_out``), and every request refused
while the key stays locked only adds one to a counter row. When the window is
over, the row becomes one ``account:sign_in:throttled`` event with the count. The
summary is written by the next failure or refusal anywhere (or by an unlock, or by
``summarise_due``), in that request's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.store.models import ThrottleWindow

SUMMARISED_PER_REQUEST = 20  # windows summarised by one request, so none waits long on a backlog


@dataclass(kw_only=True, slots=True)
class LockWindows:
    clock: Clock
    audit: AuditLog

    def locked(
        self,
        s: Session,
        *,
        key: str,
        wait: int,
        step: str,
        context: RequestContext,
        practice_id: int | None,
        subject_id: int | None,
    ) -> bool:
        """A failure just counted on ``key`` leaves it locked for ``wait`` seconds (0: not locked).

        Audits ``locked_out`` once per window, however many failures land in it; True when
        this failure opened the window.
        """
        if not wait:
            return False
        now = self.clock.now()
        self.summarise_due(s)
        started = self._upsert(
            s,
            key=key,
            step=step,
            now=now,
            until=now + timedelta(seconds=wait),
            refused=0,
            context=context,
            practice_id=practice_id,
            subject_id=subject_id,
        )
        if started:
            self.audit.record(
                s,
                EventTag.LOCKED_OUT,
                context=context,
                practice_id=practice_id,
                subject_id=subject_id,
                details={"step": step, "retry_after": wait},
            )
        return started

    def refused(
        self,
        s: Session,
        *,
        key: str | None,
        wait: int,
        step: str,
        context: RequestContext,
        practice_id: int | None,
        subject_id: int | None,
    ) -> None:
        """A request was refused because ``key`` is locked: count it in the key's window (no event now)."""
        now = self.clock.now()
        self.summarise_due(s)
        self._upsert(
            s,
            key=key or f"{step}:unknown",
            step=step,
            now=now,
            until=now + timedelta(seconds=wait),
            refused=1,
            context=context,
            practice_id=practice_id,
            subject_id=subject_id,
        )

    def summarise_due(self, s: Session) -> int:
        """Turn windows that are over into their summary events; return how many."""
        now = self.clock.now()
        due = self._locked_rows(s, ThrottleWindow.until <= now)
        self._summarise(s, due)
        return len(due)

    def end(self, s: Session, keys: Sequence[str]) -> None:
        """End the windows of ``keys`` now (an unlock); a key ending in ":" names every key it begins."""
        exact = [key for key in keys if not key.endswith(":")]
        prefixes = [key for key in keys if key.endswith(":")]
        rows = self._locked_rows(
            s,
            or_(ThrottleWindow.key.in_(exact), *(ThrottleWindow.key.startswith(p, autoescape=True) for p in prefixes)),
        )
        self._summarise(s, rows)

    # -- steps ---------------------------------------------------------------

    def _locked_rows(self, s: Session, where: Any) -> list[ThrottleWindow]:
        query = select(ThrottleWindow).where(where).order_by(ThrottleWindow.until).limit(SUMMARISED_PER_REQUEST)
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(s.execute(query).scalars())

    def _summarise(self, s: Session, rows: list[ThrottleWindow]) -> None:
        for row in rows:
            if row.refused:
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_THROTTLED,
                    context=RequestContext(ip=row.ip),
                    practice_id=row.practice_id,
                    subject_id=row.subject_id,
                    details={
                        "step": row.step,
                        "refused": row.refused,
                        "from": row.started_at.isoformat(),
                        "until": row.until.isoformat(),
                        "last_refused_at": row.last_refused_at.isoformat() if row.last_refused_at else None,
                    },
                )
            s.execute(delete(ThrottleWindow).where(ThrottleWindow.key == row.key))

    def _upsert(
        self,
        s: Session,
        *,
        key: str,
        step: str,
        now: datetime,
        until: datetime,
        refused: int,
        context: RequestContext,
        practice_id: int | None,
        subject_id: int | None,
    ) -> bool:
        """Open the window of ``key`` or extend the open one; True when it was opened."""
        values = {
            "key": key,
            "step": step[:32],
            "started_at": now,
            "until": until,
            "refused": refused,
            "last_refused_at": now if refused else None,
            "practice_id": practice_id,
            "subject_id": subject_id,
            "ip": context.ip,
        }
        insert = postgresql_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        table = cast(Table, ThrottleWindow.__table__)
        opened = s.execute(
            insert(table).values(**values).on_conflict_do_nothing(index_elements=[table.c.key]).returning(table.c.key)
        ).first()
        if opened is not None:
            return refused == 0
        updates: dict[str, Any] = {"until": case((table.c.until < until, until), else_=table.c.until)}
        if refused:
            updates["refused"] = table.c.refused + refused
            updates["last_refused_at"] = now
        s.execute(update(table).where(table.c.key == key).values(**updates))
        return False
