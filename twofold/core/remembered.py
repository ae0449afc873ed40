"""Remembered browsers: "Remember this browser for 30 days" on the code step.

A remembered browser holds a 256-bit random token in its own cookie; the
database holds only its keyed hash, bound to one user. At sign-in, after a
right password, a live token of that user lets the sign-in skip the code.

Trust ends at the earliest of: the policy's days after it was given (30 at
most; 0 turns the feature off), the policy's idle days without use, and a
revocation (by the user, an admin, a password change, turning 2FA off, an admin
reset). A token of another user, a modified or an ended one is ignored (the code
is asked) and audited; the browser is then told to drop the cookie.

One cookie per user and browser. A front-desk PC is shared by several staff:
with one cookie for the whole browser, each sign-in would overwrite the previous
person's trust, so the second receptionist would push the first back to typing
codes every day. Each user's cookie is named by a short keyed hash of the user
id (``twofold_rb_`` + 16 hex digits): the name tells the browser's other users
nothing about who signed in there, and sign-in reads exactly the one cookie of
the account whose password was just verified, so it is still one indexed lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.user_agents import browser_label
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import NotFound
from twofold.store.models import Practice, RememberedBrowser, User

COOKIE_PREFIX = "twofold_rb_"
TOKEN_BYTES = 32  # 256 bits
MAX_TOKEN_LENGTH = 128


class Rejection(StrEnum):
    """Why a presented token did not skip the code (kept in the audit log, never told the client)."""

    UNKNOWN = "unknown"  # no such token: modified, made up, or from a wiped database
    OTHER_USER = "other_user"  # a live token of another account
    REVOKED = "revoked"  # revoked or ended earlier
    EXPIRED = "expired"  # past its days
    IDLE = "idle"  # unused for too long


class BrowserNotFound(NotFound):
    code = "remembered_browser_not_found"
    message = "This remembered browser was not found. It may already have been forgotten."


@dataclass(frozen=True, slots=True)
class BrowserCookie:
    """The remembered-browser cookie to set (``value``, ``max_age`` seconds) or, with no value, to delete."""

    name: str
    value: str | None = None
    max_age: int = 0


@dataclass(frozen=True, slots=True)
class TrustCheck:
    """The outcome of presenting a browser's cookie at sign-in."""

    browser_id: int | None = None
    rejection: Rejection | None = None
    cookie: BrowserCookie | None = None  # a cookie to delete after a rejection

    @property
    def trusted(self) -> bool:
        return self.browser_id is not None


@dataclass(frozen=True, slots=True)
class BrowserView:
    """One live remembered browser, as Account Settings shows it."""

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime  # the earlier of the absolute end and the idle end, as of now
    ip: str | None
    last_ip: str | None
    current: bool
    remembered_until: datetime | None = None  # the absolute end, however often it is used
    idle_days: int = 0  # the trust also ends after this many days without use (0: no such limit)


def absolute_end(record: RememberedBrowser, policy: Policy) -> datetime:
    """The latest the trust of ``record`` can last, however often the browser is used."""
    return min(record.expires_at, record.created_at + timedelta(days=max(policy.remember_browser_days, 0)))


def trust_end(record: RememberedBrowser, policy: Policy) -> tuple[datetime, Rejection]:
    """When the trust of ``record`` ends under today's policy, and why.

    The policy is read again at every check, so a practice that shortens its days
    shortens the trust already given.
    """
    absolute = absolute_end(record, policy)
    if policy.remember_browser_idle_days > 0:
        idle = record.last_used_at + timedelta(days=policy.remember_browser_idle_days)
        if idle < absolute:
            return idle, Rejection.IDLE
    return absolute, Rejection.EXPIRED


