"""Resetting a member's two-factor authentication: by a practice admin, or by the operator (break-glass).

A reset removes every method of the member (every factor in the registry), ends
their sessions and every other standing trust (remembered browsers, through the
``TrustRevoker``s the wiring adds), and demands enrolment at their next sign-in.
It is audited with the reason and the member is told by email.

The admin proves it is really them first (re-authentication: their own password
and a current code, DESIGN invariant 6), so a stolen admin session alone cannot
strip a colleague's protection. The operator's break-glass command runs on the
server itself and is audited the same way, marked ``via: cli``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import TwoFactorNotEnabled
from twofold.core.policy import Policy
from twofold.core.practice.enforcement import TwoFactorEnforcement
from twofold.core.practice.members import TrustRevoker, member_in
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.core.signin import normalize_email
from twofold.errors import AdminTwoFactorRequired, Forbidden, InvalidInput, NotFound
from twofold.factors.base import FactorRegistry, FactorResponse
from twofold.store.db import Database
from twofold.store.models import User, account_by_email

MAX_REASON = 500


class CannotResetSelf(Forbidden):
    code = "cannot_reset_self"
    message = "You cannot reset your own two-factor authentication here. Ask another admin, or use your backup codes."


class ResetNotice(Protocol):
    """Tells a member their 2FA was reset. The security emails of the backup-codes issue can take this over."""

    def notify_admin_reset(self, *, member: User, by: str, reason: str, context: RequestContext) -> None:
        """Queue the notice; never raises for a delivery problem."""


@dataclass(kw_only=True, slots=True)
class SecurityMailResetNotice:
    """The reset email, in the same form as every other security email."""

    mail: SecurityMail

    def notify_admin_reset(self, *, member: User, by: str, reason: str, context: RequestContext) -> None:
        self.mail.notify_admin_reset(member, context, admin_name=by, reason=reason)


class ResetReasonInvalid(InvalidInput):
    """The reason for a reset is missing or too long; ``field`` names the input it is about."""

    field = "reason"


def checked_reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ResetReasonInvalid("Give a reason for the reset (for example: lost phone). It is kept in the audit log.")
    if len(reason) > MAX_REASON:
        raise ResetReasonInvalid(f"Keep the reason under {MAX_REASON} characters.")
    return reason


@dataclass(kw_only=True, slots=True)
class TwoFactorResetService:
    db: Database
    clock: Clock
    audit: AuditLog
    factors: FactorRegistry
    reauth: Reauthentication
    sessions: SessionService
    enforcement: TwoFactorEnforcement
    trust_revokers: list[TrustRevoker]
    notice: ResetNotice

    def reset_member_two_factor(
        self,
        *,
        practice_id: int,
        admin: User,
        member_id: int,
        password: str,
        code: FactorResponse,
        reason: str,
        context: RequestContext,
    ) -> None:
        """An admin resets a member of their practice, after re-authenticating (password and a code).

        The admin's code may be of any method they have that their practice allows,
        as for every other re-authentication; their password guesses go one at a
        time, as at sign-in.
        """
        reason = checked_reason(reason)
        if member_id == admin.id:
            raise CannotResetSelf()
        with self.db.reading() as s:
            member_in(s, practice_id=practice_id, member_id=member_id)
            fresh = s.get_one(User, admin.id)
            methods = self.factors.enabled_for(
                s, fresh, self.factors.allowed(Policy.of(fresh.practice).allowed_methods)
            )
            if not methods:
                raise AdminTwoFactorRequired()
            if not any(self.factors[kind].normalize(code) for kind in methods):
                # Malformed input changes nothing: no attempt is counted (as at sign-in).
                raise InvalidInput("Enter the current code from your own authenticator app.")
        with self.reauth.password(user=fresh, password=password) as password_check, self.db.transaction() as s:
            admin = s.get_one(User, admin.id)
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            removable = self.factors.enabled_for(s, member)
            self.reauth.verify(
                s,
                user=admin,
                password=password_check,
                code=code,
                context=context,
                action="reset_member_two_factor",
                failed_event=EventTag.TWO_FACTOR_RESET_FAILED,
                subject_id=member.id,
                wrong_password_message="Your password is not right.",
            )
            if not removable:
                raise TwoFactorNotEnabled("This member has no two-factor authentication to reset.")
            self._reset(s, member, actor_id=admin.id, reason=reason, via="admin", context=context)
        self.notice.notify_admin_reset(
            member=member, by=f"{admin.name} (practice admin)", reason=reason, context=context
        )

    def break_glass_reset(self, *, email: str, reason: str, context: RequestContext) -> User:
        """The operator's reset from the server's command line, for a practice that locked itself out."""
        reason = checked_reason(reason)
        with self.db.transaction() as s:
            member = s.execute(account_by_email(normalize_email(email)).with_for_update(of=User)).scalar_one_or_none()
            if member is None:
                raise NotFound(f"No account has the email {email!r}.")
            if not self.factors.enabled_for(s, member):
                raise TwoFactorNotEnabled("This account has no two-factor authentication to reset.")
            self._reset(s, member, actor_id=None, reason=reason, via="cli", context=context)
        self.notice.notify_admin_reset(member=member, by="the Twofold operator", reason=reason, context=context)
        return member

    def _reset(
        self, s: Session, member: User, *, actor_id: int | None, reason: str, via: str, context: RequestContext
    ) -> None:
        removed = self.factors.enabled_for(s, member)
        for factor in self.factors:
            factor.remove(s, user=member)
        ended = self.sessions.end_all_for(s, user_id=member.id, reason="two_factor_reset")
        revoked = sum(r.revoke_all_for(s, user_id=member.id, reason="two_factor_reset") for r in self.trust_revokers)
        self.enforcement.demand(s, user_id=member.id, reason="admin_reset")
        self.audit.record(
            s,
            EventTag.TWO_FACTOR_RESET,
            context=context,
            practice_id=member.practice_id,
            actor_id=actor_id,
            subject_id=member.id,
            details={
                "reason": reason,
                "via": via,
                "methods_removed": removed,
                "sessions_ended": ended,
                "trust_revoked": revoked,
            },
        )
