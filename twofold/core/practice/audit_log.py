"""Reading the audit log: a practice's events filtered and paged, CSV export, and chain verification.

The log is append-only and hash-chained per practice (core/audit.py): each event
stores the hash of the one before it and its own hash over every column. So
``verify`` walks a chain in order and names the first event that does not fit:
a changed row no longer matches its hash, a deleted one leaves a gap in the
sequence (or, at the end, disagrees with the chain's head), and rows put in
another order no longer link to their predecessor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import aliased

from twofold.audit import GENESIS, AuditLog, EventTag, event_hash, events_labelled
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.csv_stream import csv_line
from twofold.core.paging import PAGE_SIZE, Page
from twofold.errors import InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import AuditChainHead, AuditEvent, Practice, User

CHUNK = 1000
EXPORT_COLUMNS = (
    "seq",
    "at",
    "event",
    "actor_email",
    "actor_name",
    "subject_email",
    "subject_name",
    "ip",
    "user_agent",
    "details",
    "hash",
)


def parse_moment(text: str | None, *, end: bool = False) -> datetime | None:
    """A date (``2026-11-02``) or an ISO time; naive means UTC.

    A bare date as an end bound means the end of that day, so ``until=2026-11-02``
    includes the whole of the 2nd.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``actor``/``subject``/``person``: a member's id or email; ``event``: a name or a namespace prefix."""

    actor: str | None = None
    subject: str | None = None
    person: str | None = None
    event: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    seq: int
    at: datetime
    event: str
    actor: Person | None
    subject: Person | None
    ip: str | None
    user_agent: str | None
    details: dict


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event of a chain that does not fit, and why."""

    seq: int
    event_id: int | None
    event: str | None
    at: datetime | None
    problem: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    chain: int
    practice: str | None
    events: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


_actor = aliased(User)
_subject = aliased(User)


@dataclass(kw_only=True, slots=True)
class AuditTrail:
    db: Database
    clock: Clock
    audit: AuditLog

    # -- reading -------------------------------------------------------------------

    def page(self, *, practice_id: int, filter: AuditFilter = AuditFilter(), page: int = 1) -> Page[AuditEntry]:
        """Newest first, ``PAGE_SIZE`` a page."""
        page = max(1, page)
        with self.db.reading() as s:
            query = self._filtered(s, practice_id, filter)
            total = s.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            rows = s.execute(
                self._with_people(query).order_by(AuditEvent.seq.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            ).all()
        return Page([_entry(*row) for row in rows], total, page)

    def export_csv(
        self,
        *,
        practice_id: int,
        filter: AuditFilter = AuditFilter(),
        actor_id: int | None,
        context: RequestContext,
    ) -> Iterator[str]:
        """The filtered events, oldest first, as CSV lines (header first); read in chunks, so memory stays flat.

        The export is itself an audited event, written before the first line.
        """
        with self.db.transaction() as s:
            query = self._filtered(s, practice_id, filter)
            self.audit.record(
                s,
                EventTag.AUDIT_EXPORTED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in _asdict(filter).items() if v},
            )
        return self._export_lines(self._with_people(query).order_by(AuditEvent.seq))

    def _export_lines(self, query: Select) -> Iterator[str]:
        yield csv_line(EXPORT_COLUMNS)
        with self.db.reading() as s:
            for row in s.execute(query.execution_options(yield_per=CHUNK)):
                entry = _entry(*row)
                yield csv_line(
                    [
                        entry.seq,
                        entry.at.isoformat(),
                        entry.event,
                        entry.actor.email if entry.actor else "",
                        entry.actor.name if entry.actor else "",
                        entry.subject.email if entry.subject else "",
                        entry.subject.name if entry.subject else "",
                        entry.ip or "",
                        entry.user_agent or "",
                        json.dumps(entry.details, sort_keys=True),
                        row[0].hash,
                    ]
                )

    def count(self, *, practice_id: int, filter: AuditFilter = AuditFilter()) -> int:
        with self.db.reading() as s:
            return s.execute(
                select(func.count()).select_from(self._filtered(s, practice_id, filter).subquery())
            ).scalar_one()

    def _filtered(self, s, practice_id: int, f: AuditFilter) -> Select:
        query = select(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.practice_id == practice_id)
        for text, columns in ((f.actor, ("actor",)), (f.subject, ("subject",)), (f.person, ("actor", "subject"))):
            if text is not None and text.strip():
                person_id = self._person_id(s, practice_id, text)
                query = query.where(or_(*(getattr(AuditEvent, f"{column}_id") == person_id for column in columns)))
        if f.event and f.event.strip():
            name = f.event.strip()
            matches = [AuditEvent.event == name, AuditEvent.event.startswith(name.rstrip(":") + ":", autoescape=True)]
            labelled = events_labelled(name)  # "reset" finds "Two-factor authentication reset by an admin"
            if labelled:
                matches.append(AuditEvent.event.in_(labelled))
            query = query.where(or_(*matches))
        if f.since:
            query = query.where(AuditEvent.at >= f.since)
        if f.until:
            query = query.where(AuditEvent.at < f.until)
        return query

    @staticmethod
    def _person_id(s, practice_id: int, text: str) -> int:
        """A member of the practice by id or email; -1 (matches nothing) for anyone else."""
        text = text.strip()
        if text.isdigit():
            query = select(User.id).where(User.id == int(text))
        else:
            query = select(User.id).where(User.email == text.lower())
        found = s.execute(query.where(User.practice_id == practice_id)).scalar_one_or_none()
        return -1 if found is None else found

    @staticmethod
    def _with_people(query: Select) -> Select:
        return (
            query.add_columns(_actor.id, _actor.email, _actor.name, _subject.id, _subject.email, _subject.name)
            .outerjoin(_actor, _actor.id == AuditEvent.actor_id)
            .outerjoin(_subject, _subject.id == AuditEvent.subject_id)
        )

    # -- verification ------------------------------------------------------------------

    def verify(self, *, practice_id: int | None = None) -> list[ChainReport]:
        """Check every chain (or one practice's): each event's hash, its link, the sequence, and the head."""
        with self.db.reading() as s:
            heads = s.execute(select(AuditChainHead).order_by(AuditChainHead.chain)).scalars().all()
            names = dict(s.execute(select(Practice.id, Practice.name)).all())
        if practice_id is not None:
            heads = [head for head in heads if head.chain == practice_id]
            if not heads:
                raise NotFound("No audit chain for that practice.")
        return [self._verify_chain(head, names.get(head.chain)) for head in heads]

    def _verify_chain(self, head: AuditChainHead, practice: str | None) -> ChainReport:
        expected_seq, prev_hash, count = 1, GENESIS, 0
        problem: ChainBreak | None = None
        with self.db.reading() as s:
            rows = s.execute(
                select(AuditEvent)
                .where(AuditEvent.chain == head.chain)
                .order_by(AuditEvent.seq)
                .execution_options(yield_per=CHUNK)
            ).scalars()
            for event in rows:
                count += 1
                if event.seq != expected_seq:
                    problem = _break(
                        event,
                        f"expected event {expected_seq} here: events {expected_seq} to {event.seq - 1} are missing (deleted)",
                    )
                elif event.prev_hash != prev_hash:
                    problem = _break(
                        event, "does not link to the event before it (rows removed or put in another order)"
                    )
                elif event_hash(prev_hash, event) != event.hash:
                    problem = _break(event, "its content was changed after it was written (the hash does not match)")
                if problem:
                    break
                prev_hash, expected_seq = event.hash, expected_seq + 1
                s.expunge(event)
        if problem is None and (head.seq != expected_seq - 1 or head.hash != prev_hash):
            if head.seq > expected_seq - 1:
                problem = ChainBreak(
                    expected_seq,
                    None,
                    None,
                    None,
                    f"events {expected_seq} to {head.seq} are missing (deleted from the end)",
                )
            else:
                problem = ChainBreak(head.seq, None, None, None, "the chain's head does not match its last event")
        return ChainReport(head.chain, practice, count, head.hash, problem)


def _break(event: AuditEvent, problem: str) -> ChainBreak:
    return ChainBreak(event.seq, event.id, event.event, event.at, problem)


def _entry(event: AuditEvent, actor_id, actor_email, actor_name, subject_id, subject_email, subject_name) -> AuditEntry:
    return AuditEntry(
        id=event.id,
        seq=event.seq,
        at=event.at,
        event=event.event,
        actor=Person(actor_id, actor_email, actor_name) if actor_id is not None else None,
        subject=Person(subject_id, subject_email, subject_name) if subject_id is not None else None,
        ip=event.ip,
        user_agent=event.user_agent,
        details=event.details or {},
    )


def _asdict(f: AuditFilter) -> dict:
    return {name: getattr(f, name) for name in AuditFilter.__slots__}
