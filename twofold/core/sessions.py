"""Server-side sessions: a random id in the cookie, only its keyed hash in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.policy import PRACTICE_POLICY_FIELDS, Policy
from twofold.core.workstations import WorkstationService
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.store.db import Database
from twofold.store.models import Practice, User, UserSession
from twofold.store.prepared import Prepared, QuickReads

# last_seen_at is written at most this often, so a busy page does not write on every request.
TOUCH_INTERVAL = timedelta(seconds=20)

_INSERT_SESSION = Prepared(insert(cast(Table, UserSession.__table__)))

# What a per-request check needs of the session, its member and the member's practice (its policy).
_SESSION_FIELDS = (
    "id",
    "created_at",
    "last_seen_at",
    "expires_at",
    "revoked_at",
    "authenticated_at",
    "amr",
    "workstation_id",
)
_MEMBER_FIELDS = ("id", "email", "name", "role", "active", "practice_id")
_PRACTICE_FIELDS = ("name", *PRACTICE_POLICY_FIELDS)
# One indexed read of plain columns by the cookie's hash, for the checks a proxy or an app asks
# before every request.
_IDENTIFY = Prepared(
    select(
        *(getattr(UserSession, name) for name in _SESSION_FIELDS),
        *(getattr(User, name) for name in _MEMBER_FIELDS),
        *(getattr(Practice, name) for name in _PRACTICE_FIELDS),
    )
    .join(User, User.id == UserSession.user_id)
    .join(Practice, Practice.id == User.practice_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)


@dataclass(frozen=True, slots=True)
class ActiveSession:
    session_id: int
    user: User
    policy: Policy
    expires_at: datetime  # the earlier of idle and absolute end, as of this request
    authenticated_at: datetime  # when the member last proved who they are in this session
    amr: tuple[str, ...]  # how (RFC 8176 values): ("pwd",), ("pwd", "otp", "mfa"), ...
    workstation_id: int | None = None  # started on a shared workstation: ``policy`` has its shorter idle timeout


@dataclass(frozen=True, slots=True)
class Member:
    """Who a session belongs to, as plain values (what a proxy passes on to an app)."""

    id: int
    email: str
    name: str
    role: str
    practice_id: int
    practice_name: str


@dataclass(frozen=True, slots=True)
class SessionIdentity:
    """A live session as the per-request protocol checks read it: no ORM objects, one statement.

    ``ActiveSession`` is the same session for Twofold's own pages, which go on to use the member row.
    """

    session_id: int
    member: Member
    policy: Policy
    expires_at: datetime
    authenticated_at: datetime
    amr: tuple[str, ...]
    workstation_id: int | None = None


@dataclass(frozen=True, slots=True)
class SessionRead:
    """What ``SessionService.read`` found for a cookie, before its limits are applied (``identify``)."""

    session: Any  # the sessions row, as a plain record
    member: Member
    active: bool
    policy: Policy


class SessionEndListener(Protocol):
    """Told, in the ending transaction, which sessions ended (an app's back-channel logout, for one)."""

    def sessions_ended(self, session: Session, session_ids: Sequence[int], *, reason: str) -> None: ...


@dataclass(kw_only=True, slots=True)
class SessionService:
    db: Database
    clock: Clock
    hasher: TokenHasher
    audit: AuditLog
    workstations: WorkstationService
    listeners: list[SessionEndListener] = field(default_factory=list)

    def ended(self, session: Session, session_ids: Sequence[int], *, reason: str) -> None:
        """Tell the listeners that ``session_ids`` ended in the caller's transaction. Every way a session
        ends calls this (here, and where Account Settings ends chosen sessions)."""
        if session_ids:
            for listener in self.listeners:
                listener.sessions_ended(session, list(session_ids), reason=reason)

    def start(self, session: Session, *, user: User, context: RequestContext, amr: Sequence[str] = ("pwd",)) -> str:
        """Create a session for ``user`` and return its id (256 random bits) for the cookie.

        ``amr`` says how the member proved who they are (RFC 8176 method references). A
        session started on a shared workstation (``context.workstation``) is marked as such,
        whatever path signed the member in, and lives by the workstation's idle timeout.
        """
        token = random_token(32)
        now = self.clock.now()
        policy = Policy.of(user.practice)
        workstation_id = self.workstations.used_for_session(session, user=user, context=context)
        # A plain INSERT on the session's connection (every sign-in runs this; no ORM flush needed).
        _INSERT_SESSION.execute(
            session,
            {
                "token_hash": self.hasher.hash(token),
                "user_id": user.id,
                "created_at": now,
                "last_seen_at": now,
                "expires_at": now + policy.session_max,
                "ip": context.ip,
                "user_agent": (context.user_agent or "")[:512] or None,
                "revoked_at": None,
                "revoked_reason": None,
                "authenticated_at": now,
                "amr": " ".join(amr),
                "workstation_id": workstation_id,
            },
        )
        return token

    def resolve(self, token: str | None, *, touch: bool = True) -> ActiveSession | None:
        """The live session for a cookie value, or None. One indexed lookup.

        Ends (and audits) a session found past its idle or absolute limit. With
        ``touch=False`` the request does not count as activity (a page asking how
        long its session has left must not keep it alive by asking).
        """
        if not token or len(token) > 128:
            return None
        token_hash = self.hasher.hash(token)
        with self.db.reading() as s:
            row = s.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.token_hash == token_hash)
            ).one_or_none()
        if row is None:
            return None
        record, user = row
        if record.revoked_at is not None or not user.active:
            return None
        policy = Policy.of(user.practice)
        if record.workstation_id is not None:
            policy = policy.on_workstation()
        end = self._settle(record, user_id=user.id, practice_id=user.practice_id, policy=policy, touch=touch)
        if end is None:
            return None
        return ActiveSession(
            record.id,
            user,
            policy,
            end,
            record.authenticated_at or record.created_at,
            tuple((record.amr or "pwd").split()),
            record.workstation_id,
        )

    def read(self, session: Session | QuickReads, token: str | None) -> SessionRead | None:
        """The session for a cookie value with its member and policy, read in the caller's transaction.

        Plain columns through one prepared statement (no ORM objects). Nothing is decided yet:
        ``identify`` applies the limits once the reading transaction is over.
        """
        if not token or len(token) > 128:
            return None
        row = _IDENTIFY.execute(session, {"token_hash": self.hasher.hash(token)}).one_or_none()
        if row is None:
            return None
        sessions, members = len(_SESSION_FIELDS), len(_SESSION_FIELDS) + len(_MEMBER_FIELDS)
        record = SimpleNamespace(**dict(zip(_SESSION_FIELDS, row[:sessions], strict=True)))
        user_id, email, name, role, active, practice_id = row[sessions:members]
        practice = SimpleNamespace(**dict(zip(_PRACTICE_FIELDS, row[members:], strict=True)))
        member = Member(user_id, email, name, role, practice_id, practice.name)
        policy = Policy.of(cast(Practice, practice))
        if record.workstation_id is not None:
            policy = policy.on_workstation()
        return SessionRead(record, member, bool(active), policy)

    def identify(self, found: SessionRead | None, *, touch: bool = True) -> SessionIdentity | None:
        """The live session ``read`` found, or None; as ``resolve`` does, ends one past its limits."""
        if found is None:
            return None
        record, member = found.session, found.member
        if record.revoked_at is not None or not found.active:
            return None
        end = self._settle(record, user_id=member.id, practice_id=member.practice_id, policy=found.policy, touch=touch)
        if end is None:
            return None
        amr = tuple((record.amr or "pwd").split())
        authenticated_at = record.authenticated_at or record.created_at
        return SessionIdentity(record.id, member, found.policy, end, authenticated_at, amr, record.workstation_id)

    def _settle(self, record: Any, *, user_id: int, practice_id: int, policy: Policy, touch: bool) -> datetime | None:
        """When the unrevoked session ``record`` ends, as of now; None once it has ended (ended here and audited).

        A request counts as activity (``touch``), written at most once per ``TOUCH_INTERVAL``.
        """
        now = self.clock.now()
        idle_end = record.last_seen_at + policy.idle_timeout
        if now >= record.expires_at or now >= idle_end:
            reason = "absolute_limit" if now >= record.expires_at else "idle"
            with self.db.transaction() as s:
                ended = cast(
                    CursorResult[Any],  # an UPDATE's result; Session.execute() is typed as the base Result
                    s.execute(
                        update(UserSession)
                        .where(UserSession.id == record.id, UserSession.revoked_at.is_(None))
                        .values(revoked_at=now, revoked_reason=reason)
                    ),
                ).rowcount
                if ended:
                    self.ended(s, [record.id], reason=reason)
                    self.audit.record(
                        s,
                        EventTag.SESSION_EXPIRED,
                        context=RequestContext(),
                        practice_id=practice_id,
                        actor_id=user_id,
                        subject_id=user_id,
                        details={"reason": reason, "session_id": record.id},
                    )
            return None
        if touch and now - record.last_seen_at >= TOUCH_INTERVAL:
            with self.db.transaction() as s:
                s.execute(update(UserSession).where(UserSession.id == record.id).values(last_seen_at=now))
            idle_end = now + policy.idle_timeout
        return min(idle_end, record.expires_at)

    def end_replaced(self, token: str) -> bool:
        """End the live session a browser held before a new one replaced it in its cookie; False when none was."""
        if len(token) > 128:
            return False
        with self.db.transaction() as s:
            found = s.scalars(
                select(UserSession.id).where(
                    UserSession.token_hash == self.hasher.hash(token), UserSession.revoked_at.is_(None)
                )
            ).first()
            if found is None:
                return False
            result = s.execute(
                update(UserSession)
                .where(UserSession.id == found, UserSession.revoked_at.is_(None))
                .values(revoked_at=self.clock.now(), revoked_reason="replaced")
            )
            if cast(CursorResult[Any], result).rowcount == 0:  # an UPDATE's result: a CursorResult
                return False
            self.ended(s, [found], reason="replaced")
            return True

    def end(self, session: Session, *, token: str, reason: str = "signed_out") -> UserSession | None:
        record = session.execute(
            select(UserSession).where(UserSession.token_hash == self.hasher.hash(token))
        ).scalar_one_or_none()
        if record is None or record.revoked_at is not None:
            return None
        record.revoked_at = self.clock.now()
        record.revoked_reason = reason
        self.ended(session, [record.id], reason=reason)
        return record

    def renew_after_privilege_change(
        self, session: Session, *, user: User, current_session_id: int | None, context: RequestContext, reason: str
    ) -> str | None:
        """End every session of ``user`` and, when ``current_session_id`` is one of them, start its successor.

        For a change of what a session is worth (2FA turned on): a session opened with
        the password alone, elsewhere, must not outlive it, and the current one gets a
        new id (OWASP Session Management: renew the id on a privilege change). The
        successor keeps when and how the member proved who they are. Returns its
        token (None without a current session).
        """
        current = session.get(UserSession, current_session_id) if current_session_id is not None else None
        self.end_all_for(session, user_id=user.id, reason=reason)
        if current is None or current.user_id != user.id:
            return None
        token = self.start(session, user=user, context=context, amr=tuple((current.amr or "pwd").split()))
        if current.authenticated_at is not None:
            session.execute(
                update(UserSession)
                .where(UserSession.token_hash == self.hasher.hash(token))
                .values(authenticated_at=current.authenticated_at)
            )
        return token

    def end_all_for(self, session: Session, *, user_id: int, reason: str, keep_session_id: int | None = None) -> int:
        """End every live session of a user (but ``keep_session_id``); return how many."""
        live = select(UserSession.id).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        if keep_session_id is not None:
            live = live.where(UserSession.id != keep_session_id)
        ids = list(session.scalars(live))
        if not ids:
            return 0
        result = session.execute(
            update(UserSession)
            .where(UserSession.id.in_(ids), UserSession.revoked_at.is_(None))
            .values(revoked_at=self.clock.now(), revoked_reason=reason)
        )
        self.ended(session, ids, reason=reason)
        return cast(CursorResult[Any], result).rowcount  # an UPDATE's result: a CursorResult
