"""Setting up an authenticator app: the one TOTP enrolment API, and the member's own use cases.

Every way an app is set up goes through ``TotpEnrollmentService.start`` and
``confirm``: by the member in their settings, after re-authentication as a
replacement (the lost-phone path), by a set-up link and on the admin's screen
(``core/practice/setup_links.py``, which gets this service as its
``FactorEnrollment``). So the throttle, the audit events and the answers are the
same whichever door a member comes through.

A set-up is a pending credential holding a new key (RFC 6238 §5.1: 160 random
bits, encrypted at rest). It is usable only once a code made from it is accepted
(RFC 6238's "prove you can generate codes" step), within 15 minutes.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import TwoFactorAlreadyEnabled, TwoFactorNotEnabled
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.crypto import otp
from twofold.crypto.secret_box import SecretBox
from twofold.errors import Throttled
from twofold.factors.base import (
    AuditFacts,
    BackupCodeIssuer,
    EnrollmentNotFound,
    FactorRegistry,
    FactorResponse,
    Outcome,
    Verification,
)
from twofold.factors.totp.factor import TotpFactor
from twofold.store.db import Database, Refusal, lock_account
from twofold.store.models import TotpCredential, User
from twofold.throttle import Throttle, code_throttle_key

ENROLLMENT_TTL = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    """A pending app set-up, to show: the QR code and the key to type instead."""

    enrollment_id: str
    secret: str  # unpadded base32
    otpauth_uri: str
    qr_svg: str

    @property
    def secret_grouped(self) -> str:
        return otp.grouped(self.secret)


LAST_TRY = "1 try left: after another wrong code, you must wait before trying again."


@dataclass(frozen=True)
class TotpConfirmation:
    """What confirming an app did: ``enabled`` (2FA turned on; ``recovery_codes`` is the new set, shown
    once), ``added`` (2FA was on by email codes) or ``replaced`` (the earlier app stopped working)."""

    status: str
    recovery_codes: list[str]
    session_token: str | None = None  # the current session's successor when 2FA was turned on


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (segno; error correction M, 4 px modules)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=5,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        nl=False,
        title="QR code for your authenticator app",
    )
    return buffer.getvalue().decode()


def _is_enrollment_id(value: str) -> bool:
    """Enrolment ids are 32 hex digits; anything else is unknown without a lookup."""
    return 0 < len(value) <= 32 and value.isascii() and value.isalnum()


@dataclass(kw_only=True, slots=True)
class TotpEnrollmentService:
    """Setting up an authenticator app (a ``FactorEnrollment``), and the member's own set-up use cases."""

    kind: ClassVar[str] = TotpFactor.kind

    db: Database
    clock: Clock
    box: SecretBox
    throttle: Throttle
    audit: AuditLog
    factor: TotpFactor
    factors: FactorRegistry
    reauth: Reauthentication
    backup_codes: BackupCodeIssuer
    mail: SecurityMail
    sessions: SessionService

    # -- the one enrolment API (in the caller's transaction) --------------------------------

    def start(
        self,
        session: Session,
        *,
        user: User,
        context: RequestContext,
        actor_id: int | None,
        details: dict | None = None,
    ) -> TotpEnrollment:
        """A new pending app of ``user`` with a new key, audited as started; not usable until confirmed."""
        now = self.clock.now()
        session.execute(
            delete(TotpCredential).where(
                TotpCredential.user_id == user.id,
                TotpCredential.confirmed_at.is_(None),
                TotpCredential.expires_at < now,
            )
        )
        key = otp.new_secret()
        credential_id = secrets.token_hex(16)
        session.add(
            TotpCredential(
                id=credential_id,
                user_id=user.id,
                secret_sealed=self.box.seal(key, context=f"totp:{credential_id}"),
                created_at=now,
                expires_at=now + ENROLLMENT_TTL,
            )
        )
        self.audit.record(
            session,
            EventTag.TOTP_ENROLLMENT_STARTED,
            context=context,
            practice_id=user.practice_id,
            actor_id=actor_id,
            subject_id=user.id,
            details=details,
        )
        return self._shown(user, credential_id, key)

    def pending(self, session: Session, *, user: User, enrollment_id: str) -> TotpEnrollment | None:
        """The pending app ``enrollment_id`` again (its QR code, after a wrong first code); None when gone."""
        if not _is_enrollment_id(enrollment_id):
            return None
        pending = session.execute(
            select(TotpCredential).where(
                TotpCredential.id == enrollment_id,
                TotpCredential.user_id == user.id,
                TotpCredential.confirmed_at.is_(None),
            )
        ).scalar_one_or_none()
        if pending is None or (pending.expires_at is not None and self.clock.now() >= pending.expires_at):
            return None
        return self._shown(user, pending.id, self.factor.key(pending))

    def confirm(
        self,
        session: Session,
        *,
        user: User,
        enrollment_id: str,
        response: FactorResponse,
        context: RequestContext,
        actor_id: int | None,
    ) -> Verification:
        """Accept the first code of a pending app; it then replaces any earlier app of ``user``.

        Throttled like sign-in codes, on the same per-account key: ``Throttled`` while
        blocked (before checking), ``EnrollmentNotFound`` for an unknown or expired
        set-up, and a wrong code is counted and audited (a lockout too), then refused
        with ``Refusal``, so the count commits.
        """
        lock_account(session, user.id)
        key = code_throttle_key(user.id)
        wait = self.throttle.retry_after(session, [key])
        if wait:
            raise Throttled(wait, "code attempts")
        verification = self._claim(session, user=user, enrollment_id=enrollment_id, response=response)
        if verification.outcome is Outcome.EXPIRED:
            raise EnrollmentNotFound()
        if verification.accepted:
            return verification
        wait = self.throttle.hit(session, [key])
        self.audit.record(
            session,
            EventTag.TOTP_ENROLLMENT_FAILED,
            context=context,
            practice_id=user.practice_id,
            actor_id=actor_id,
            subject_id=user.id,
            details={"reason": str(verification.outcome)},
        )
        self.audit.record_lockout(
            session, wait=wait, step="totp_confirm", context=context, practice_id=user.practice_id, subject_id=user.id
        )
        refusal = verification.refusal()
        if wait:  # this wrong code started the wait: say how long, now rather than at the next try
            raise Refusal(Throttled(wait, "code attempts"))
        if self.throttle.tries_left(session, [key]) == 1:
            # Say so before the lockout, not after: the member can check the app's clock and account first.
            refusal = type(refusal)(f"{refusal.message} {LAST_TRY}")
        raise Refusal(refusal)

    def discard_pending(self, session: Session, *, user: User) -> None:
        """Drop unconfirmed set-ups (started before 2FA was turned on some other way)."""
        session.execute(
            delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.confirmed_at.is_(None))
        )

    # -- the member's own use cases ---------------------------------------------------------

    def start_totp_enrollment(self, *, user: User, context: RequestContext) -> TotpEnrollment:
        """Set up the first factor. Once 2FA is on, a new app needs re-authentication
        (``start_totp_replacement``)."""
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            if self.factors.enabled_for(s, user):
                raise TwoFactorAlreadyEnabled()
            return self.start(s, user=user, context=context, actor_id=user.id)

    def pending_totp_enrollment(self, *, user: User, enrollment_id: str) -> TotpEnrollment | None:
        """A pending set-up again (to show its QR code after a wrong first code)."""
        with self.db.reading() as s:
            return self.pending(s, user=user, enrollment_id=enrollment_id)

    def confirm_totp(
        self, *, user: User, enrollment_id: str, code: str, context: RequestContext, session_id: int | None = None
    ) -> TotpConfirmation:
        """Confirm a pending app with its first code; throttled like sign-in codes.

        When this turns 2FA on, the account gets its first 10 backup codes, returned
        here to be shown once, every other session ends and the current one
        (``session_id``) is renewed: its new token is returned. When it replaces an
        app, the old one stops working now.
        """
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            had_app = self.factor.is_enabled_for(s, user)
            was_on = bool(self.factors.enabled_for(s, user))
            self.confirm(s, user=user, enrollment_id=enrollment_id, response=code, context=context, actor_id=user.id)
            facts: AuditFacts = {
                "context": context,
                "practice_id": user.practice_id,
                "actor_id": user.id,
                "subject_id": user.id,
            }
            if had_app:
                self.audit.record(s, EventTag.TOTP_REPLACED, **facts)
                confirmation = TotpConfirmation("replaced", [])
            elif was_on:
                self.audit.record(s, EventTag.TOTP_ADDED, **facts)
                confirmation = TotpConfirmation("added", [])
            else:
                self.audit.record(s, EventTag.TWO_FACTOR_ENABLED, **facts, details={"method": self.kind})
                codes = self.backup_codes.issue_first_set(s, user=user, context=context)
                token = self.sessions.renew_after_privilege_change(
                    s, user=user, current_session_id=session_id, context=context, reason="two_factor_enabled"
                )
                confirmation = TotpConfirmation("enabled", codes, token)
        if confirmation.status == "enabled":
            self.mail.notify_two_factor_enabled(user, context, method_label=self.factor.described_as)
        elif confirmation.status == "added":
            self.mail.notify_authenticator_added(user, context)
        else:
            self.mail.notify_authenticator_replaced(user, context)
        return confirmation

    def start_totp_replacement(
        self, *, user: User, password: str, code: str, context: RequestContext
    ) -> TotpEnrollment:
        """A new app after re-authentication (a backup code works: the lost-phone path).

        The old app keeps working until the new one's first code is confirmed with
        ``confirm_totp``; that moment it stops. For an account whose 2FA is on by
        email codes alone, this adds an app.
        """
        with self.reauth.password(user=user, password=password) as password_check, self.db.transaction() as s:
            user = s.get_one(User, user.id)
            if not self.factors.enabled_for(s, user):
                raise TwoFactorNotEnabled("Two-factor authentication is not on. Set up an authenticator app instead.")
            proof = self.reauth.verify(
                s, user=user, password=password_check, code=code, context=context, action="replace_authenticator"
            )
            enrollment = self.start(s, user=user, context=context, actor_id=user.id)
            self.audit.record(
                s,
                EventTag.TOTP_REPLACEMENT_STARTED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"proof": proof.method},
            )
        proof.after_commit(context)
        return enrollment

    # -- helpers ----------------------------------------------------------------------------

    def _shown(self, user: User, enrollment_id: str, key: bytes) -> TotpEnrollment:
        uri = otp.otpauth_uri(key=key, account=user.email, issuer=user.practice.name or "Twofold")
        return TotpEnrollment(enrollment_id, otp.b32_secret(key), uri, qr_svg(uri))

    def _claim(self, session: Session, *, user: User, enrollment_id: str, response: FactorResponse) -> Verification:
        """The pending credential's first code, checked; on acceptance it becomes the user's only app.

        The confirming code counts as used: its step becomes the replay guard. The
        pending row is locked, so of concurrent confirmations only the first finds it
        still pending (PostgreSQL re-checks the WHERE after the wait).
        """
        now = self.clock.now()
        if not _is_enrollment_id(enrollment_id):
            return Verification(Outcome.EXPIRED, {"reason": "unknown_enrollment"})
        pending = session.execute(
            select(TotpCredential)
            .where(
                TotpCredential.id == enrollment_id,
                TotpCredential.user_id == user.id,
                TotpCredential.confirmed_at.is_(None),
            )
            .with_for_update()
        ).scalar_one_or_none()
        if pending is None:
            return Verification(Outcome.EXPIRED, {"reason": "unknown_enrollment"})
        if pending.expires_at is not None and now >= pending.expires_at:
            return Verification(Outcome.EXPIRED, {"reason": "enrollment_expired"})
        normalized = self.factor.normalize(response)
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        match = otp.match_step(self.factor.key(pending), normalized, otp.time_step(now.timestamp()))
        if match is None:
            return Verification(Outcome.WRONG)
        if not match.in_window:
            return Verification(Outcome.OUT_OF_SYNC, {"step_offset": match.step - otp.time_step(now.timestamp())})
        session.execute(
            delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.id != pending.id)
        )
        self.factor.forget_confirmed(session)
        pending.confirmed_at = now
        pending.expires_at = None
        pending.last_used_step = match.step
        return Verification(Outcome.ACCEPTED, {"credential_id": pending.id})
