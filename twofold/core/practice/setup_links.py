"""Bringing a member onto two-factor authentication, the two ways an admin can.

1. A one-time set-up link, emailed: valid 72 hours, used once, and revoked by a
   newer link for the same member. Opening it asks for the member's password
   (a member added by an admin chooses one here first), then takes them through
   setting up an authenticator app. The link is used up when the app's first code
   is accepted (or at once, for a member who already has 2FA).
2. "Set up on this screen": the admin's screen shows the QR code of a new app
   key, the member scans it with their phone and types its code on the same
   screen. The key is shown once; a wrong code asks for the next code, not the key.

Only a keyed hash of a link's token is stored, so a copy of the database holds no
working link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from twofold.core.account import EnrollmentNotFound, TwoFactorAlreadyEnabled, _code_error, check_password_rules
from twofold.core.practice.mail import setup_link_message
from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.core.practice.enforcement import TwoFactorEnforcement
from twofold.errors import Conflict, InvalidCredentials, Throttled, TwofoldError
from twofold.core.practice.members import member_in
from twofold.core.notifier import Message, Notifier
from twofold.crypto.passwords import PasswordHasher
from twofold.core.signin import code_throttle_key
from twofold.throttle import Throttle, password_checks
from twofold.factors.base import FactorRegistry, Outcome
from twofold.factors.totp.factor import TotpEnrollment, TotpFactor
from twofold.store.db import Database
from twofold.store.models import SetupLink, User

SETUP_LINK_TTL = timedelta(hours=72)


class SetupLinkInvalid(TwofoldError):
    """The link cannot be used; ``reason`` is one of REASONS' keys."""

    code = "setup_link_invalid"
    REASONS = {
        "unknown": "This set-up link is not valid. Check that you opened the whole link from the email.",
        "expired": "This set-up link has expired (links work for 72 hours). Ask your practice admin for a new one.",
        "used": "This set-up link has already been used. Sign in with your password and authenticator app.",
        "revoked": "A newer set-up link was sent to you: use the link in the most recent email.",
        "inactive": "This account is not active. Ask your practice admin.",
    }

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.REASONS[reason])


class MemberAlreadySetUp(Conflict):
    code = "member_already_set_up"
    message = "This member already has a password and two-factor authentication: there is nothing to set up."


class MemberInactive(Conflict):
    code = "member_inactive"
    message = "This member is deactivated. Reactivate them first."


class PasswordAlreadySet(Conflict):
    code = "password_already_set"
    message = "A password was already chosen for this account. Enter it to continue."


@dataclass(frozen=True, slots=True)
class SetupState:
    """What a live link still has to do for its member."""

    member_name: str
    member_email: str
    practice_name: str
    needs_password: bool
    needs_two_factor: bool
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SetupStep:
    """After the password: an app to set up (``enrollment``), or nothing left (``done``)."""

    enrollment: TotpEnrollment | None
    done: bool = False


