"""The account's own backup codes, email codes and the lost-phone path (issue 4).

Use cases, each validating, changing state, writing its audit event in the same
transaction, and sending its email once committed:

- ``regenerate_recovery_codes``: after re-authentication, a new set replaces all.
- ``start_email_method`` / ``confirm_email_method`` / ``remove_email_method``.
- ``send_reauth_code``: an emailed code to re-authenticate with (for accounts whose
  only method besides backup codes is email).
- ``start_totp_replacement``: a new authenticator app after re-authentication; the
  old one keeps working until the new one is confirmed (``AccountService.confirm_totp``).
"""

from __future__ import annotations

from dataclasses import dataclass

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.errors import Conflict, DeliveryFailed, Forbidden, InvalidCode, InvalidInput, Throttled, TwofoldError
from twofold.core.policy import Policy
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail, UndeliveredMailLog
from twofold.core.signin import code_throttle_key
from twofold.throttle import Throttle
from twofold.factors.base import FactorRegistry, Outcome
from twofold.factors.email_code.factor import CHALLENGE, CODE_TTL, CONFIRM_ADDRESS, SENDS_PER_ACCOUNT, EmailCodeFactor
from twofold.factors.recovery_codes.factor import RecoveryCodeFactor
from twofold.factors.totp.factor import TotpEnrollment, TotpFactor
from twofold.store.db import Database
from twofold.store.models import UndeliveredMail, User


class TwoFactorRequired(Conflict):
    code = "two_factor_not_enabled"
    message = "Two-factor authentication is not on for this account. Turn it on first."


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


