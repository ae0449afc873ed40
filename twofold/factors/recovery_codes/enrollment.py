"""Backup codes as the account sees them: the first set when 2FA is turned on, a new set after
re-authentication, and finding which of a shown set are still unused (to print them again)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.core.account import TwoFactorNotEnabled
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.factors.base import FactorRegistry, FactorResponse
from twofold.factors.recovery_codes.factor import RecoveryCodeFactor
from twofold.store.db import Database
from twofold.store.models import User


@dataclass(kw_only=True, slots=True)
class RecoveryCodeEnrollmentService:
    """Issuing backup codes (a ``BackupCodeIssuer`` for the factors that turn 2FA on)."""

    db: Database
    audit: AuditLog
    factor: RecoveryCodeFactor
    factors: FactorRegistry
    reauth: Reauthentication
    mail: SecurityMail

    def issue_first_set(self, session: Session, *, user: User, context: RequestContext) -> list[str]:
        """The first 10 codes, as 2FA is turned on (audited); returned to be shown once."""
        codes = self.factor.generate(session, user=user)
        self.audit.record(
            session,
            EventTag.RECOVERY_CODES_GENERATED,
            context=context,
            practice_id=user.practice_id,
            actor_id=user.id,
            subject_id=user.id,
            details={"count": len(codes)},
        )
        return codes

    def hand_over_first_set(self, *, user_id: int, context: RequestContext) -> list[str]:
        """The first 10 codes of a member whose 2FA is on but who never had any (an admin set up
        their app on the admin's screen, where the codes are not shown): issued at the member's
        own sign-in, to be shown to them once. Empty when none are due."""
        with self.db.transaction() as s:
            user = s.get_one(User, user_id, with_for_update=True)
            if self.factor.ever_issued(s, user=user) or not self.factors.enabled_for(s, user):
                return []
            return self.issue_first_set(s, user=user, context=context)

    def recovery_codes_left(self, user: User) -> int:
        with self.db.reading() as s:
            return self.factor.remaining(s, user=user)

    def regenerate_recovery_codes(
        self, *, user: User, password: str, code: FactorResponse, context: RequestContext
    ) -> list[str]:
        """A new set of 10 codes after re-authentication; every earlier code stops working."""
        with self.reauth.password(user=user, password=password) as password_check, self.db.transaction() as s:
            user = s.get_one(User, user.id)
            if not self.factors.enabled_for(s, user):
                raise TwoFactorNotEnabled("Two-factor authentication is not on for this account. Turn it on first.")
            proof = self.reauth.verify(
                s,
                user=user,
                password=password_check,
                code=code,
                context=context,
                action="regenerate_recovery_codes",
            )
            codes = self.factor.generate(s, user=user)
            self.audit.record(
                s,
                EventTag.RECOVERY_CODES_GENERATED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"count": len(codes), "proof": proof.method},
            )
        self.mail.notify_recovery_codes_generated(user, context)
        return codes

    def unused_recovery_codes(self, *, user: User, codes: list[str]) -> list[str]:
        """Those of ``codes`` that are still unused codes of ``user`` (to download or print them again
        from the page that showed them, without the server ever keeping them readable)."""
        with self.db.reading() as s:
            return self.factor.unused_among(s, user=user, codes=codes[:20])
