"""The one password gate, and re-authentication (password and a fresh code) for sensitive changes.

``PasswordGate.guess`` is the only place a password is checked: sign-in, the
set-up link's password step, a password change and re-authentication all use it.
It holds the account's turn (one guess at a time per account, so a parallel burst
cannot all pass the check before any failure is counted: OWASP ASVS 2.2.1),
refuses while the throttle blocks, runs argon2 outside any transaction, and lets
the caller count a wrong guess in its own transaction, beside its audit event.

Re-authentication (``Reauthentication``) adds a current code to the password.
Turning 2FA off, generating new backup codes, replacing the authenticator app,
removing email codes and an admin's reset of a member each need it (design
invariant 6). The code may come from any method the account has and its
practice allows: the app, a backup code (the lost-phone path), or an emailed code.
Guesses count against the same per-account throttles as sign-in, so
re-authentication is no side door for guessing::

    with reauth.password(user=user, password=password) as password_check:   # may raise Throttled
        with db.transaction() as s:
            proof = reauth.verify(s, user=user, password=password_check, code=code, context=..., action="...")
            ...the change...          # not reached when refused: the count and audit event commit
    proof.after_commit(context)        # e.g. the "backup code used" email
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.crypto.passwords import PasswordHasher
from twofold.errors import InvalidCode, InvalidCredentials, InvalidInput, Throttled
from twofold.factors.base import FactorRegistry, FactorResponse, Outcome, Verification, run_after_commit
from twofold.store.db import Database, Refusal, lock_account
from twofold.store.models import User, account_by_email
from twofold.throttle import Blocked, Reservation, Rule, Throttle, code_throttle_key, password_checks

WRONG_CODE = (
    "That code is not right. Enter the current code from your authenticator app, a backup code you have not "
    "used, or the newest code we emailed you."
)

ThrottleKey = tuple[Rule, str]


@dataclass(slots=True)
class PasswordCheck:
    """One password guess, judged: ``ok``, and the account as read for it (None: no such account).

    The guess was counted as failed before it was judged (a reservation, see
    twofold/throttle.py). ``count_failure`` keeps that count; ``release`` takes it
    back after a right password; a check left unsettled is released when the
    gate's block ends.
    """

    ok: bool
    user: User | None
    password_hash: str | None
    counted: tuple[ThrottleKey, ...] = field(repr=False)
    throttle: Throttle = field(repr=False)
    reservation: Reservation | None = field(default=None, repr=False)
    settled: bool = field(default=False, repr=False)

    def count_failure(self, session: Session) -> int:
        """Count this guess as failed, in ``session``'s transaction; return the wait it started (0: none)."""
        if self.reservation is None or self.settled:
            return self.throttle.hit(session, self.counted)
        self.settled = True
        return self.throttle.retry_after(session, self.counted)

    def release(self, session: Session | None) -> None:
        """The guess was right: take back its reserved failure (in ``session``'s transaction)."""
        if self.reservation is not None and not self.settled:
            self.throttle.release(session, self.reservation)
        self.settled = True


@dataclass(kw_only=True, slots=True)
class PasswordGate:
    """Check, hash and count one password guess at a time per account."""

    db: Database
    passwords: PasswordHasher
    throttle: Throttle

    @contextmanager
    def guess(
        self,
        *,
        email: str,
        password: str,
        counted: Sequence[ThrottleKey],
        also_blocked_by: Sequence[ThrottleKey] = (),
        what: str = "password attempts",
        on_throttled: Callable[[User | None, int], None] | None = None,
        user_id: int | None = None,
    ) -> Iterator[PasswordCheck]:
        """Judge ``password`` for the account ``email``; the block runs in the account's turn.

        The account is the one that signs in with ``email`` (``account_by_email``: the claimed
        account, never a pending member row of the same address), or, given ``user_id``,
        exactly that member (a signed-in member, the member of a set-up link).

        Raises ``Throttled`` (after ``on_throttled``, to audit it) while ``counted`` or
        ``also_blocked_by`` block: then no argon2 work is done, and the error's
        ``blocked_by`` names the full key. Otherwise the guess is counted on
        ``counted`` before argon2 runs (one atomic reservation, exact across
        processes); the block keeps the count with ``PasswordCheck.count_failure``
        or takes it back with ``release`` (done for it when the block ends). An
        unknown account costs the same argon2 work.
        """
        with self.throttle.one_at_a_time(email):
            with self.db.reading() as s:
                query = select(User).where(User.id == user_id) if user_id is not None else account_by_email(email)
                user = s.execute(query).scalar_one_or_none()
                blocked: Reservation | Blocked | None = self.throttle.blocking(s, also_blocked_by)
            if blocked is None:
                blocked = self._reserve(counted)
            if isinstance(blocked, Blocked):
                if on_throttled is not None:
                    on_throttled(user, blocked.wait)
                error = Throttled(blocked.wait, what)
                error.blocked_by = blocked.key
                raise error
            password_hash = user.password_hash if user is not None else None
            check = PasswordCheck(False, user, password_hash, tuple(counted), self.throttle, blocked)
            try:
                check.ok = self.passwords.verify(password_hash, password)
                yield check
            finally:
                if not check.settled:
                    self._release(check)

    def _reserve(self, counted: Sequence[ThrottleKey]) -> Reservation | Blocked:
        if not self.throttle.in_database:
            return self.throttle.reserve(None, counted)
        with self.db.transaction() as s:
            return self.throttle.reserve(s, counted)

    def _release(self, check: PasswordCheck) -> None:
        if not self.throttle.in_database:
            check.release(None)
            return
        with self.db.transaction() as s:
            check.release(s)


