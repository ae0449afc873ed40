"""Reading the audit log: a practice's events filtered and paged, CSV export, chain verification and anchors.

The log is append-only and hash-chained per practice (twofold/audit.py): each event
stores the hash of the one before it and its own keyed hash over every column. So
``verify`` walks a chain in order and names the first event that does not fit: a
changed row no longer matches its keyed hash (and without the secret key no one can
compute a matching one), a deleted one leaves a gap in the sequence (or, at the end,
disagrees with the chain's head), rows put in another order or moved to another chain
no longer link to their predecessor, and a practice whose events or head row are gone
is reported as such.

What the database alone cannot show is its newest events cut off together with the
head row rewound. An anchor can: a signed statement of each chain's head, kept
elsewhere (``twofold audit anchor``); ``verify(anchor=...)`` fails a chain that no
longer extends it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Select, Table, func, or_, select
from sqlalchemy.orm import aliased

from twofold.audit import GENESIS, AuditLog, EventTag, events_labelled
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.csv_stream import csv_line
from twofold.core.notifier import Notifier
from twofold.core.paging import PAGE_SIZE, Page
from twofold.core.practice.mail import audit_anchor_message
from twofold.crypto.chain import canonical
from twofold.errors import InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import MAX_ID, AuditChainHead, AuditEvent, Practice, User

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
    includes the whole of the 2nd. A moment past the calendar's ends (``until=9999-12-31``,
    or year 9999 at UTC-14) is held at the end it passed, never an overflow.
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
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time.") from None
    except OverflowError:
        return (datetime.max if text[:4] == "9999" else datetime.min).replace(tzinfo=UTC)


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


ANCHOR_FORMAT = "twofold-audit-anchor/1"


@dataclass(frozen=True, slots=True)
class AnchoredHead:
    """One chain's last event when the anchor was made: its sequence number, keyed hash and time."""

    chain: int
    practice: str | None
    seq: int
    hash: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Anchor:
    """A signed statement of chain heads, to keep outside the database (a file, an email, a printout).

    The signature (Ed25519, key derived from the secret key) covers everything else in it, so
    an anchor edited to match a rewound chain is refused; ``public_key`` lets anyone check it.
    """

    issued_at: datetime
    heads: tuple[AnchoredHead, ...]
    public_key: str
    signature: str

    def _document(self) -> dict:
        return {
            "format": ANCHOR_FORMAT,
            "issued_at": self.issued_at.isoformat(),
            "heads": [
                {
                    "chain": head.chain,
                    "practice": head.practice,
                    "seq": head.seq,
                    "hash": head.hash,
                    "at": head.at.isoformat() if head.at else None,
                }
                for head in self.heads
            ],
            "public_key": self.public_key,
        }

    def payload(self) -> bytes:
        """The signed bytes: the canonical JSON of the statement without its signature."""
        return canonical(self._document()).encode()

    def to_json(self) -> str:
        return json.dumps({**self._document(), "signature": self.signature}, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Read a statement written by ``to_json``; ``InvalidInput`` naming what is wrong otherwise."""
        try:
            document = json.loads(text)
        except ValueError:
            raise InvalidInput("The anchor is not JSON: give the file `twofold audit anchor` printed.") from None
        try:
            if document["format"] != ANCHOR_FORMAT:
                raise InvalidInput(f"The anchor's format is not {ANCHOR_FORMAT!r}.")
            heads = tuple(
                AnchoredHead(
                    chain=_int(head["chain"]),
                    practice=head["practice"] if isinstance(head["practice"], str) else None,
                    seq=_int(head["seq"]),
                    hash=_text(head["hash"]),
                    at=_moment(head["at"]) if head["at"] is not None else None,
                )
                for head in document["heads"]
            )
            return cls(
                issued_at=_moment(document["issued_at"]),
                heads=heads,
                public_key=_text(document["public_key"]),
                signature=_text(document["signature"]),
            )
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(
                "The anchor is incomplete or malformed: give the file `twofold audit anchor` printed, unchanged."
            ) from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("not a count")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError("not a short text")
    return value


def _moment(value: object) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


@dataclass(frozen=True, slots=True)
class AnchorMailing:
    """What ``email_anchors`` sent for one practice."""

    practice: str
    recipients: int
    delivered: int
    ok: bool


_actor = aliased(User)
_EVENTS = cast(Table, AuditEvent.__table__)
_subject = aliased(User)


@dataclass(kw_only=True, slots=True)
class AuditTrail:
    db: Database
    clock: Clock
    audit: AuditLog
    notifier: Notifier

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
        if text.isascii() and text.isdigit():  # str.isdigit() alone also takes "²" and other digits int() refuses
            if int(text) > MAX_ID:  # no row has it, and no database is handed a number it cannot store
                return -1
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

    def verify(self, *, practice_id: int | None = None, anchor: Anchor | None = None) -> list[ChainReport]:
        """Check every chain (or one practice's): each event's keyed hash, its link, the sequence, the head.

        Every practice's chain is checked, whether or not it has a head row or any event left,
        and chain 0 (events of no practice). With ``anchor`` (see ``anchor_heads``), each chain it
        names must still extend the head it recorded: a chain cut back and rewound, or cut and
        rewritten, fails even when it is consistent in itself.
        """
        with self.db.reading() as s:
            heads = {
                chain: (seq, digest)
                for chain, seq, digest in s.execute(
                    select(AuditChainHead.chain, AuditChainHead.seq, AuditChainHead.hash)
                )
            }
            names = dict(s.execute(select(Practice.id, Practice.name)).all())
            with_events = set(s.execute(select(AuditEvent.chain).distinct()).scalars())
        anchored = {head.chain: head for head in anchor.heads} if anchor else {}
        chains = sorted({0, *heads, *names, *with_events, *anchored})
        if practice_id is not None:
            if practice_id not in chains:
                raise NotFound("No audit chain for that practice.")
            chains = [practice_id]
        return [
            self._verify_chain(
                chain,
                head=heads.get(chain),
                practice=names.get(chain),
                anchored=anchored.get(chain),
                anchored_at=anchor.issued_at if anchor else None,
            )
            for chain in chains
        ]

    def _verify_chain(
        self,
        chain: int,
        *,
        head: tuple[int, str] | None,
        practice: str | None,
        anchored: AnchoredHead | None,
        anchored_at: datetime | None,
    ) -> ChainReport:
        expected_seq, prev_hash, count = 1, GENESIS, 0
        problem: ChainBreak | None = None
        last: Row[Any] | None = None
        at_anchor: Row[Any] | None = None
        with self.db.reading() as s:
            # Plain rows, not ORM objects: a chain may hold millions of events.
            rows = s.execute(
                select(*_EVENTS.c)
                .where(_EVENTS.c.chain == chain)
                .order_by(_EVENTS.c.seq)
                .execution_options(yield_per=CHUNK)
            )
            for event in rows:
                count += 1
                if event.seq != expected_seq:
                    problem = _break(
                        event,
                        f"expected event {expected_seq} here: events {expected_seq} to {event.seq - 1} are missing (deleted)",
                    )
                elif event.prev_hash != prev_hash:
                    problem = _break(
                        event, "does not link to the event before it (rows removed, moved or put in another order)"
                    )
                elif not self.audit.links(prev_hash, event):
                    problem = _break(
                        event,
                        "its content was changed after it was written, or it was written without the key "
                        "(the keyed hash does not match)",
                    )
                if problem:
                    break
                prev_hash, expected_seq, last = event.hash, expected_seq + 1, event
                if anchored is not None and event.seq == anchored.seq:
                    at_anchor = event
        last_seq = expected_seq - 1
        if problem is None:
            problem = self._head_problem(chain, head, practice, last, last_seq, prev_hash)
        if problem is None and anchored is not None:
            problem = _anchor_problem(anchored, anchored_at, last_seq, at_anchor)
        return ChainReport(chain, practice, count, head[1] if head else prev_hash, problem)

    @staticmethod
    def _head_problem(
        chain: int,
        head: tuple[int, str] | None,
        practice: str | None,
        last: Row[Any] | None,
        last_seq: int,
        last_hash: str,
    ) -> ChainBreak | None:
        if last is None and chain != 0 and (head is None or head[0] == 0):
            # Every practice's first event is practice:created, written with the practice itself.
            return ChainBreak(
                1,
                None,
                None,
                None,
                "the practice has no audit events at all: its whole log was deleted "
                "(event 1, practice:created, is missing)",
            )
        if head is None:
            if last is None:
                return None  # chain 0 before anything was recorded in it
            return ChainBreak(
                last_seq + 1,
                None,
                None,
                None,
                f"the chain's head record is missing (deleted): events after event {last_seq} "
                "could have been removed without a trace here (verify with an anchor to be sure)",
            )
        head_seq, head_hash = head
        if head_seq == last_seq and head_hash == last_hash:
            return None
        if head_seq > last_seq:
            return ChainBreak(
                last_seq + 1,
                None,
                None,
                None,
                f"events {last_seq + 1} to {head_seq} are missing (deleted from the end)",
            )
        return ChainBreak(head_seq, None, None, None, "the chain's head does not match its last event")

    # -- anchors -------------------------------------------------------------------------

    def anchor_heads(self, *, practice_id: int | None = None) -> tuple[Anchor, list[ChainReport]]:
        """A signed statement of the head (seq, hash, time) of each chain that verifies, and the chains that do not.

        A broken chain is left out of the statement: anchoring it would vouch for the tampering.
        """
        reports = self.verify(practice_id=practice_id)
        heads: list[AnchoredHead] = []
        with self.db.reading() as s:
            for report in reports:
                if not report.ok:
                    continue
                last = s.execute(
                    select(AuditEvent.seq, AuditEvent.hash, AuditEvent.at)
                    .where(AuditEvent.chain == report.chain)
                    .order_by(AuditEvent.seq.desc())
                    .limit(1)
                ).one_or_none()
                seq, digest, at = last if last is not None else (0, GENESIS, None)
                heads.append(AnchoredHead(report.chain, report.practice, seq, digest, at))
        issued_at = self.clock.now()
        unsigned = Anchor(issued_at=issued_at, heads=tuple(heads), public_key=self.audit.keys.public_key, signature="")
        signed = Anchor(
            issued_at=issued_at,
            heads=unsigned.heads,
            public_key=unsigned.public_key,
            signature=self.audit.keys.sign(unsigned.payload()),
        )
        return signed, [report for report in reports if not report.ok]

    def signed_here(self, anchor: Anchor) -> bool:
        """Whether ``anchor`` carries this installation's signature (current or an earlier secret key)."""
        return self.audit.keys.signed_here(anchor.payload(), public_key=anchor.public_key, signature=anchor.signature)

    def email_anchors(self, *, practice_id: int | None = None) -> list[AnchorMailing]:
        """Email each practice's admins their practice's signed head, or the first bad event when it does not verify.

        Meant to run weekly (``twofold audit anchor --email`` from cron, see docs/operations.md). Each
        practice gets only its own chain. Returns what was sent to whom.
        """
        with self.db.reading() as s:
            query = select(Practice.id, Practice.name).order_by(Practice.id)
            if practice_id is not None:
                query = query.where(Practice.id == practice_id)
            practices = s.execute(query).all()
            admins: dict[int, list[str]] = {}
            for user_practice, email in s.execute(
                select(User.practice_id, User.email)
                # Claimed accounts only: a pending row may be an invitation to another practice's member.
                .where(User.role == "admin", User.active.is_(True), User.password_changed_at.is_not(None))
                .order_by(User.id)
            ):
                admins.setdefault(user_practice, []).append(email)
        mailings = []
        for pid, name in practices:
            anchor, broken = self.anchor_heads(practice_id=pid)
            recipients = admins.get(pid, [])
            delivered = 0
            for address in recipients:
                message = audit_anchor_message(
                    to=address,
                    practice=name,
                    statement=anchor.to_json() if anchor.heads else None,
                    problem=describe_break(broken[0].first_break) if broken and broken[0].first_break else None,
                )
                delivered += bool(self.notifier.send_now(message))
            mailings.append(
                AnchorMailing(practice=name, recipients=len(recipients), delivered=delivered, ok=not broken)
            )
        return mailings


def _anchor_problem(
    anchored: AnchoredHead, anchored_at: datetime | None, last_seq: int, at_anchor: Row[Any] | None
) -> ChainBreak | None:
    when = anchored_at.isoformat() if anchored_at else "the anchor"
    if last_seq < anchored.seq:
        return ChainBreak(
            last_seq + 1,
            None,
            None,
            None,
            f"events {last_seq + 1} to {anchored.seq} are missing: the anchor of {when} recorded the chain "
            f"up to event {anchored.seq} (events deleted from the end and the chain rewound)",
        )
    if anchored.seq == 0:
        return None
    if at_anchor is None or not hmac.compare_digest(at_anchor.hash, anchored.hash):
        return ChainBreak(
            anchored.seq,
            at_anchor.id if at_anchor else None,
            at_anchor.event if at_anchor else None,
            at_anchor.at if at_anchor else None,
            f"is not the event the anchor of {when} recorded: the chain was cut and written again at or before it",
        )
    return None


def describe_break(bad: ChainBreak) -> str:
    where = f"event {bad.seq}"
    if bad.event_id:
        where += f" (id {bad.event_id}, {bad.event}, {bad.at.isoformat() if bad.at else None})"
    return f"first bad event is {where}: {bad.problem}"


def _break(event: Row[Any], problem: str) -> ChainBreak:
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
