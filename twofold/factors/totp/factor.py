"""Authenticator apps (RFC 6238 TOTP): enrolment, verification with replay guard, removal."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import segno
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from twofold.crypto import otp
from twofold.crypto.secret_box import DecryptionError, SecretBox
from twofold.factors.base import Outcome, Verification
from twofold.store.models import SignInFlow, TotpCredential, User
from twofold.store.prepared import Prepared, as_record

ENROLLMENT_TTL = timedelta(minutes=15)
_CONFIRMED = "twofold.totp.confirmed"  # session.info key: user id -> confirmed credential

_CREDENTIALS = TotpCredential.__table__
# Built once: both run on every code sign-in. A plain row (read-only), not an ORM object.
_CONFIRMED_OF_USER = Prepared(select(_CREDENTIALS).where(
    _CREDENTIALS.c.user_id == bindparam("user_id"), _CREDENTIALS.c.confirmed_at.is_not(None)
))
# The replay guard: only a step after the last accepted one may claim the credential.
_CLAIM_STEP = Prepared(
    update(_CREDENTIALS)
    .where(
        _CREDENTIALS.c.id == bindparam("credential_id"),
        or_(_CREDENTIALS.c.last_used_step.is_(None), _CREDENTIALS.c.last_used_step < bindparam("step")),
    )
    .values(last_used_step=bindparam("step"))
)


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    enrollment_id: str
    secret: str  # unpadded base32
    otpauth_uri: str
    qr_svg: str

    @property
    def secret_grouped(self) -> str:
        return otp.grouped(self.secret)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (segno; error correction M, 4 px modules)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer, kind="svg", scale=5, border=4, dark="#000", light="#fff", xmldecl=False, nl=False,
        title="QR code for your authenticator app",
    )
    return buffer.getvalue().decode()


def _is_enrollment_id(value: str) -> bool:
    """Enrolment ids are 32 hex digits; anything else is unknown without a lookup."""
    return 0 < len(value) <= 32 and value.isascii() and value.isalnum()


class TotpFactor:
    kind = "totp"
    code_format = "the 6-digit code from your authenticator app"
    wrong_code_message = "That code is not right. Enter the current code from your authenticator app."

    def __init__(self, *, box: SecretBox, clock) -> None:
        self._box = box
        self._clock = clock

    # -- enrolment -------------------------------------------------------

    def start_enrollment(self, session: Session, *, user: User, issuer: str) -> TotpEnrollment:
        """A new pending credential. Not usable until ``confirm_enrollment`` accepts a code."""
        now = self._clock.now()
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
                secret_sealed=self._box.seal(key, context=f"totp:{credential_id}"),
                created_at=now,
                expires_at=now + ENROLLMENT_TTL,
            )
        )
        uri = otp.otpauth_uri(key=key, account=user.email, issuer=issuer)
        return TotpEnrollment(credential_id, otp.b32_secret(key), uri, qr_svg(uri))

    def pending_enrollment(self, session: Session, *, user: User, enrollment_id: str, issuer: str) -> TotpEnrollment | None:
        if not _is_enrollment_id(enrollment_id):
            return None
        pending = session.execute(
            select(TotpCredential).where(
                TotpCredential.id == enrollment_id,
                TotpCredential.user_id == user.id,
                TotpCredential.confirmed_at.is_(None),
            )
        ).scalar_one_or_none()
        if pending is None or (pending.expires_at is not None and self._clock.now() >= pending.expires_at):
            return None
        key = self._key(pending)
        uri = otp.otpauth_uri(key=key, account=user.email, issuer=issuer)
        return TotpEnrollment(pending.id, otp.b32_secret(key), uri, qr_svg(uri))

    def confirm_enrollment(self, session: Session, *, user: User, enrollment_id: str, code: str) -> Verification:
        """Accept the first code of a pending credential; it then replaces any earlier app.

        The confirming code counts as used: its step becomes the replay guard.
        The pending row is locked, so of concurrent confirmations only the first
        finds it still pending (PostgreSQL re-checks the WHERE after the wait).
        """
        now = self._clock.now()
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
        normalized = otp.normalize_code(code)
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        match = otp.match_step(self._key(pending), normalized, otp.time_step(now.timestamp()))
        if match is None:
            return Verification(Outcome.WRONG)
        if not match.in_window:
            return Verification(Outcome.OUT_OF_SYNC, {"step_offset": match.step - otp.time_step(now.timestamp())})
        session.execute(
            delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.id != pending.id)
        )
        session.info.pop(_CONFIRMED, None)
        pending.confirmed_at = now
        pending.expires_at = None
        pending.last_used_step = match.step
        return Verification(Outcome.ACCEPTED, {"credential_id": pending.id})

    # -- the SecondFactor protocol ----------------------------------------

    def normalize(self, code: str) -> str | None:
        return otp.normalize_code(code)

    def is_enabled_for(self, session: Session, user: User) -> bool:
        return self._confirmed(session, user) is not None

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> None:
        return None

    def verify(self, session: Session, *, user: User, code: str) -> Verification:
        """RFC 6238 §5.2: current step ±1; a step at or before the last accepted one is refused.

        The replay guard is one conditional UPDATE, so of two requests racing with
        the same code exactly one changes the row (and the other is told REUSED).
        """
        normalized = otp.normalize_code(code)
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        credential = self._confirmed(session, user)
        if credential is None:
            return Verification(Outcome.WRONG, {"reason": "no_authenticator"})
        now_step = otp.time_step(self._clock.now().timestamp())
        key = self._key(credential)
        match = otp.match_step(key, normalized, now_step)
        if match is None:
            return Verification(Outcome.WRONG)
        if not match.in_window:
            return Verification(Outcome.OUT_OF_SYNC, {"step_offset": match.step - now_step})
        if credential.last_used_step is not None and match.step <= credential.last_used_step:
            return Verification(Outcome.REUSED)
        if self._box.needs_rotation(credential.secret_sealed):
            # Sealed under an old key (TWOFOLD_OLD_SECRET_KEYS): claim the step and re-seal it under the current one.
            claim = (
                update(TotpCredential)
                .where(
                    TotpCredential.id == credential.id,
                    or_(TotpCredential.last_used_step.is_(None), TotpCredential.last_used_step < match.step),
                )
                .values(last_used_step=match.step, secret_sealed=self._box.seal(key, context=f"totp:{credential.id}"))
                .execution_options(synchronize_session=False)
            )
            claimed = session.execute(claim).rowcount
        else:
            claimed = _CLAIM_STEP.execute(session, {"credential_id": credential.id, "step": match.step}).rowcount
        if claimed != 1:
            return Verification(Outcome.REUSED, {"race": True})
        return Verification(Outcome.ACCEPTED)

    def remove(self, session: Session, *, user: User) -> None:
        session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
        session.info.pop(_CONFIRMED, None)

    def discard_pending(self, session: Session, *, user: User) -> None:
        """Drop unconfirmed set-ups (started before 2FA was turned on some other way)."""
        session.execute(
            delete(TotpCredential).where(TotpCredential.user_id == user.id, TotpCredential.confirmed_at.is_(None))
        )

    def enabled_user_ids(self):
        return select(TotpCredential.user_id).where(TotpCredential.confirmed_at.is_not(None))

    # -- helpers -----------------------------------------------------------

    def _confirmed(self, session: Session, user: User) -> SimpleNamespace | None:
        """The user's confirmed app, read once per transaction (a sign-in asks twice:
        is it enabled, then verify); changes below forget it."""
        known = session.info.setdefault(_CONFIRMED, {})
        if user.id not in known:
            row = _CONFIRMED_OF_USER.execute(session, {"user_id": user.id}).one_or_none()
            known[user.id] = None if row is None else as_record(_CREDENTIALS, row)
        return known[user.id]

    def _key(self, credential: TotpCredential) -> bytes:
        try:
            return self._box.open(credential.secret_sealed, context=f"totp:{credential.id}")
        except DecryptionError as exc:
            # A key that cannot open the secret is a configuration error, not bad input.
            raise RuntimeError("TOTP secret could not be decrypted; check TWOFOLD_SECRET_KEY") from exc
