"""Authenticator apps (RFC 6238 TOTP): verification with a replay guard, and removal.

Setting an app up (a pending credential confirmed by its first code) is in
``enrollment.py`` beside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.crypto import otp
from twofold.crypto.secret_box import DecryptionError, SecretBox
from twofold.factors.base import FactorResponse, Outcome, Verification
from twofold.store.models import SignInFlow, TotpCredential, User
from twofold.store.prepared import Prepared, as_record

_CONFIRMED = "twofold.totp.confirmed"  # session.info key: user id -> confirmed credential

# Declarative typing calls ``__table__`` a FromClause; a mapped class without a custom selectable has a Table.
_CREDENTIALS = cast(Table, TotpCredential.__table__)
# Built once: both run on every code sign-in. A plain row (read-only), not an ORM object.
_CONFIRMED_OF_USER = Prepared(
    select(_CREDENTIALS).where(_CREDENTIALS.c.user_id == bindparam("user_id"), _CREDENTIALS.c.confirmed_at.is_not(None))
)
# The replay guard: only a step after the last accepted one may claim the credential.
_CLAIM_STEP = Prepared(
    update(_CREDENTIALS)
    .where(
        _CREDENTIALS.c.id == bindparam("credential_id"),
        or_(_CREDENTIALS.c.last_used_step.is_(None), _CREDENTIALS.c.last_used_step < bindparam("step")),
    )
    .values(last_used_step=bindparam("step"))
)


@dataclass(kw_only=True, slots=True)
class TotpFactor:
    kind: ClassVar[str] = "totp"
    label: ClassVar[str] = "Authenticator app"
    amr: ClassVar[str] = "otp"  # RFC 8176: a one-time password
    described_as: ClassVar[str] = "an authenticator app"
    # The baseline second factor: every member can set it up, so no practice can switch it off.
    always_allowed: ClassVar[bool] = True
    phishing_resistant: ClassVar[bool] = False  # a code can be typed into a fake site and replayed
    for_recovery: ClassVar[bool] = False
    code_format: ClassVar[str] = "the 6-digit code from your authenticator app"
    wrong_code_message: ClassVar[str] = "That code is not right. Enter the current code from your authenticator app."

    box: SecretBox
    clock: Clock

    # -- the SecondFactor protocol ----------------------------------------

    def normalize(self, response: FactorResponse) -> str | None:
        return otp.normalize_code(response) if isinstance(response, str) else None

    def is_enabled_for(self, session: Session, user: User) -> bool:
        return self._confirmed(session, user) is not None

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> None:
        return None

    def verify(
        self, session: Session, *, user: User, response: FactorResponse, flow: SignInFlow | None = None
    ) -> Verification:
        """RFC 6238 §5.2: current step ±1; a step at or before the last accepted one is refused.

        The replay guard is one conditional UPDATE, so of two requests racing with
        the same code exactly one changes the row (and the other is told REUSED).
        """
        normalized = otp.normalize_code(response) if isinstance(response, str) else None
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        credential = self._confirmed(session, user)
        if credential is None:
            return Verification(Outcome.WRONG, {"reason": "no_authenticator"})
        now_step = otp.time_step(self.clock.now().timestamp())
        key = self.key(credential)
        match = otp.match_step(key, normalized, now_step)
        if match is None:
            return Verification(Outcome.WRONG)
        if not match.in_window:
            return Verification(Outcome.OUT_OF_SYNC, {"step_offset": match.step - now_step})
        if credential.last_used_step is not None and match.step <= credential.last_used_step:
            return Verification(Outcome.JUST_USED if match.step == credential.last_used_step else Outcome.REUSED)
        if self.box.needs_rotation(credential.secret_sealed):
            # Sealed under an old key (TWOFOLD_OLD_SECRET_KEYS): claim the step and re-seal it under the current one.
            claim = (
                update(TotpCredential)
                .where(
                    TotpCredential.id == credential.id,
                    or_(TotpCredential.last_used_step.is_(None), TotpCredential.last_used_step < match.step),
                )
                .values(last_used_step=match.step, secret_sealed=self.box.seal(key, context=f"totp:{credential.id}"))
                .execution_options(synchronize_session=False)
            )
            # Session.execute is typed Result; what an UPDATE returns is a CursorResult, which has rowcount.
            claimed = cast(CursorResult, session.execute(claim)).rowcount
        else:
            claimed = _CLAIM_STEP.execute(session, {"credential_id": credential.id, "step": match.step}).rowcount
        if claimed != 1:
            return Verification(Outcome.REUSED, {"race": True})
        return Verification(Outcome.ACCEPTED)

    def remove(self, session: Session, *, user: User) -> None:
        session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
        self.forget_confirmed(session)

    def forget_confirmed(self, session: Session) -> None:
        """Forget the confirmed apps read in this transaction (after a change to them)."""
        session.info.pop(_CONFIRMED, None)

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

    def key(self, credential: TotpCredential | SimpleNamespace) -> bytes:
        """The credential's secret key, opened (its sealing is bound to the credential's id)."""
        try:
            return self.box.open(credential.secret_sealed, context=f"totp:{credential.id}")
        except DecryptionError as exc:
            # A key that cannot open the secret is a configuration error, not bad input.
            raise RuntimeError("TOTP secret could not be decrypted; check TWOFOLD_SECRET_KEY") from exc
