"""Backup codes: ten single-use codes, the way back in when the phone is lost.

A code is eight characters from an alphabet without look-alikes (no 0/o, 1/l/i),
shown as ``xxxx-xxxx``: 31^8, about 2^39.6, per code. Guessing is bounded by the
per-account code throttle (at most 50 guesses a day, every method together), so a
guess at one of ten codes succeeds with odds under 1 in 10^9 a day.

Stored as HMAC-SHA256 under a key from configuration (``TokenHasher``), bound to
the account: a copy of the database alone cannot test a single guess. This is the
issue's chosen design ("a fast keyed hash"); benchmarks/code_hashing.py measures
it against argon2id and against a salted low-work-factor scheme. Note that NIST SP
800-63B-4 §3.1.2.2 asks look-up secrets shorter than 112 bits to be stored salted
with a password hashing scheme (a small work factor allowed); the keyed hash
answers the same threat (offline guessing from a stolen database) by keeping the
key out of the database, and the benchmark prints the figures for that choice.

Each stored hash is compared in constant time, and a code is consumed by one
conditional UPDATE, so two requests racing with one code get one success.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from twofold.audit import AlertDesk, AlertKind, NoAlerts
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto.secret_box import TokenHasher
from twofold.factors.base import Challenge, FactorResponse, Outcome, Verification
from twofold.store.models import RecoveryCode, SignInFlow, User

ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 8
CODES_PER_SET = 10
# Account Settings warns when this many or fewer are left, and the practice's admins are alerted.
LOW_WATER = 3

_SEPARATORS = str.maketrans("", "", " -\u00a0\u2010\u2011\u2012\u2013\u2014\t")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def display(code: str) -> str:
    """``abcd2345`` -> ``abcd-2345``, the form shown and downloaded."""
    half = CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_recovery_code(raw: FactorResponse) -> str | None:
    """Canonical form: lower case, without the dash or spaces people type; None if it cannot be a code."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    cleaned = raw.translate(_SEPARATORS).lower()
    if len(cleaned) != CODE_LENGTH or not all(char in ALPHABET for char in cleaned):
        return None
    return cleaned


class RecoveryNotices(Protocol):
    def notify_recovery_code_used(self, user: User, context: RequestContext, *, codes_left: int) -> None:
        """Tell the account's owner a backup code was used and how many are left."""


