"""Practices, members and the account's own two-factor settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.errors import Conflict, InvalidCode, InvalidInput, NotFound, Throttled, TwofoldError
from twofold.crypto.passwords import PasswordHasher
from twofold.core.policy import Policy
from twofold.core.remembered import RememberedBrowserService
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.core.signin import code_throttle_key, lock_account, normalize_email
from twofold.throttle import Throttle
from twofold.factors.base import FactorRegistry, Outcome
from twofold.factors.recovery_codes.factor import RecoveryCodeFactor
from twofold.factors.totp.factor import TotpEnrollment, TotpFactor
from twofold.store.db import Database
from twofold.store.models import ROLES, AuditChainHead, Practice, User
from twofold.audit import GENESIS

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B-4 §3.1.1.2: at least 8; we ask 12 (15 without MFA is advised).
MAX_PASSWORD_LENGTH = 256


class TwoFactorAlreadyEnabled(Conflict):
    code = "two_factor_already_enabled"
    message = (
        "Two-factor authentication is already on. To use a new authenticator app, choose \"Replace authenticator "
        "app\" and confirm with your password and a code."
    )


class TwoFactorNotEnabled(Conflict):
    code = "two_factor_not_enabled"
    message = "Two-factor authentication is not on for this account."


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"
    message = "This set-up was not found or has expired. Start the set-up again."


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    methods: list[str]
    recovery_codes_left: int = 0


@dataclass(frozen=True)
class TotpConfirmation:
    """What confirming an app did: ``enabled`` (2FA turned on; ``recovery_codes`` is the new set, shown
    once), ``added`` (2FA was on by email codes) or ``replaced`` (the earlier app stopped working)."""

    status: str
    recovery_codes: list[str]


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")


def check_email(email: str) -> str:
    email = normalize_email(email)
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 320 or domain.startswith(".") or domain.endswith("."):
        raise InvalidInput("Enter a valid email address, such as name@example.org.")
    return email


class AccountService:
    def __init__(
        self,
        *,
        db: Database,
        clock,
        passwords: PasswordHasher,
        throttle: Throttle,
        audit: AuditLog,
        factors: FactorRegistry,
        totp: TotpFactor,
        sessions: SessionService,
        remembered: RememberedBrowserService,
        recovery: RecoveryCodeFactor,
        reauth: Reauthentication,
        mail: SecurityMail,
    ) -> None:
        self._sessions = sessions
        self._remembered = remembered
        self._recovery = recovery
        self._reauth = reauth
        self._mail = mail
        self._db = db
        self._clock = clock
        self._passwords = passwords
        self._throttle = throttle
        self._audit = audit
        self._factors = factors
        self._totp = totp

    # -- practices and members ----------------------------------------------

    def create_practice(self, *, name: str, context: RequestContext) -> Practice:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("A practice needs a name of 1 to 200 characters.")
        try:
            with self._db.transaction() as s:
                practice = Practice(name=name, created_at=self._clock.now())
                s.add(practice)
                s.flush()
                s.add(AuditChainHead(chain=practice.id, seq=0, hash=GENESIS))
                s.flush()
                self._audit.record(s, EventTag.PRACTICE_CREATED, context=context, practice_id=practice.id, details={"name": name})
                return practice
        except IntegrityError:
            raise Conflict(f"A practice named {name!r} already exists.") from None

    def find_practice(self, name: str) -> Practice | None:
        with self._db.reading() as s:
            return s.execute(select(Practice).where(Practice.name == name.strip())).scalar_one_or_none()

    def add_member(
        self,
        *,
        practice_id: int,
        email: str,
        name: str,
        role: str,
        password: str,
        context: RequestContext,
        actor_id: int | None = None,
    ) -> User:
        email = check_email(email)
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("A member needs a name of 1 to 200 characters.")
        if role not in ROLES:
            raise InvalidInput(f"The role must be one of: {', '.join(ROLES)}.")
        check_password_rules(password)
        password_hash = self._passwords.hash(password)
        try:
            with self._db.transaction() as s:
                practice = s.get(Practice, practice_id)
                if practice is None:
                    raise NotFound("No such practice.")
                now = self._clock.now()
                user = User(
                    practice_id=practice_id, email=email, name=name, role=role, password_hash=password_hash,
                    active=True, created_at=now, password_changed_at=now, practice=practice,
                )
                s.add(user)
                s.flush()
                self._audit.record(
                    s, EventTag.MEMBER_ADDED, context=context, practice_id=practice_id, actor_id=actor_id,
                    subject_id=user.id, details={"role": role},
                )
                return user
        except IntegrityError:
            raise Conflict("An account with this email already exists.") from None

    # -- the account's own two-factor settings -------------------------------

    def two_factor_status(self, user: User) -> TwoFactorStatus:
        with self._db.reading() as s:
            methods = self._factors.enabled_for(s, user)
            left = self._recovery.remaining(s, user=user)
        return TwoFactorStatus(enabled=bool(methods), methods=methods, recovery_codes_left=left)

    def start_totp_enrollment(self, *, user: User, context: RequestContext) -> TotpEnrollment:
        """Set up the first factor. Once 2FA is on, a new app needs re-authentication
        (``RecoveryService.start_totp_replacement``)."""
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if self._factors.enabled_for(s, user):
                raise TwoFactorAlreadyEnabled()
            enrollment = self._totp.start_enrollment(s, user=user, issuer=user.practice.name or "Twofold")
            self._audit.record(
                s, EventTag.TOTP_ENROLLMENT_STARTED, context=context, practice_id=user.practice_id,
                actor_id=user.id, subject_id=user.id,
            )
            return enrollment

    def pending_totp_enrollment(self, *, user: User, enrollment_id: str) -> TotpEnrollment | None:
        """A pending set-up again (to show its QR code after a wrong first code)."""
        with self._db.reading() as s:
            return self._totp.pending_enrollment(s, user=user, enrollment_id=enrollment_id, issuer=user.practice.name or "Twofold")

    def confirm_totp(self, *, user: User, enrollment_id: str, code: str, context: RequestContext) -> TotpConfirmation:
        """Confirm a pending app with its first code; throttled like sign-in codes.

        When this turns 2FA on, the account gets its first 10 backup codes, returned
        here to be shown once. When it replaces an app, the old one stops working now.
        """
        failure: TwofoldError | None = None
        confirmation: TotpConfirmation | None = None
        with self._db.transaction() as s:
            lock_account(s, user.id)
            key = code_throttle_key(user.id)
            wait = self._throttle.retry_after(s, [key])
            if wait:
                raise Throttled(wait, "code attempts")
            user = s.get(User, user.id)
            had_app = self._totp.is_enabled_for(s, user)
            was_on = bool(self._factors.enabled_for(s, user))
            verification = self._totp.confirm_enrollment(s, user=user, enrollment_id=enrollment_id, code=code)
            if verification.outcome is Outcome.EXPIRED:
                raise EnrollmentNotFound()
            if verification.accepted:
                facts = dict(context=context, practice_id=user.practice_id, actor_id=user.id, subject_id=user.id)
                if had_app:
                    self._audit.record(s, EventTag.TOTP_REPLACED, **facts)
                    confirmation = TotpConfirmation("replaced", [])
                elif was_on:
                    self._audit.record(s, EventTag.TOTP_ADDED, **facts)
                    confirmation = TotpConfirmation("added", [])
                else:
                    self._audit.record(s, EventTag.TWO_FACTOR_ENABLED, **facts, details={"method": "totp"})
                    codes = self._recovery.generate(s, user=user)
                    self._audit.record(s, EventTag.RECOVERY_CODES_GENERATED, **facts, details={"count": len(codes)})
                    confirmation = TotpConfirmation("enabled", codes)
            else:
                wait = self._throttle.hit(s, [key])
                self._audit.record(
                    s, EventTag.TOTP_ENROLLMENT_FAILED, context=context, practice_id=user.practice_id,
                    actor_id=user.id, subject_id=user.id, details={"reason": str(verification.outcome)},
                )
                self._audit_lockout(s, user, wait, step="totp_confirm", context=context)
                failure = _code_error(verification.outcome)
        if failure:
            raise failure
        notify = {
            "enabled": lambda: self._mail.notify_two_factor_enabled(user, context, method="totp"),
            "added": lambda: self._mail.notify_authenticator_added(user, context),
            "replaced": lambda: self._mail.notify_authenticator_replaced(user, context),
        }
        notify[confirmation.status]()
        return confirmation

    def disable_two_factor(self, *, user: User, password: str, code: str, context: RequestContext) -> None:
        """Turn 2FA off after re-checking the password and a current code (re-authentication).

        The code may be an app code, a backup code or an emailed code; every
        factor's credentials are then removed, backup codes included.
        """
        password_ok = self._reauth.check_password(user=user, password=password)
        with self._db.transaction() as s:
            user = s.get(User, user.id)
            if not self._factors.enabled_for(s, user):
                raise TwoFactorNotEnabled()
            proof = self._reauth.verify(
                s, user=user, password_ok=password_ok, code=code, context=context, action="disable_two_factor",
                failed_event=EventTag.TWO_FACTOR_DISABLE_FAILED,
            )
            if proof.failure is None:
                for kind in self._factors.kinds():
                    self._factors.get(kind).remove(s, user=user)
                # Trust in a browser stands for a proven second factor; with none left, none stands.
                self._remembered.revoke_all_for(s, user.id, "two_factor_disabled", context=context, actor_id=user.id)
                self._audit.record(
                    s, EventTag.TWO_FACTOR_DISABLED, context=context, practice_id=user.practice_id,
                    actor_id=user.id, subject_id=user.id, details={"proof": proof.method},
                )
        if proof.failure:
            raise proof.failure
        self._mail.notify_two_factor_disabled(user, context)

    def sign_out(self, *, token: str, context: RequestContext) -> bool:
        """End the session whose cookie is ``token``; False when it was not live."""
        with self._db.transaction() as s:
            record = self._sessions.end(s, token=token)
            if record is None:
                return False
            user = s.get(User, record.user_id)
            self._audit.record(
                s, EventTag.SIGNED_OUT, context=context, practice_id=user.practice_id, actor_id=user.id,
                subject_id=user.id, details={"session_id": record.id},
            )
            return True

    def _audit_lockout(self, s: Session, user: User, wait: int, *, step: str, context: RequestContext) -> None:
        """The failure that starts a wait is a lockout, audited like one at sign-in."""
        if wait:
            self._audit.record(
                s, EventTag.LOCKED_OUT, context=context, practice_id=user.practice_id, subject_id=user.id,
                details={"step": step, "retry_after": wait},
            )

    def policy_for(self, user: User) -> Policy:
        return Policy.of(user.practice)


def _code_error(outcome: Outcome) -> TwofoldError:
    from twofold.errors import ClockOutOfSync

    return ClockOutOfSync() if outcome is Outcome.OUT_OF_SYNC else InvalidCode()