class SetupService:
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
        enforcement: TwoFactorEnforcement,
        hasher: TokenHasher,
        notifier: Notifier,
    ) -> None:
        self._db = db
        self._clock = clock
        self._passwords = passwords
        self._throttle = throttle
        self._audit = audit
        self._factors = factors
        self._totp = totp
        self._enforcement = enforcement
        self._hasher = hasher
        self._notifier = notifier

    # -- sending -------------------------------------------------------------------

    def issue(self, session: Session, *, member: User, created_by_id: int | None, context: RequestContext) -> str:
        """A new link for ``member`` in the caller's transaction; every older live link is revoked."""
        now = self._clock.now()
        session.execute(
            update(SetupLink)
            .where(SetupLink.user_id == member.id, SetupLink.used_at.is_(None), SetupLink.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="superseded")
        )
        token = random_token(32)
        link = SetupLink(
            token_hash=self._hasher.hash(token), user_id=member.id, created_by_id=created_by_id,
            created_at=now, expires_at=now + SETUP_LINK_TTL,
        )
        session.add(link)
        self._audit.record(
            session, EventTag.SETUP_LINK_SENT, context=context, practice_id=member.practice_id, actor_id=created_by_id,
            subject_id=member.id, details={"expires_at": link.expires_at.isoformat(), "welcome": member.password_changed_at is None},
        )
        return token

    def pending_message(self, *, member: User, token: str, link_base: str) -> Message:
        return setup_link_message(
            to=member.email, name=member.name, practice=member.practice.name, url=f"{link_base.rstrip('/')}/setup/{token}",
            expires_at=self._clock.now() + SETUP_LINK_TTL, welcome=member.password_changed_at is None,
        )

    def deliver(self, message: Message) -> None:
        self._notifier.send(message)

    def send_link(
        self, *, practice_id: int, actor_id: int | None, member_id: int, context: RequestContext, link_base: str,
    ) -> datetime:
        """Email ``member_id`` a new set-up link; returns when it expires."""
        with self._db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            if not member.active:
                raise MemberInactive()
            if member.password_changed_at is not None and self._factors.enabled_for(s, member):
                raise MemberAlreadySetUp()
            token = self.issue(s, member=member, created_by_id=actor_id, context=context)
            message = self.pending_message(member=member, token=token, link_base=link_base)
        self.deliver(message)
        return self._clock.now() + SETUP_LINK_TTL

    # -- following a link -------------------------------------------------------------

    def open(self, *, token: str, context: RequestContext) -> SetupState:
        """What the link at ``token`` still has to do; ``SetupLinkInvalid`` (audited) when it cannot be used."""
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            try:
                link, member = self._live(s, token, context)
            except SetupLinkInvalid as exc:
                failure = exc
            else:
                needs_two_factor = not self._factors.enabled_for(s, member)
                if member.password_changed_at is None or needs_two_factor:
                    return SetupState(
                        member_name=member.name, member_email=member.email, practice_name=member.practice.name,
                        needs_password=member.password_changed_at is None, needs_two_factor=needs_two_factor,
                        expires_at=link.expires_at,
                    )
                # Set up by other means since the link was sent: nothing left, the link is spent.
                self._use(s, link, member, context)
                failure = SetupLinkInvalid("used")
        raise failure

    def choose_password(self, *, token: str, password: str, context: RequestContext) -> SetupStep:
        """For a member without a password: set it, then go on to the app."""
        check_password_rules(password)
        password_hash = self._passwords.hash(password)
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            try:
                link, member = self._live(s, token, context)
            except SetupLinkInvalid as exc:
                failure = exc
            else:
                if member.password_changed_at is not None:
                    raise PasswordAlreadySet()
                member.password_hash = password_hash
                member.password_changed_at = self._clock.now()
                self._audit.record(
                    s, EventTag.PASSWORD_SET, context=context, practice_id=member.practice_id, actor_id=member.id,
                    subject_id=member.id, details={"via": "setup_link"},
                )
                return self._next_step(s, link, member, context)
        raise failure

    def verify_password(self, *, token: str, password: str, context: RequestContext) -> SetupStep:
        """For a member who has a password: check it (throttled like sign-in), then go on to the app.

        Guesses about one account take turns with its sign-in guesses (the same
        per-account gate), so a parallel burst is judged no more often than the limit.
        """
        with self._throttle.one_at_a_time(self._member_email(token) or token):
            return self._verify_password(token=token, password=password, context=context)

    def _member_email(self, token: str) -> str | None:
        with self._db.reading() as s:
            link = self._link(s, token)
            return None if link is None else s.get(User, link.user_id).email

    def _verify_password(self, *, token: str, password: str, context: RequestContext) -> SetupStep:
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            try:
                _link, member = self._live(s, token, context)
            except SetupLinkInvalid as exc:
                failure = exc
            else:
                password_hash = member.password_hash
                checks = password_checks(member.email, context.ip)
                wait = self._throttle.retry_after(s, checks)
                if wait:
                    failure = Throttled(wait, "password attempts")
        if failure:
            raise failure
        password_ok = self._passwords.verify(password_hash, password)
        with self._db.transaction() as s:
            try:
                link, member = self._live(s, token, context)
            except SetupLinkInvalid as exc:
                failure = exc
            else:
                if password_ok:
                    return self._next_step(s, link, member, context)
                self._throttle.hit(s, checks)
                self._audit.record(
                    s, EventTag.SIGN_IN_PASSWORD_FAILED, context=context, practice_id=member.practice_id,
                    subject_id=member.id, details={"reason": "wrong_password", "via": "setup_link"},
                )
                failure = InvalidCredentials("That password is not right.")
        raise failure

    def pending_enrollment(self, *, token: str, enrollment_id: str) -> TotpEnrollment | None:
        """The app set-up begun through this link, again (after a wrong first code, on the member's own screen)."""
        with self._db.reading() as s:
            link = self._link(s, token)
            if link is None:
                return None
            member = s.get(User, link.user_id)
            return self._totp.pending_enrollment(s, user=member, enrollment_id=enrollment_id, issuer=member.practice.name)

    def confirm(self, *, token: str, enrollment_id: str, code: str, context: RequestContext) -> None:
        """Accept the app's first code: 2FA is on and the link is used up, in one transaction."""
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            try:
                link, member = self._live(s, token, context)
            except SetupLinkInvalid as exc:
                failure = exc
            else:
                failure = self._confirm_enrollment(s, member, enrollment_id, code, context, actor_id=member.id)
                if failure is None:
                    self._audit.record(
                        s, EventTag.TWO_FACTOR_ENABLED, context=context, practice_id=member.practice_id,
                        actor_id=member.id, subject_id=member.id, details={"method": "totp", "via": "setup_link"},
                    )
                    self._use(s, link, member, context)
        if failure:
            raise failure

    # -- set up on the admin's screen ----------------------------------------------------

    def start_on_admin_screen(
        self, *, practice_id: int, admin_id: int, member_id: int, context: RequestContext
    ) -> TotpEnrollment:
        """A new app key for the member, to show once as a QR code on the admin's screen."""
        with self._db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            if not member.active:
                raise MemberInactive()
            if self._factors.enabled_for(s, member):
                raise TwoFactorAlreadyEnabled("This member already has two-factor authentication. Reset it first to set up a new app.")
            enrollment = self._totp.start_enrollment(s, user=member, issuer=member.practice.name)
            self._audit.record(
                s, EventTag.TOTP_ENROLLMENT_STARTED, context=context, practice_id=practice_id, actor_id=admin_id,
                subject_id=member.id, details={"on_admin_screen": True},
            )
            return enrollment

    def confirm_on_admin_screen(
        self, *, practice_id: int, admin_id: int, member_id: int, enrollment_id: str, code: str, context: RequestContext,
    ) -> None:
        """The member typed their app's code on the admin's screen: turn 2FA on for them."""
        failure: TwofoldError | None = None
        with self._db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            failure = self._confirm_enrollment(s, member, enrollment_id, code, context, actor_id=admin_id)
            if failure is None:
                self._audit.record(
                    s, EventTag.TWO_FACTOR_SET_UP_BY_ADMIN, context=context, practice_id=practice_id,
                    actor_id=admin_id, subject_id=member.id, details={"method": "totp", "via": "admin_screen"},
                )
        if failure:
            raise failure

    # -- steps ------------------------------------------------------------------------

    def _link(self, s: Session, token: str, *, lock: bool = False) -> SetupLink | None:
        """The link whose token this is (only its hash is stored), row-locked with ``lock``."""
        if not token or len(token) > 128:
            return None
        query = select(SetupLink).where(SetupLink.token_hash == self._hasher.hash(token))
        return s.execute(query.with_for_update() if lock else query).scalar_one_or_none()

    def _live(self, s: Session, token: str, context: RequestContext) -> tuple[SetupLink, User]:
        """The live link (row-locked) and its member; a refusal is audited in ``s`` and raised.

        Callers catch the refusal inside their transaction, so its audit event commits.
        """
        link = self._link(s, token, lock=True)
        if link is None:
            raise SetupLinkInvalid("unknown")
        member = s.get(User, link.user_id)
        reason = None
        if link.used_at is not None:
            reason = "used"
        elif link.revoked_at is not None:
            reason = "revoked"
        elif self._clock.now() >= link.expires_at:
            reason = "expired"
        elif not member.active:
            reason = "inactive"
        if reason:
            self._audit.record(
                s, EventTag.SETUP_LINK_REFUSED, context=context, practice_id=member.practice_id,
                subject_id=member.id, details={"reason": reason, "link_id": link.id},
            )
            raise SetupLinkInvalid(reason)
        return link, member

    def _next_step(self, s: Session, link: SetupLink, member: User, context: RequestContext) -> SetupStep:
        if self._factors.enabled_for(s, member):
            self._use(s, link, member, context)
            return SetupStep(None, done=True)
        enrollment = self._totp.start_enrollment(s, user=member, issuer=member.practice.name)
        self._audit.record(
            s, EventTag.TOTP_ENROLLMENT_STARTED, context=context, practice_id=member.practice_id,
            actor_id=member.id, subject_id=member.id, details={"via": "setup_link"},
        )
        return SetupStep(enrollment)

    def _use(self, s: Session, link: SetupLink, member: User, context: RequestContext) -> None:
        link.used_at = self._clock.now()
        self._audit.record(
            s, EventTag.SETUP_LINK_USED, context=context, practice_id=member.practice_id, actor_id=member.id,
            subject_id=member.id, details={"link_id": link.id},
        )

    def _confirm_enrollment(
        self, s: Session, member: User, enrollment_id: str, code: str, context: RequestContext, *, actor_id: int,
    ) -> TwofoldError | None:
        """Check the first code of a pending app (throttled per member); None when accepted."""
        key = code_throttle_key(member.id)
        wait = self._throttle.retry_after(s, [key])
        if wait:
            raise Throttled(wait, "code attempts")
        verification = self._totp.confirm_enrollment(s, user=member, enrollment_id=enrollment_id, code=code)
        if verification.outcome is Outcome.EXPIRED:
            raise EnrollmentNotFound()
        if verification.accepted:
            self._enforcement.clear_demand(s, user_id=member.id)
            return None
        self._throttle.hit(s, [key])
        self._audit.record(
            s, EventTag.TOTP_ENROLLMENT_FAILED, context=context, practice_id=member.practice_id,
            actor_id=actor_id, subject_id=member.id, details={"reason": str(verification.outcome)},
        )
        return _code_error(verification.outcome)
