"""Shared workstations: a browser at the front desk that several members use in turn.

An admin, signed in on that browser, marks it and gives it a name ("Front desk 1"). The
browser then carries a long-lived cookie (``COOKIE_NAME``) holding 256 random bits; the
database holds only its keyed hash, so a copy of the table marks no browser, and
unmarking (from any browser) ends the mark at once, wherever the cookie still is.

On a marked browser:

- only members of the workstation's practice can sign in (another practice's member
  gets the one answer every refused password gets);
- "Remember this browser" is never offered and is refused if sent anyway, and a
  remembered-browser cookie already there is ignored: every sign-in asks for the code;
- every session started there is marked with the workstation and ends after the
  practice's shorter ``shared_workstation_idle_minutes`` without activity;
- signing out (or the idle sign-out) lands on a sign-in page that names the
  workstation and shows nothing of the person before ("who's next").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.remembered import BrowserCookie
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import Conflict, Forbidden, InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import User, UserSession, Workstation

COOKIE_NAME = "twofold_workstation"
# Browsers keep a cookie 400 days at most (RFC 6265bis §5.5); the row decides anyway.
MARKED_FOR = timedelta(days=400)
TOKEN_BYTES = 32  # 256 bits
MAX_TOKEN_LENGTH = 128
MAX_NAME_LENGTH = 80


class WorkstationNotFound(NotFound):
    code = "workstation_not_found"
    message = "This workstation was not found. It may already have been unmarked."


class WorkstationNameInvalid(InvalidInput):
    """The name is empty, too long or has control characters; ``field`` names the form field."""

    code = "invalid_workstation_name"
    field = "name"
    message = (
        f"Name: enter a name people know this computer by, such as Front desk 1 (1 to {MAX_NAME_LENGTH} characters)."
    )


class AlreadyAWorkstation(Conflict):
    code = "already_a_workstation"
    message = "This browser is already marked as a shared workstation. Rename it in the list, or unmark it first."


class WorkstationOfAnotherPractice(Forbidden):
    code = "workstation_of_another_practice"
    message = "This computer is a shared workstation of another practice. Sign in on another computer."


class RememberRefusedOnWorkstation(InvalidInput):
    code = "remember_refused_on_workstation"
    message = "This is a shared workstation: it cannot remember a browser. Sign in with your code."


@dataclass(frozen=True, slots=True)
class WorkstationView:
    """One marked browser, as Administration › Workstations and the API show it."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    current: bool  # the browser asking is this workstation


@dataclass(frozen=True, slots=True)
class MarkedWorkstation:
    """A browser just marked: what to show, and the cookie to set on it."""

    view: WorkstationView
    cookie: BrowserCookie


def clean_name(name: object) -> str:
    """A workstation's name, trimmed; ``WorkstationNameInvalid`` when it is not one."""
    if not isinstance(name, str):
        raise WorkstationNameInvalid()
    cleaned = " ".join(name.split())
    if not 0 < len(cleaned) <= MAX_NAME_LENGTH or not cleaned.isprintable():
        raise WorkstationNameInvalid()
    return cleaned