@dataclass(kw_only=True, slots=True)
class RememberedBrowserService:
    """Grants, checks, lists and revokes remembered browsers, inside the caller's transaction.

    Every method takes the caller's SQLAlchemy session, so a grant or a revocation
    commits together with what caused it (a sign-in, a password change, 2FA off,
    an admin reset) and its audit event.
    """

    clock: Clock
    hasher: TokenHasher
    name_hasher: TokenHasher
    audit: AuditLog

    # -- cookies -----------------------------------------------------------------

    def cookie_name(self, user_id: int) -> str:
        """The name of ``user_id``'s remembered-browser cookie (64 bits of a keyed hash)."""
        return COOKIE_PREFIX + self.name_hasher.hash(f"user:{user_id}")[:16]

    def token_in(self, cookies: Mapping[str, str] | None, user_id: int) -> str | None:
        return (cookies or {}).get(self.cookie_name(user_id))

    # -- use cases -----------------------------------------------------------------

    def grant(self, session: Session, *, user: User, context: RequestContext) -> BrowserCookie | None:
        """Remember this browser for ``user``; None when the practice policy remembers no browser."""
        policy = Policy.of(user.practice)
        if policy.remember_browser_days <= 0:
            return None
        token = random_token(TOKEN_BYTES)
        now = self.clock.now()
        lifetime = timedelta(days=policy.remember_browser_days)
        record = RememberedBrowser(
            token_hash=self.hasher.hash(token),
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=now + lifetime,
            ip=context.ip,
            last_ip=context.ip,
            user_agent=(context.user_agent or "")[:512] or None,
        )
        session.add(record)
        session.flush()
        self.audit.record(
            session,
            EventTag.REMEMBERED_BROWSER_GRANTED,
            context=context,
            practice_id=user.practice_id,
            actor_id=user.id,
            subject_id=user.id,
            details={
                "browser_id": record.id,
                "days": policy.remember_browser_days,
                "label": browser_label(record.user_agent),
            },
        )
        return BrowserCookie(self.cookie_name(user.id), token, int(lifetime.total_seconds()))

    def check(
        self, session: Session, *, user: User, cookies: Mapping[str, str] | None, context: RequestContext
    ) -> TrustCheck:
        """Does this browser's cookie for ``user`` let the sign-in skip the code? One indexed lookup.

        Only call after ``user``'s password was verified. No cookie: nothing to
        audit. A live token: its use is recorded (last used, IP) and audited.
        Anything else is refused and audited; the returned ``cookie`` tells the
        browser to drop the useless one. A live token of another user is evidence
        of a stolen cookie, so that token is revoked too.
        """
        name = self.cookie_name(user.id)
        token = (cookies or {}).get(name)
        if token is None:
            return TrustCheck()
        now = self.clock.now()
        record = self.find(session, token)
        details: dict = {}
        if record is None:
            rejection = Rejection.UNKNOWN
        elif record.user_id != user.id:
            rejection = Rejection.OTHER_USER
            details["browser_id"] = record.id
            if record.revoked_at is None:
                self._revoke_rows(
                    session,
                    [record],
                    reason="presented_for_other_account",
                    context=context,
                    actor_id=None,
                    user_id=record.user_id,
                )
        elif record.revoked_at is not None:
            rejection = Rejection.REVOKED
            details.update(browser_id=record.id, revoked_reason=record.revoked_reason)
        else:
            end, why = trust_end(record, Policy.of(user.practice))
            if now < end:
                record.last_used_at = now
                record.last_ip = context.ip
                self.audit.record(
                    session,
                    EventTag.REMEMBERED_BROWSER_USED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"browser_id": record.id},
                )
                return TrustCheck(browser_id=record.id)
            record.revoked_at = now
            record.revoked_reason = str(why)
            self.audit.record(
                session,
                EventTag.REMEMBERED_BROWSER_EXPIRED,
                context=context,
                practice_id=user.practice_id,
                subject_id=user.id,
                details={"browser_id": record.id, "reason": str(why), "ended_at": end.isoformat()},
            )
            return TrustCheck(rejection=why, cookie=BrowserCookie(name))
        self.audit.record(
            session,
            EventTag.REMEMBERED_BROWSER_REJECTED,
            context=context,
            practice_id=user.practice_id,
            subject_id=user.id,
            details={"reason": str(rejection), **details},
        )
        return TrustCheck(rejection=rejection, cookie=BrowserCookie(name))

    def find(self, session: Session, token: str) -> RememberedBrowser | None:
        """The row of a presented token, live or not, of any user; one lookup by its keyed hash (unique index)."""
        if not 0 < len(token) <= MAX_TOKEN_LENGTH:
            return None
        return session.execute(
            select(RememberedBrowser).where(RememberedBrowser.token_hash == self.hasher.hash(token))
        ).scalar_one_or_none()

    def list_for(self, session: Session, *, user: User, cookies: Mapping[str, str] | None = None) -> list[BrowserView]:
        """``user``'s live remembered browsers, most recently used first; ``current`` marks this browser's."""
        policy = Policy.of(user.practice)
        now = self.clock.now()
        token = self.token_in(cookies, user.id)
        current_hash = self.hasher.hash(token) if token and len(token) <= MAX_TOKEN_LENGTH else None
        rows = session.execute(
            select(RememberedBrowser)
            .where(RememberedBrowser.user_id == user.id, RememberedBrowser.revoked_at.is_(None))
            .order_by(RememberedBrowser.last_used_at.desc(), RememberedBrowser.id.desc())
        ).scalars()
        views = []
        for record in rows:
            end, _why = trust_end(record, policy)
            if now >= end:
                continue
            views.append(
                BrowserView(
                    id=record.id,
                    label=browser_label(record.user_agent),
                    created_at=record.created_at,
                    last_used_at=record.last_used_at,
                    expires_at=end,
                    ip=record.ip,
                    last_ip=record.last_ip,
                    current=record.token_hash == current_hash,
                    remembered_until=absolute_end(record, policy),
                    idle_days=max(policy.remember_browser_idle_days, 0),
                )
            )
        return views

    def revoke(
        self,
        session: Session,
        *,
        user: User,
        browser_id: int,
        context: RequestContext,
        actor_id: int | None = None,
        reason: str = "revoked_by_user",
    ) -> None:
        """Forget one of ``user``'s remembered browsers; BrowserNotFound when it is not theirs or not live."""
        record = session.execute(
            select(RememberedBrowser).where(
                RememberedBrowser.id == browser_id,
                RememberedBrowser.user_id == user.id,
                RememberedBrowser.revoked_at.is_(None),
            )
        ).scalar_one_or_none()
        if record is None or self.clock.now() >= trust_end(record, Policy.of(user.practice))[0]:
            raise BrowserNotFound()
        self._revoke_rows(
            session,
            [record],
            reason=reason,
            context=context,
            actor_id=user.id if actor_id is None else actor_id,
            user_id=user.id,
        )

    def live_count_by_user(self, session: Session, user_ids) -> dict[int, int]:
        """Live remembered browsers of many users at once (the practice's member list)."""
        if not user_ids:
            return {}
        now = self.clock.now()
        rows = session.execute(
            select(RememberedBrowser, Practice)
            .join(User, User.id == RememberedBrowser.user_id)
            .join(Practice, Practice.id == User.practice_id)
            .where(RememberedBrowser.user_id.in_(list(user_ids)), RememberedBrowser.revoked_at.is_(None))
        ).all()
        counts: dict[int, int] = {}
        for record, practice in rows:
            if now < trust_end(record, Policy.of(practice))[0]:
                counts[record.user_id] = counts.get(record.user_id, 0) + 1
        return counts

    def revoke_all_for(
        self,
        session: Session,
        user_id: int,
        reason: str,
        *,
        context: RequestContext | None = None,
        actor_id: int | None = None,
    ) -> int:
        """End every remembered browser of ``user_id``; return how many were live.

        For a password change, 2FA off, a user's "forget all" and an admin reset
        (``reason`` says which, ``actor_id`` who). Audited once, in ``session``'s
        transaction, when anything was revoked.
        """
        records = list(
            session.execute(
                select(RememberedBrowser).where(
                    RememberedBrowser.user_id == user_id,
                    RememberedBrowser.revoked_at.is_(None),
                    RememberedBrowser.expires_at > self.clock.now(),
                )
            ).scalars()
        )
        if records:
            self._revoke_rows(
                session, records, reason=reason, context=context or RequestContext(), actor_id=actor_id, user_id=user_id
            )
        return len(records)

    def _revoke_rows(
        self,
        session: Session,
        records: list[RememberedBrowser],
        *,
        reason: str,
        context: RequestContext,
        actor_id: int | None,
        user_id: int,
    ) -> None:
        now = self.clock.now()
        ids = [record.id for record in records]
        session.execute(
            update(RememberedBrowser)
            .where(RememberedBrowser.id.in_(ids), RememberedBrowser.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason[:64])
        )
        owner = session.get(User, user_id)
        self.audit.record(
            session,
            EventTag.REMEMBERED_BROWSER_REVOKED,
            context=context,
            practice_id=owner.practice_id if owner else None,
            actor_id=actor_id,
            subject_id=user_id,
            details={"reason": reason, "count": len(ids), "browser_ids": ids},
        )
