"""Email codes as a method of the account: adding it (an emailed code proves the address), removing
it after re-authentication, and sending a code to re-authenticate with.

NIST SP 800-63B-4 §3.1.3.1 rules email out for out-of-band authentication, so a
practice may disallow it and an admin may have it only beside a stronger factor
(``factor.py`` explains). Every send and every refusal is audited; sending is
limited per account (the factor's ``SendLimited``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.errors import Conflict, DeliveryFailed, Forbidden, InvalidCode, InvalidInput, Throttled
from twofold.factors.base import AuditFacts, BackupCodeIssuer, FactorRegistry, FactorResponse, Outcome, PendingSetups
from twofold.factors.email_code.factor import CHALLENGE, CODE_TTL, CONFIRM_ADDRESS, SENDS_PER_ACCOUNT, EmailCodeFactor
from twofold.store.db import Database, Refusal
from twofold.store.models import User
from twofold.throttle import Throttle, code_throttle_key


class EmailCodesNotAllowed(Forbidden):
    code = "email_not_allowed"
    message = (
        "Your practice does not allow sign-in codes by email. Use an authenticator app, and keep your backup "
        "codes safe."
    )


class AuthenticatorRequired(Forbidden):
    code = "authenticator_required"
    message = (
        "Practice admins must use an authenticator app: email can never be an admin's only method. Set up the "
        "app first, then add email codes as a spare."
    )


class EmailMethodAlreadyAdded(Conflict):
    code = "email_method_already_added"
    message = "Email codes are already one of your sign-in methods."


class EmailMethodNotAdded(Conflict):
    code = "email_method_not_added"
    message = "Email codes are not one of your sign-in methods."


class LastMethod(Conflict):
    code = "last_method"
    message = (
        "Email codes are your only sign-in method besides backup codes. Add an authenticator app first, or turn "
        "two-factor authentication off."
    )


class ConfirmationCodeWrong(InvalidCode):
    message = (
        "That code is not right, or it has expired or was replaced by a newer one. Enter the 8 digits from the "
        "newest email, or ask for a new code."
    )


@dataclass(frozen=True)
class CodeSent:
    """An emailed code that went out: to whom, how long it works, when another may be asked for."""

    sent_to: str
    expires_in: int
    resend_after: int


@dataclass(frozen=True)
class EmailMethodAdded:
    """``recovery_codes`` is non-empty when adding email turned 2FA on (shown once)."""

    turned_on: bool
    recovery_codes: list[str]
    session_token: str | None = None  # the current session's successor when 2FA was turned on


@dataclass(kw_only=True, slots=True)
class EmailCodeEnrollmentService:
    db: Database
    audit: AuditLog
    throttle: Throttle
    factor: EmailCodeFactor
    factors: FactorRegistry
    reauth: Reauthentication
    backup_codes: BackupCodeIssuer
    # Other factors' unconfirmed set-ups, dropped when email turns 2FA on: one begun
    # while 2FA was off must not add a factor later without re-authentication.
    pending_elsewhere: list[PendingSetups]
    mail: SecurityMail
    sessions: SessionService

    def email_method_state(self, user: User) -> dict:
        """For the settings page: is it on, may it be added, and why not."""
        with self.db.reading() as s:
            user = s.get_one(User, user.id)
            return {
                "added": self.factor.is_confirmed_for(s, user),
                "allowed": self.factors.allows(Policy.of(user.practice).allowed_methods, self.factor.kind),
                "needs_app": user.role == "admin" and not self.factor.has_stronger_factor(s, user),
            }

    def start_email_method(self, *, user: User, context: RequestContext) -> CodeSent:
        """Email a code to the account's address, to confirm it receives mail."""
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            self._check_may_add(s, user)
            code = self._issue(s, user=user, purpose=CONFIRM_ADDRESS, context=context)
        return self._deliver(user, code=code, wording="confirm_address", context=context)

    def confirm_email_method(
        self, *, user: User, code: FactorResponse, context: RequestContext, session_id: int | None = None
    ) -> EmailMethodAdded:
        """Add email codes once the emailed code comes back. Turns 2FA on (with backup codes) if it was off:
        then every other session ends and the current one (``session_id``) is renewed, its token returned."""
        with self.db.transaction() as s:
            key = code_throttle_key(user.id)
            wait = self.throttle.retry_after(s, [key])
            if wait:
                raise Throttled(wait, "code attempts")
            user = s.get_one(User, user.id)
            self._check_may_add(s, user)
            verification = self.factor.check(s, user=user, code=code, purpose=CONFIRM_ADDRESS)
            facts: AuditFacts = {
                "context": context,
                "practice_id": user.practice_id,
                "actor_id": user.id,
                "subject_id": user.id,
            }
            if verification.outcome is Outcome.MALFORMED:
                raise InvalidInput("Enter the 8-digit code from the email we sent you (digits only).")
            if not verification.accepted:
                self.throttle.hit(s, [key])
                self.audit.record(
                    s, EventTag.EMAIL_METHOD_CONFIRM_FAILED, **facts, details={"reason": str(verification.outcome)}
                )
                raise Refusal(ConfirmationCodeWrong())
            turned_on = not self.factors.enabled_for(s, user)
            self.factor.add_method(s, user=user)
            self.audit.record(s, EventTag.EMAIL_METHOD_ADDED, **facts)
            codes: list[str] = []
            token = None
            if turned_on:
                for setups in self.pending_elsewhere:
                    setups.discard_pending(s, user=user)
                self.audit.record(s, EventTag.TWO_FACTOR_ENABLED, **facts, details={"method": self.factor.kind})
                codes = self.backup_codes.issue_first_set(s, user=user, context=context)
                token = self.sessions.renew_after_privilege_change(
                    s, user=user, current_session_id=session_id, context=context, reason="two_factor_enabled"
                )
        if turned_on:
            self.mail.notify_two_factor_enabled(user, context, method_label=self.factor.described_as)
        else:
            self.mail.notify_email_method_added(user, context)
        return EmailMethodAdded(turned_on, codes, token)

    def remove_email_method(self, *, user: User, password: str, code: FactorResponse, context: RequestContext) -> None:
        """Stop email codes, after re-authentication. Refused when email is the last real method."""
        with self.reauth.password(user=user, password=password) as password_check, self.db.transaction() as s:
            user = s.get_one(User, user.id)
            if not self.factor.is_confirmed_for(s, user):
                raise EmailMethodNotAdded()
            if not self.factor.has_stronger_factor(s, user):
                raise LastMethod()
            proof = self.reauth.verify(
                s, user=user, password=password_check, code=code, context=context, action="remove_email_method"
            )
            self.factor.remove(s, user=user)
            self.audit.record(
                s,
                EventTag.EMAIL_METHOD_REMOVED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"proof": proof.method},
            )
        proof.after_commit(context)
        self.mail.notify_email_method_removed(user, context)

    def send_reauth_code(self, *, user: User, context: RequestContext) -> CodeSent:
        """Email a code to confirm a security change with (when email codes are one of the account's methods)."""
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            allowed = self.factors.allowed(Policy.of(user.practice).allowed_methods)
            if self.factor.kind not in self.factors.enabled_for(s, user, allowed):
                raise EmailMethodNotAdded(
                    "Email codes are not one of your sign-in methods: use your app or a backup code."
                )
            code = self._issue(s, user=user, purpose=CHALLENGE, context=context)
        return self._deliver(user, code=code, wording="reauth", context=context)

    # -- helpers -----------------------------------------------------------------------

    def _check_may_add(self, s: Session, user: User) -> None:
        if not self.factors.allows(Policy.of(user.practice).allowed_methods, self.factor.kind):
            raise EmailCodesNotAllowed()
        if self.factor.is_confirmed_for(s, user):
            raise EmailMethodAlreadyAdded()
        if user.role == "admin" and not self.factor.has_stronger_factor(s, user):
            raise AuthenticatorRequired()

    def _issue(self, s: Session, *, user: User, purpose: str, context: RequestContext) -> str:
        """A new code of ``purpose``, audited as sent; at the send limit, audited and refused (``Refusal``)."""
        facts: AuditFacts = {
            "context": context,
            "practice_id": user.practice_id,
            "actor_id": user.id,
            "subject_id": user.id,
        }
        try:
            code = self.factor.issue(s, user=user, purpose=purpose)
        except Throttled as exc:
            self.audit.record(
                s,
                EventTag.EMAIL_CODE_SEND_LIMITED,
                **facts,
                details={"purpose": purpose, "retry_after": exc.retry_after},
            )
            raise Refusal(exc) from None
        self.audit.record(s, EventTag.EMAIL_CODE_SENT, **facts, details={"purpose": purpose})
        return code

    def _deliver(self, user: User, *, code: str, wording: str, context: RequestContext) -> CodeSent:
        minutes = int(CODE_TTL.total_seconds() // 60)
        if not self.mail.send_code(user, code=code, purpose=wording, minutes=minutes, context=context):
            raise DeliveryFailed()
        return CodeSent(
            sent_to=user.email,
            expires_in=int(CODE_TTL.total_seconds()),
            resend_after=SENDS_PER_ACCOUNT.limits[0].window_seconds,
        )