class RecoveryService:
    def __init__(
        self,
        *,
        db: Database,
        clock,
        audit: AuditLog,
        throttle: Throttle,
        factors: FactorRegistry,
        totp: TotpFactor,
        recovery: RecoveryCodeFactor,
        email: EmailCodeFactor,
        reauth: Reauthentication,
        mail: SecurityMail,
        undelivered: UndeliveredMailLog,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._throttle = throttle
        self._factors = factors
        self._totp = totp
        self._recovery = recovery
        self._email = email
        self._reauth = reauth
        self._mail = mail
        self._undelivered = undelivered

    # -- backup codes ------------------------------------------------------------------

    def recovery_codes_left(self, user: User) -> int:
        with self._db.reading() as s:
            return self._recovery.remaining(s, user=user)

    def regenerate_recovery_codes(self, *, user: User, password: str, code: str, context: RequestContext) -> list[str]:
        """A new set of 10 codes after re-authentication; every earlier code stops working."""
        password_ok = self._reauth.check_password(user=user, password=password)
        codes: list[str] = []
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if not self._factors.enabled_for(s, user):
                raise TwoFactorRequired()
            proof = self._reauth.verify(
                s, user=user, password_ok=password_ok, code=code, context=context, action="regenerate_recovery_codes"
            )
            if proof.failure is None:
                codes = self._recovery.generate(s, user=user)
                self._audit.record(
                    s, EventTag.RECOVERY_CODES_GENERATED, context=context, practice_id=user.practice_id,
                    actor_id=user.id, subject_id=user.id, details={"count": len(codes), "proof": proof.method},
                )
        if proof.failure:
            raise proof.failure
        self._mail.notify_recovery_codes_generated(user, context)
        return codes

    def unused_recovery_codes(self, *, user: User, codes: list[str]) -> list[str]:
        """Those of ``codes`` that are still unused codes of ``user`` (to download or print them again
        from the page that showed them, without the server ever keeping them readable)."""
        with self._db.reading() as s:
            return self._recovery.unused_among(s, user=user, codes=codes[:20])

    # -- email codes as a method ----------------------------------------------------------

    def email_method_state(self, user: User) -> dict:
        """For the settings page: is it on, may it be added, and why not."""
        with self._db.reading() as s:
            user = s.get(User, user.id)
            confirmed = self._email.is_confirmed_for(s, user)
            return {
                "added": confirmed,
                "allowed": Policy.of(user.practice).allows(self._email.kind),
                "needs_app": user.role == "admin" and not self._email.has_stronger_factor(s, user),
            }

    def start_email_method(self, *, user: User, context: RequestContext) -> CodeSent:
        """Email a code to the account's address, to confirm it receives mail."""
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if not Policy.of(user.practice).allows(self._email.kind):
                raise EmailCodesNotAllowed()
            if self._email.is_confirmed_for(s, user):
                raise EmailMethodAlreadyAdded()
            if user.role == "admin" and not self._email.has_stronger_factor(s, user):
                raise AuthenticatorRequired()
            code, failure = self._issue(s, user=user, purpose=CONFIRM_ADDRESS, context=context)
        if failure:
            raise failure
        return self._deliver(user, code=code, wording="confirm_address", context=context)

    def confirm_email_method(self, *, user: User, code: str, context: RequestContext) -> EmailMethodAdded:
        """Add email codes once the emailed code comes back. Turns 2FA on (with backup codes) if it was off."""
        failure: TwofoldError | None = None
        added: EmailMethodAdded | None = None
        with self._db.transaction() as s:
            key = code_throttle_key(user.id)
            wait = self._throttle.retry_after(s, [key])
            if wait:
                raise Throttled(wait, "code attempts")
            user = s.get(User, user.id)
            if not Policy.of(user.practice).allows(self._email.kind):
                raise EmailCodesNotAllowed()
            if self._email.is_confirmed_for(s, user):
                raise EmailMethodAlreadyAdded()
            if user.role == "admin" and not self._email.has_stronger_factor(s, user):
                raise AuthenticatorRequired()
            verification = self._email.check(s, user=user, code=code, purpose=CONFIRM_ADDRESS)
            facts = dict(context=context, practice_id=user.practice_id, actor_id=user.id, subject_id=user.id)
            if verification.outcome is Outcome.MALFORMED:
                raise InvalidInput("Enter the 8-digit code from the email we sent you (digits only).")
            if not verification.accepted:
                self._throttle.hit(s, [key])
                self._audit.record(s, EventTag.EMAIL_METHOD_CONFIRM_FAILED, **facts, details={"reason": str(verification.outcome)})
                failure = ConfirmationCodeWrong()
            else:
                turned_on = not self._factors.enabled_for(s, user)
                self._email.add_method(s, user=user)
                self._audit.record(s, EventTag.EMAIL_METHOD_ADDED, **facts)
                codes: list[str] = []
                if turned_on:
                    self._totp.discard_pending(s, user=user)
                    self._audit.record(s, EventTag.TWO_FACTOR_ENABLED, **facts, details={"method": "email"})
                    codes = self._recovery.generate(s, user=user)
                    self._audit.record(s, EventTag.RECOVERY_CODES_GENERATED, **facts, details={"count": len(codes)})
                added = EmailMethodAdded(turned_on, codes)
        if failure:
            raise failure
        if added.turned_on:
            self._mail.notify_two_factor_enabled(user, context, method="email")
        else:
            self._mail.notify_email_method_added(user, context)
        return added

    def remove_email_method(self, *, user: User, password: str, code: str, context: RequestContext) -> None:
        """Stop email codes, after re-authentication. Refused when email is the last real method."""
        password_ok = self._reauth.check_password(user=user, password=password)
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if not self._email.is_confirmed_for(s, user):
                raise EmailMethodNotAdded()
            if not self._email.has_stronger_factor(s, user):
                raise LastMethod()
            proof = self._reauth.verify(
                s, user=user, password_ok=password_ok, code=code, context=context, action="remove_email_method"
            )
            if proof.failure is None:
                self._email.remove(s, user=user)
                self._audit.record(
                    s, EventTag.EMAIL_METHOD_REMOVED, context=context, practice_id=user.practice_id,
                    actor_id=user.id, subject_id=user.id, details={"proof": proof.method},
                )
        if proof.failure:
            raise proof.failure
        proof.after_commit(context)
        self._mail.notify_email_method_removed(user, context)

    def send_reauth_code(self, *, user: User, context: RequestContext) -> CodeSent:
        """Email a code to confirm a security change with (when email codes are one of the account's methods)."""
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if self._email.kind not in self._factors.enabled_for(s, user, Policy.of(user.practice).second_factors):
                raise EmailMethodNotAdded("Email codes are not one of your sign-in methods: use your app or a backup code.")
            code, failure = self._issue(s, user=user, purpose=CHALLENGE, context=context)
        if failure:
            raise failure
        return self._deliver(user, code=code, wording="reauth", context=context)

    # -- the authenticator app ----------------------------------------------------------

    def start_totp_replacement(self, *, user: User, password: str, code: str, context: RequestContext) -> TotpEnrollment:
        """A new app after re-authentication (a backup code works: the lost-phone path).

        The old app keeps working until the new one's first code is confirmed with
        ``AccountService.confirm_totp``; that moment it stops. For an account whose
        2FA is on by email codes alone, this adds an app.
        """
        password_ok = self._reauth.check_password(user=user, password=password)
        enrollment: TotpEnrollment | None = None
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if not self._factors.enabled_for(s, user):
                raise TwoFactorRequired("Two-factor authentication is not on. Set up an authenticator app instead.")
            proof = self._reauth.verify(
                s, user=user, password_ok=password_ok, code=code, context=context, action="replace_authenticator"
            )
            if proof.failure is None:
                enrollment = self._totp.start_enrollment(s, user=user, issuer=user.practice.name or "Twofold")
                self._audit.record(
                    s, EventTag.TOTP_REPLACEMENT_STARTED, context=context, practice_id=user.practice_id,
                    actor_id=user.id, subject_id=user.id, details={"proof": proof.method},
                )
        if proof.failure:
            raise proof.failure
        proof.after_commit(context)
        return enrollment

    # -- mail that did not arrive -----------------------------------------------------------

    def undelivered_mail(self, user: User) -> list[UndeliveredMail]:
        return self._undelivered.recent_for(user.id)

    def dismiss_undelivered_mail(self, user: User) -> int:
        return self._undelivered.dismiss(user.id)

    # -- helpers -----------------------------------------------------------------------

    def _issue(self, s, *, user: User, purpose: str, context: RequestContext) -> tuple[str | None, TwofoldError | None]:
        facts = dict(context=context, practice_id=user.practice_id, actor_id=user.id, subject_id=user.id)
        try:
            code = self._email.issue(s, user=user, purpose=purpose)
        except Throttled as exc:
            self._audit.record(s, EventTag.EMAIL_CODE_SEND_LIMITED, **facts, details={"purpose": purpose, "retry_after": exc.retry_after})
            return None, exc
        self._audit.record(s, EventTag.EMAIL_CODE_SENT, **facts, details={"purpose": purpose})
        return code, None

    def _deliver(self, user: User, *, code: str, wording: str, context: RequestContext) -> CodeSent:
        minutes = int(CODE_TTL.total_seconds() // 60)
        if not self._mail.send_code(user, code=code, purpose=wording, minutes=minutes, context=context):
            raise DeliveryFailed()
        return CodeSent(
            sent_to=user.email, expires_in=int(CODE_TTL.total_seconds()),
            resend_after=SENDS_PER_ACCOUNT.limits[0].window_seconds,
        )
