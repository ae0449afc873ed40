"""Backup codes as the account sees them: the first set when 2FA is turned on, a new set after
re-authentication, and the set just shown, kept sealed for that session only (to download it or
show it again without the client ever sending codes back)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import TwoFactorNotEnabled
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.crypto.secret_box import DecryptionError, SecretBox
from twofold.factors.base import FactorRegistry, FactorResponse
from twofold.factors.recovery_codes.factor import RecoveryCodeFactor
from twofold.store.db import Database, lock_account
from twofold.store.models import ShownRecoveryCodes, User

# How long the page that showed a new set can still download it or print it again.
SHOWN_CODES_KEPT = timedelta(hours=1)


@dataclass(kw_only=True, slots=True)
class RecoveryCodeEnrollmentService:
    """Issuing backup codes (a ``BackupCodeIssuer`` for the factors that turn 2FA on)."""

    db: Database
    audit: AuditLog
    factor: RecoveryCodeFactor
    factors: FactorRegistry
    reauth: Reauthentication
    mail: SecurityMail
    box: SecretBox
    clock: Clock

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
        with self.db.reading() as s:  # every sign-in asks: a read first, a write only when codes are due
            user = s.get_one(User, user_id)
            if self.factor.ever_issued(s, user=user) or not self.factors.enabled_for(s, user):
                return []
        with self.db.transaction() as s:
            lock_account(s, user_id)  # two sign-ins at once issue one set
            user = s.get_one(User, user_id)
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

    # -- the set just shown, for its page's download and "I saved them" -------------------------

    def hold_shown(self, *, session_id: int, user: User, codes: list[str]) -> None:
        """Keep ``codes`` (just shown in session ``session_id``) sealed for that session only, replacing any earlier set."""
        now = self.clock.now()
        sealed = self.box.seal(json.dumps(codes).encode(), context=_shown_context(session_id, user.id))
        with self.db.transaction() as s:
            s.merge(
                ShownRecoveryCodes(
                    session_id=session_id,
                    user_id=user.id,
                    sealed_codes=sealed,
                    created_at=now,
                    expires_at=now + SHOWN_CODES_KEPT,
                )
            )

    def shown_codes(self, *, session_id: int, user: User) -> list[str]:
        """The set last shown in this session that is still unused (empty when none, expired or saved)."""
        with self.db.reading() as s:
            row = s.get(ShownRecoveryCodes, session_id)
            if row is None or row.user_id != user.id or row.expires_at <= self.clock.now():
                return []
            try:
                codes = json.loads(self.box.open(row.sealed_codes, context=_shown_context(session_id, user.id)))
            except (DecryptionError, ValueError):
                return []
            return self.factor.unused_among(s, user=user, codes=[str(code) for code in codes])

    def forget_shown(self, *, session_id: int) -> None:
        """The member has saved the set: it is no longer kept for this session."""
        with self.db.transaction() as s:
            s.execute(delete(ShownRecoveryCodes).where(ShownRecoveryCodes.session_id == session_id))


def _shown_context(session_id: int, user_id: int) -> str:
    return f"shown-recovery-codes:{session_id}:{user_id}"