@dataclass(kw_only=True, slots=True)
class WorkstationService:
    db: Database
    clock: Clock
    hasher: TokenHasher
    audit: AuditLog

    # -- recognising a browser ---------------------------------------------------------

    def recognise(self, s: Session, token: str | None) -> Workstation | None:
        """The live workstation whose cookie is ``token``, or None. One lookup by keyed hash (unique index)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        return s.execute(
            select(Workstation).where(
                Workstation.token_hash == self.hasher.hash(token), Workstation.revoked_at.is_(None)
            )
        ).scalar_one_or_none()

    def here(self, *, context: RequestContext) -> WorkstationView | None:
        """The workstation the asking browser is, or None (the sign-in page's "who's next")."""
        if not context.workstation:
            return None
        with self.db.reading() as s:
            record = self.recognise(s, context.workstation)
            return self._view(record, current=True) if record is not None else None

    def used_for_session(self, s: Session, *, user: User, context: RequestContext) -> int | None:
        """The id of the workstation a session of ``user`` starting now is on (its last use noted), or None.

        ``WorkstationOfAnotherPractice`` when it is not ``user``'s practice's: whatever path
        signed them in (a passkey, a set-up link), the session does not start.
        """
        record = self.recognise(s, context.workstation)
        if record is None:
            return None
        if record.practice_id != user.practice_id:
            raise WorkstationOfAnotherPractice()
        record.last_used_at = self.clock.now()
        return record.id

    # -- administration ----------------------------------------------------------------

    def list_workstations(self, *, practice_id: int, context: RequestContext) -> list[WorkstationView]:
        """The practice's marked browsers, A to Z; ``current`` marks the asking one."""
        current = self.hasher.hash(context.workstation) if context.workstation else None
        with self.db.reading() as s:
            rows = s.execute(
                select(Workstation)
                .where(Workstation.practice_id == practice_id, Workstation.revoked_at.is_(None))
                .order_by(Workstation.name, Workstation.id)
            ).scalars()
            return [self._view(record, current=record.token_hash == current) for record in rows]

    def mark(
        self, *, admin: User, name: str, context: RequestContext, session_id: int | None = None
    ) -> MarkedWorkstation:
        """Mark the asking browser as a shared workstation of ``admin``'s practice.

        ``AlreadyAWorkstation`` when the browser already is one (of any practice). The
        admin's own session on it (``session_id``) lives by the workstation's rules from now on.
        """
        cleaned = clean_name(name)
        with self.db.transaction() as s:
            if self.recognise(s, context.workstation) is not None:
                raise AlreadyAWorkstation()
            token = random_token(TOKEN_BYTES)
            now = self.clock.now()
            record = Workstation(
                token_hash=self.hasher.hash(token),
                practice_id=admin.practice_id,
                name=cleaned,
                created_at=now,
                created_by_id=admin.id,
            )
            s.add(record)
            s.flush()
            if session_id is not None:
                s.execute(
                    update(UserSession)
                    .where(UserSession.id == session_id, UserSession.user_id == admin.id)
                    .values(workstation_id=record.id)
                )
            self.audit.record(
                s,
                EventTag.WORKSTATION_MARKED,
                context=context,
                practice_id=admin.practice_id,
                actor_id=admin.id,
                details={"workstation_id": record.id, "name": cleaned},
            )
            view = self._view(record, current=True)
        return MarkedWorkstation(view, BrowserCookie(COOKIE_NAME, token, int(MARKED_FOR.total_seconds())))

    def rename(
        self, *, practice_id: int, workstation_id: int, name: str, actor_id: int | None, context: RequestContext
    ) -> WorkstationView:
        cleaned = clean_name(name)
        with self.db.transaction() as s:
            record = self._live(s, practice_id, workstation_id)
            if record.name != cleaned:
                self.audit.record(
                    s,
                    EventTag.WORKSTATION_RENAMED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=actor_id,
                    details={"workstation_id": record.id, "name": [record.name, cleaned]},
                )
                record.name = cleaned
            current = bool(context.workstation) and record.token_hash == self.hasher.hash(context.workstation or "")
            return self._view(record, current=current)

    def unmark(self, *, practice_id: int, workstation_id: int, actor_id: int | None, context: RequestContext) -> bool:
        """End the mark at once, in every process; True when it was the asking browser (its cookie can go)."""
        with self.db.transaction() as s:
            record = self._live(s, practice_id, workstation_id)
            record.revoked_at = self.clock.now()
            self.audit.record(
                s,
                EventTag.WORKSTATION_UNMARKED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"workstation_id": record.id, "name": record.name},
            )
            return bool(context.workstation) and record.token_hash == self.hasher.hash(context.workstation or "")

    def _live(self, s: Session, practice_id: int, workstation_id: int) -> Workstation:
        record = s.execute(
            select(Workstation)
            .where(
                Workstation.id == workstation_id,
                Workstation.practice_id == practice_id,
                Workstation.revoked_at.is_(None),
            )
            .with_for_update()
        ).scalar_one_or_none()
        if record is None:
            raise WorkstationNotFound()
        return record

    @staticmethod
    def _view(record: Workstation, *, current: bool) -> WorkstationView:
        return WorkstationView(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            current=current,
        )