@dataclass(frozen=True)
class Proof:
    """A passed re-authentication: the method whose code passed, and its follow-up."""

    method: str
    verification: Verification

    def after_commit(self, context: RequestContext) -> None:
        run_after_commit(self.verification.after_commit, context)


class _Audited(TypedDict):
    """The ``AuditLog.record`` arguments every event of one re-authentication shares."""

    context: RequestContext
    practice_id: int | None
    actor_id: int | None
    subject_id: int | None


@dataclass(kw_only=True, slots=True)
class Reauthentication:
    db: Database
    gate: PasswordGate
    throttle: Throttle
    factors: FactorRegistry
    audit: AuditLog

    @contextmanager
    def password(self, *, user: User, password: str) -> Iterator[PasswordCheck]:
        """The account's password, judged; hold it around the change's transaction (see the module docstring).

        Raises ``Throttled`` while password or code guesses are blocked.
        """
        with self.gate.guess(
            email=user.email,
            user_id=user.id,
            password=password,
            counted=password_checks(user.email, client="signed-in"),
            also_blocked_by=[code_throttle_key(user.id)],
            what="attempts",
        ) as check:
            yield check

    def verify(
        self,
        s: Session,
        *,
        user: User,
        password: PasswordCheck,
        code: FactorResponse,
        context: RequestContext,
        action: str,
        failed_event: EventTag = EventTag.REAUTHENTICATION_FAILED,
        subject_id: int | None = None,
        wrong_password_message: str = "The password is not right.",  # noqa: S107 - a message, not a password
    ) -> Proof:
        """Check the code in the change's transaction, with any method the user's practice allows.

        A wrong password or code is counted and audited (``failed_event``, about
        ``subject_id``, by default the user) and refused with ``Refusal``: the count
        and the event commit, the change does not happen.
        """
        lock_account(s, user.id)  # concurrent guesses are counted one after another
        audited = _Audited(
            context=context,
            practice_id=user.practice_id,
            actor_id=user.id,
            subject_id=user.id if subject_id is None else subject_id,
        )
        if not password.ok:
            wait = password.count_failure(s)
            self.audit.record(s, failed_event, **audited, details={"action": action, "reason": "wrong_password"})
            self.audit.record_lockout(
                s,
                wait=wait,
                step=f"{action}_password",
                context=context,
                practice_id=user.practice_id,
                subject_id=user.id,
            )
            raise Refusal(InvalidCredentials(wrong_password_message))
        method, verification = self.factors.verify_any(
            s, user=user, response=code, allowed=self.factors.allowed(Policy.of(user.practice).allowed_methods)
        )
        if method is not None:
            return Proof(method, verification)
        if verification.outcome is Outcome.MALFORMED:
            # Nothing the user has could have made this code: input error, no attempt counted.
            raise InvalidInput(
                "Enter a code: 6 digits from your authenticator app, a backup code such as 7kq4-m2xp, or the "
                "8 digits we emailed you."
            )
        wait = self.throttle.hit(s, [code_throttle_key(user.id)]) if verification.counts_as_guess else 0
        self.audit.record(s, failed_event, **audited, details={"action": action, "reason": str(verification.outcome)})
        self.audit.record_lockout(
            s, wait=wait, step=action, context=context, practice_id=user.practice_id, subject_id=user.id
        )
        # One answer for every wrong code, as at sign-in (no "check your phone's clock" hint that
        # would confirm a code right for another time step); the reason is in the audit event.
        raise Refusal(InvalidCode(WRONG_CODE))
