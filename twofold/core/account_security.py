"""Account Settings > Security: the user's sessions, remembered browsers and password.

Every revocation is a row update, so it holds on the very next request in every
process; nothing is cached in a process or a signed cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import check_password_rules
from twofold.core.policy import Policy
from twofold.core.reauth import PasswordCheck, PasswordGate
from twofold.core.remembered import BrowserCookie, BrowserNotFound, BrowserView, RememberedBrowserService
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import ActiveSession, SessionService
from twofold.core.user_agents import browser_label
from twofold.crypto.passwords import PasswordHasher
from twofold.errors import InvalidCredentials, InvalidInput, NotFound
from twofold.store.db import Database, Refusal
from twofold.store.models import User, UserSession
from twofold.throttle import password_checks


class StandingAccess(Protocol):
    """Access a member gave out that outlives a session (an app's refresh token, for one)."""

    def revoke_all_for(self, session: Session, *, user_id: int, reason: str) -> int:
        """Revoke all of it for ``user_id`` in the caller's transaction; return how much was revoked."""


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "This session was not found. It may already have ended."


@dataclass(frozen=True, slots=True)
class SessionView:
    """One live session, as Account Settings shows it."""

    id: int
    label: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the earlier of the idle end and the absolute end, as of now
    ip: str | None
    current: bool


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    sessions_ended: int
    browsers_forgotten: int


def session_end(record: UserSession, policy: Policy) -> datetime:
    if record.workstation_id is not None:  # started on a shared workstation: its shorter idle timeout
        policy = policy.on_workstation()
    return min(record.last_seen_at + policy.idle_timeout, record.expires_at)


@dataclass(kw_only=True, slots=True)
class AccountSecurityService:
    db: Database
    clock: Clock
    passwords: PasswordHasher
    gate: PasswordGate
    audit: AuditLog
    sessions: SessionService
    remembered: RememberedBrowserService
    mail: SecurityMail
    # What "sign out everywhere" ends besides sessions (apps' OpenID Connect tokens).
    sign_out_everywhere: list[StandingAccess] = field(default_factory=list)

    # -- sessions ------------------------------------------------------------

    def sessions_of(self, *, active: ActiveSession) -> list[SessionView]:
        """The user's live sessions, this one first, then the most recently active."""
        with self.db.reading() as s:
            views = self._live_sessions(s, active)
        return sorted(views, key=lambda view: (not view.current, -view.last_seen_at.timestamp(), -view.id))

    def session_of(self, *, active: ActiveSession, session_id: int) -> SessionView:
        for view in self.sessions_of(active=active):
            if view.id == session_id:
                return view
        raise SessionNotFound()

    def end_session(self, *, active: ActiveSession, session_id: int, context: RequestContext) -> bool:
        """End one of the user's sessions; True when it was this one (the caller is then signed out)."""
        with self.db.transaction() as s:
            if session_id not in {view.id for view in self._live_sessions(s, active)}:
                raise SessionNotFound()
            self._end(s, active=active, ids=[session_id], scope="one", context=context)
        return session_id == active.session_id

    def end_sessions(self, *, active: ActiveSession, context: RequestContext, include_current: bool = False) -> int:
        """End every other session of the user ("sign out other sessions"), or with
        ``include_current`` this one too ("sign out everywhere"). Returns how many ended."""
        with self.db.transaction() as s:
            ids = [
                view.id for view in self._live_sessions(s, active) if include_current or view.id != active.session_id
            ]
            if ids:
                self._end(s, active=active, ids=ids, scope="all" if include_current else "others", context=context)
            if include_current:
                for access in self.sign_out_everywhere:
                    access.revoke_all_for(s, user_id=active.user.id, reason="signed_out_everywhere")
        return len(ids)

    # -- remembered browsers -------------------------------------------------------

    def browsers_of(self, *, user: User, cookies: Mapping[str, str] | None) -> list[BrowserView]:
        with self.db.reading() as s:
            return self.remembered.list_for(s, user=user, cookies=cookies)

    def browser_of(self, *, user: User, cookies: Mapping[str, str] | None, browser_id: int) -> BrowserView:
        for view in self.browsers_of(user=user, cookies=cookies):
            if view.id == browser_id:
                return view
        raise BrowserNotFound()

    def forget_browser(
        self, *, user: User, browser_id: int, cookies: Mapping[str, str] | None, context: RequestContext
    ) -> BrowserCookie | None:
        """Revoke one remembered browser; returns the cookie to delete when it was this browser."""
        with self.db.transaction() as s:
            loaded = s.get(User, user.id)
            if loaded is None:
                raise RuntimeError("the signed-in user's row is gone (users are deactivated, never deleted)")
            user = loaded
            current = any(
                v.current for v in self.remembered.list_for(s, user=user, cookies=cookies) if v.id == browser_id
            )
            self.remembered.revoke(s, user=user, browser_id=browser_id, context=context)
        return BrowserCookie(self.remembered.cookie_name(user.id)) if current else None

    def forget_browsers(self, *, user: User, context: RequestContext) -> tuple[int, BrowserCookie]:
        """Revoke every remembered browser of the user; returns how many and this browser's cookie to delete."""
        with self.db.transaction() as s:
            count = self.remembered.revoke_all_for(s, user.id, "revoked_by_user", context=context, actor_id=user.id)
        return count, BrowserCookie(self.remembered.cookie_name(user.id))

    # -- password ------------------------------------------------------------

    def change_password(
        self, *, active: ActiveSession, current_password: str, new_password: str, context: RequestContext
    ) -> PasswordChanged:
        """Change the password after checking the current one.

        Ends every other session and every remembered browser (a password change
        is what a user does when they fear someone else got in), keeps this
        session, audits, and tells the account by email. Wrong current passwords
        count against the same throttle as sign-in passwords, one guess at a time
        per account (the password gate).
        """
        check_password_rules(new_password)
        if new_password == current_password:
            raise InvalidInput("The new password must differ from the current one.")
        email = active.user.email
        with self.gate.guess(
            email=email,
            user_id=active.user.id,
            password=current_password,
            counted=password_checks(email, client="signed-in"),
        ) as check:
            return self._change_password(active=active, check=check, new_password=new_password, context=context)

    def _change_password(
        self, *, active: ActiveSession, check: PasswordCheck, new_password: str, context: RequestContext
    ) -> PasswordChanged:
        new_hash = self.passwords.hash(new_password) if check.ok else None
        with self.db.transaction() as s:
            user = s.get(User, active.user.id)
            if user is None:
                raise RuntimeError("the signed-in user's row is gone (users are deactivated, never deleted)")
            if not check.ok or user.password_hash != check.password_hash:
                # A changed hash means another request changed the password meanwhile.
                wait = check.count_failure(s)
                self.audit.record(
                    s,
                    EventTag.PASSWORD_CHANGE_FAILED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"reason": "wrong_password" if not check.ok else "changed_meanwhile"},
                )
                self.audit.record_lockout(
                    s,
                    wait=wait,
                    step="password_change",
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                )
                raise Refusal(InvalidCredentials("The current password is not right."))
            if new_hash is None:
                raise RuntimeError("no new hash for an accepted password")  # hashed above whenever check.ok
            now = self.clock.now()
            user.password_hash = new_hash
            user.password_changed_at = now
            others = [v.id for v in self._live_sessions(s, active) if v.id != active.session_id]
            if others:
                self._end(s, active=active, ids=others, scope="others", context=context, reason="password_changed")
            browsers = self.remembered.revoke_all_for(s, user.id, "password_changed", context=context, actor_id=user.id)
            self.audit.record(
                s,
                EventTag.PASSWORD_CHANGED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"sessions_ended": len(others), "browsers_forgotten": browsers},
            )
        self.mail.notify_password_changed(user, context)
        return PasswordChanged(sessions_ended=len(others), browsers_forgotten=browsers)

    # -- helpers -------------------------------------------------------------

    def _live_sessions(self, s: Session, active: ActiveSession) -> list[SessionView]:
        now = self.clock.now()
        rows = s.execute(
            select(UserSession).where(UserSession.user_id == active.user.id, UserSession.revoked_at.is_(None))
        ).scalars()
        views = []
        policy = Policy.of(active.user.practice)  # the practice's own (the current session's may be a workstation's)
        for record in rows:
            end = active.expires_at if record.id == active.session_id else session_end(record, policy)
            if now >= end:
                continue
            views.append(
                SessionView(
                    id=record.id,
                    label=browser_label(record.user_agent),
                    created_at=record.created_at,
                    last_seen_at=max(record.last_seen_at, now)
                    if record.id == active.session_id
                    else record.last_seen_at,
                    expires_at=end,
                    ip=record.ip,
                    current=record.id == active.session_id,
                )
            )
        return views

    def _end(
        self,
        s: Session,
        *,
        active: ActiveSession,
        ids: list[int],
        scope: str,
        context: RequestContext,
        reason: str = "revoked_by_user",
    ) -> None:
        s.execute(
            update(UserSession)
            .where(UserSession.id.in_(ids), UserSession.user_id == active.user.id, UserSession.revoked_at.is_(None))
            .values(revoked_at=self.clock.now(), revoked_reason=reason)
        )
        self.sessions.ended(s, ids, reason=reason)
        self.audit.record(
            s,
            EventTag.SESSION_REVOKED,
            context=context,
            practice_id=active.user.practice_id,
            actor_id=active.user.id,
            subject_id=active.user.id,
            details={"reason": reason, "scope": scope, "count": len(ids), "session_ids": sorted(ids)},
        )