@dataclass(kw_only=True, slots=True)
class RecoveryCodeFactor:
    kind: ClassVar[str] = "recovery_code"
    label: ClassVar[str] = "Backup codes"
    amr: ClassVar[str] = "otp"  # RFC 8176: a one-time password
    described_as: ClassVar[str] = "backup codes"
    # The way back in after a lost phone: a practice that disallows email codes leaves
    # "only the app and backup codes" (mission/2fa-faq.md), never the app alone.
    always_allowed: ClassVar[bool] = True
    phishing_resistant: ClassVar[bool] = False
    for_recovery: ClassVar[bool] = True  # a lost key's way back in; each use is emailed
    code_format: ClassVar[str] = "a backup code, 8 letters and digits such as 7kq4-m2xp"
    wrong_code_message: ClassVar[str] = (
        "That backup code is not right, or it was already used. Each backup code works once."
    )

    hasher: TokenHasher
    clock: Clock
    notices: RecoveryNotices
    alerts: AlertDesk = field(default_factory=NoAlerts)

    # -- the set of codes ----------------------------------------------------------

    def generate(self, session: Session, *, user: User) -> list[str]:
        """Replace every code of ``user`` with a new set; return it, for showing once."""
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        codes: set[str] = set()
        while len(codes) < CODES_PER_SET:
            codes.add(new_code())
        now = self.clock.now()
        ordered = sorted(codes)
        session.add_all(
            RecoveryCode(user_id=user.id, code_hash=self._hash(user.id, code), created_at=now) for code in ordered
        )
        session.flush()
        return [display(code) for code in ordered]

    def remaining(self, session: Session, *, user: User) -> int:
        return session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ).scalar_one()

    def ever_issued(self, session: Session, *, user: User) -> bool:
        """Whether ``user`` has a set of codes, used up or not (none until 2FA is first turned on)."""
        return (
            session.execute(select(RecoveryCode.id).where(RecoveryCode.user_id == user.id).limit(1)).first() is not None
        )

    def unused_among(self, session: Session, *, user: User, codes: list[str]) -> list[str]:
        """Those of ``codes`` that are unused codes of ``user`` (display form), in the order given."""
        stored = set(
            session.execute(
                select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
            ).scalars()
        )
        found = []
        for raw in codes:
            code = normalize_recovery_code(raw)
            if code is not None and self._hash(user.id, code) in stored and display(code) not in found:
                found.append(display(code))
        return found

    # -- the SecondFactor protocol -------------------------------------------------

    def normalize(self, response: FactorResponse) -> str | None:
        return normalize_recovery_code(response)

    def is_enabled_for(self, session: Session, user: User) -> bool:
        return self.remaining(session, user=user) > 0

    def enabled_user_ids(self):
        return select(RecoveryCode.user_id).where(RecoveryCode.used_at.is_(None)).distinct()

    def remaining_by_user(self, session: Session, user_ids: Sequence[int]) -> dict[int, int]:
        """Unused codes of many users at once (the practice's member list)."""
        if not user_ids:
            return {}
        rows = session.execute(
            select(RecoveryCode.user_id, func.count())
            .where(RecoveryCode.user_id.in_(user_ids), RecoveryCode.used_at.is_(None))
            .group_by(RecoveryCode.user_id)
        ).all()
        return dict(rows)

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> Challenge | None:
        return None

    def verify(
        self, session: Session, *, user: User, response: FactorResponse, flow: SignInFlow | None = None
    ) -> Verification:
        normalized = normalize_recovery_code(response)
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        wanted = self._hash(user.id, normalized)
        match = None
        # Every stored hash is compared, in constant time; no early exit.
        for row_id, code_hash, used_at in session.execute(
            select(RecoveryCode.id, RecoveryCode.code_hash, RecoveryCode.used_at).where(RecoveryCode.user_id == user.id)
        ):
            if hmac.compare_digest(code_hash, wanted):
                match = (row_id, used_at)
        if match is None:
            return Verification(Outcome.WRONG)
        row_id, used_at = match
        if used_at is not None:
            return Verification(Outcome.REUSED)
        claim = (
            update(RecoveryCode)
            .where(RecoveryCode.id == row_id, RecoveryCode.used_at.is_(None))
            .values(used_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        # Session.execute is typed Result; what an UPDATE returns is a CursorResult, which has rowcount.
        claimed = cast(CursorResult, session.execute(claim)).rowcount
        if claimed != 1:
            return Verification(Outcome.REUSED, {"race": True})
        left = self.remaining(session, user=user)
        # The practice's admins hear of each use (a lost phone, or a stolen code), in this transaction.
        alerted = {"codes_left": left}
        self.alerts.raise_alert(
            session,
            kind=AlertKind.BACKUP_CODE_USED,
            practice_id=user.practice_id,
            subject_id=user.id,
            details=alerted,
        )
        if left <= LOW_WATER:
            self.alerts.raise_alert(
                session,
                kind=AlertKind.BACKUP_CODES_LOW,
                practice_id=user.practice_id,
                subject_id=user.id,
                details=alerted,
            )
        notices = self.notices
        return Verification(
            Outcome.ACCEPTED,
            {"codes_left": left},
            after_commit=lambda context: notices.notify_recovery_code_used(user, context, codes_left=left),
        )

    def remove(self, session: Session, *, user: User) -> None:
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))

    def _hash(self, user_id: int, code: str) -> str:
        # Bound to the account: the same code of two accounts has two hashes.
        return self.hasher.hash(f"{user_id}:{code}")
