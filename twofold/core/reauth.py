"""Re-authentication for sensitive changes: the password again, and a fresh code.

Turning 2FA off, generating new backup codes, replacing the authenticator app and
removing email codes each need it (design invariant 6). The code may come from
any method the account has and its practice allows: the app, a backup code (the
lost-phone path), or an emailed code. Password and code guesses count against the
same per-account throttles as sign-in, so re-authentication is no side door for
guessing.

Use it in two steps, because argon2 must run outside any transaction::

    password_ok = reauth.check_password(user=user, password=password)   # may raise Throttled
    with db.transaction() as s:
        proof = reauth.verify(s, user=user, password_ok=password_ok, code=code, context=..., action="...")
        if proof.failure is None:
            ...the change...
    if proof.failure: raise proof.failure      # the throttle hit and audit event are kept
    proof.after_commit(context)                # e.g. the "backup code used" email
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.context import RequestContext
from twofold.errors import ClockOutOfSync, InvalidCode, InvalidCredentials, InvalidInput, Throttled, TwofoldError
from twofold.crypto.passwords import PasswordHasher
from twofold.core.policy import Policy
from twofold.core.signin import code_throttle_key, lock_account, run_after_commit
from twofold.throttle import Throttle, password_checks
from twofold.factors.base import FactorRegistry, Outcome, Verification
from twofold.store.db import Database
from twofold.store.models import User

WRONG_CODE = (
    "That code is not right. Enter the current code from your authenticator app, a backup code you have not "
    "used, or the newest code we emailed you."
)


@dataclass(frozen=True)
class Proof:
    """The outcome of a re-authentication: ``failure`` to raise after the commit, or the method that passed."""

    method: str | None = None
    failure: TwofoldError | None = None
    verification: Verification | None = None

    def after_commit(self, context: RequestContext) -> None:
        run_after_commit(self.verification.after_commit if self.verification else None, context)


class Reauthentication:
    def __init__(
        self, *, db: Database, passwords: PasswordHasher, throttle: Throttle, factors: FactorRegistry, audit: AuditLog
    ) -> None:
        self._db = db
        self._passwords = passwords
        self._throttle = throttle
        self._factors = factors
        self._audit = audit

    def check_password(self, *, user: User, password: str) -> bool:
        """True when ``password`` is the account's. Raises ``Throttled`` while password or code guesses are blocked.

        Runs argon2: call it outside any transaction.
        """
        # Check, hash and count one guess at a time per account, as sign-in does, so a
        # parallel burst cannot all pass the check before any failure is counted.
        with self._throttle.one_at_a_time(user.email):
            with self._db.reading() as s:
                wait = self._throttle.retry_after(s, [_password_key(user), code_throttle_key(user.id)])
                fresh = s.get(User, user.id)
            if wait:
                raise Throttled(wait)
            password_ok = self._passwords.verify(fresh.password_hash if fresh else None, password)
            if not password_ok:
                with self._db.transaction() as s:
                    self._throttle.hit(s, [_password_key(user)])
            return password_ok

    def verify(
        self,
        s: Session,
        *,
        user: User,
        password_ok: bool,
        code: str,
        context: RequestContext,
        action: str,
        failed_event: EventTag = EventTag.REAUTHENTICATION_FAILED,
    ) -> Proof:
        """Check the code in the change's transaction; a failure is counted and audited there, and returned."""
        lock_account(s, user.id)  # concurrent guesses are counted one after another
        if not password_ok:
            # check_password already counted the failure; a wait now means it started a lockout.
            wait = self._throttle.retry_after(s, [_password_key(user)])
            self._audit.record(
                s, failed_event, context=context, practice_id=user.practice_id, actor_id=user.id, subject_id=user.id,
                details={"action": action, "reason": "wrong_password"},
            )
            _audit_lockout(self._audit, s, user, wait, step=f"{action}_password", context=context)
            return Proof(failure=InvalidCredentials("The password is not right."))
        method, verification = self._factors.verify_any(
            s, user=user, code=code, allowed=Policy.of(user.practice).second_factors
        )
        if method is not None:
            return Proof(method=method, verification=verification)
        if verification.outcome is Outcome.MALFORMED:
            # Nothing the user has could have made this code: input error, no attempt counted.
            return Proof(failure=InvalidInput(
                "Enter a code: 6 digits from your authenticator app, a backup code such as 7kq4-m2xp, or the "
                "8 digits we emailed you."
            ))
        wait = self._throttle.hit(s, [code_throttle_key(user.id)])
        self._audit.record(
            s, failed_event, context=context, practice_id=user.practice_id, actor_id=user.id, subject_id=user.id,
            details={"action": action, "reason": str(verification.outcome)},
        )
        _audit_lockout(self._audit, s, user, wait, step=action, context=context)
        return Proof(failure=ClockOutOfSync() if verification.outcome is Outcome.OUT_OF_SYNC else InvalidCode(WRONG_CODE))


def _audit_lockout(audit: AuditLog, s: Session, user: User, wait: int, *, step: str, context: RequestContext) -> None:
    """The failure that starts a wait is a lockout, audited like one at sign-in."""
    if wait:
        audit.record(
            s, EventTag.LOCKED_OUT, context=context, practice_id=user.practice_id, subject_id=user.id,
            details={"step": step, "retry_after": wait},
        )


def _password_key(user: User) -> tuple:
    return password_checks(user.email)[0]
