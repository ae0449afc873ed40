"""Email codes: an 8-digit code sent to the account's confirmed address.

The weakest factor we offer: NIST SP 800-63B-4 §3.1.3.1 says email SHALL NOT be
used for out-of-band authentication (a mailbox is often reachable with a password
alone, and mail can be intercepted or rerouted). So a
practice can disallow it, an admin never has it as their only method (it counts
for an admin only beside a stronger factor), and the settings page says why the
app is better.

A code is valid 10 minutes and once (the limits 63B-4 sets for out-of-band
secrets); issuing one deletes the earlier ones of the
same purpose, so only the newest can be accepted. Sending is limited per account
(one per 30 seconds, five per hour), for every purpose together, across processes
(the shared throttle store). Only a keyed hash of a code is stored (``TokenHasher``;
see benchmarks/code_hashing.py), compared in constant time, consumed by one
conditional UPDATE.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Protocol, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto.otp import normalize_code
from twofold.crypto.secret_box import TokenHasher
from twofold.errors import Throttled
from twofold.factors.base import Challenge, FactorResponse, Outcome, SecondFactor, Verification
from twofold.store.models import EmailCode, EmailMethod, SignInFlow, User
from twofold.throttle import Limit, Rule, Throttle

CODE_DIGITS = 8
CODE_TTL = timedelta(minutes=10)
SENDS_PER_ACCOUNT = Rule("email-send", (Limit(30, 1), Limit(3600, 5)))

# Purposes of a code. A sign-in and a re-authentication share one: either proves
# the same thing (the person can read the mailbox now).
CHALLENGE = "challenge"
CONFIRM_ADDRESS = "confirm_address"


class SendLimited(Throttled):
    """Too many codes asked for; ``retry_after`` says when the next may be."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        if self.retry_after <= SENDS_PER_ACCOUNT.limits[0].window_seconds:
            self.message = (
                f"We sent a code a moment ago. Check your inbox (and spam folder); you can ask for another in "
                f"{_seconds(self.retry_after)}."
            )
        else:
            self.message = (
                f"You have asked for {SENDS_PER_ACCOUNT.limits[1].max_failures} codes within an hour. You can ask "
                f"for another in {_seconds(self.retry_after)}; until then use the newest code you received, your "
                f"authenticator app or a backup code."
            )
        self.args = (self.message,)


class CodeMail(Protocol):
    def send_code(self, user: User, *, code: str, purpose: str, minutes: int, context: RequestContext) -> bool:
        """Send ``code`` now; False when the first try failed (retried in the background)."""


@dataclass(kw_only=True, slots=True)
class EmailCodeFactor:
    kind: ClassVar[str] = "email"
    label: ClassVar[str] = "Email code"
    amr: ClassVar[str] = "otp"  # RFC 8176: a one-time password
    described_as: ClassVar[str] = "codes sent by email"
    always_allowed: ClassVar[bool] = False  # the weakest factor: a practice may disallow it
    phishing_resistant: ClassVar[bool] = False
    for_recovery: ClassVar[bool] = False
    code_format: ClassVar[str] = "the 8-digit code from the email we sent you"
    wrong_code_message: ClassVar[str] = (
        "That code is not right, or it has expired or was replaced by a newer one. Enter the 8 digits from the "
        "newest email; each code works once, for 10 minutes."
    )

    hasher: TokenHasher
    clock: Clock
    throttle: Throttle
    mail: CodeMail
    # Factors that make email acceptable for an admin when beside it (the app).
    stronger: list[SecondFactor]

    # -- the method ----------------------------------------------------------------

    def is_confirmed_for(self, session: Session, user: User) -> bool:
        """The account's current address is confirmed for codes (whatever the role)."""
        method = session.get(EmailMethod, user.id)
        return method is not None and method.address == user.email

    def has_stronger_factor(self, session: Session, user: User) -> bool:
        return any(factor.is_enabled_for(session, user) for factor in self.stronger)

    def add_method(self, session: Session, *, user: User) -> None:
        method = session.get(EmailMethod, user.id)
        if method is None:
            session.add(EmailMethod(user_id=user.id, address=user.email, confirmed_at=self.clock.now()))
        else:
            method.address, method.confirmed_at = user.email, self.clock.now()

    # -- codes ---------------------------------------------------------------------

    def send_wait(self, session: Session, *, user: User) -> int:
        """Seconds before another code may be sent to ``user``; 0 when one may."""
        return self.throttle.retry_after(session, [self._send_key(user)])

    def issue(self, session: Session, *, user: User, purpose: str) -> str:
        """A new code for ``purpose``, replacing earlier ones; raises ``SendLimited``.

        The account's row is locked first (FOR UPDATE on PostgreSQL; SQLite's
        writing transactions are exclusive), so two requests cannot both pass the
        send limit.
        """
        session.execute(select(User.id).where(User.id == user.id).with_for_update())
        wait = self.send_wait(session, user=user)
        if wait:
            raise SendLimited(wait)
        now = self.clock.now()
        session.execute(
            delete(EmailCode).where(
                EmailCode.user_id == user.id, (EmailCode.purpose == purpose) | (EmailCode.expires_at < now)
            )
        )
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        session.add(
            EmailCode(
                user_id=user.id,
                purpose=purpose,
                code_hash=self._hash(user.id, purpose, code),
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
        self.throttle.hit(session, [self._send_key(user)])
        return code

    def check(self, session: Session, *, user: User, code: FactorResponse, purpose: str) -> Verification:
        """Accept ``code`` if it is the newest live code of ``purpose``; consume it atomically."""
        normalized = self.normalize(code)
        if normalized is None:
            return Verification(Outcome.MALFORMED)
        row = session.execute(
            select(EmailCode)
            .where(EmailCode.user_id == user.id, EmailCode.purpose == purpose)
            .order_by(EmailCode.created_at.desc(), EmailCode.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if row is None or not hmac.compare_digest(row.code_hash, self._hash(user.id, purpose, normalized)):
            return Verification(Outcome.WRONG)
        if row.used_at is not None:
            return Verification(Outcome.REUSED)
        now = self.clock.now()
        if now >= row.expires_at:
            return Verification(Outcome.EXPIRED)
        claim = (
            update(EmailCode)
            .where(EmailCode.id == row.id, EmailCode.used_at.is_(None), EmailCode.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        # Session.execute is typed Result; what an UPDATE returns is a CursorResult, which has rowcount.
        claimed = cast(CursorResult, session.execute(claim)).rowcount
        if claimed != 1:
            return Verification(Outcome.REUSED, {"race": True})
        return Verification(Outcome.ACCEPTED)

    # -- the SecondFactor protocol -------------------------------------------------

    def normalize(self, response: FactorResponse) -> str | None:
        if not isinstance(response, str) or len(response) > 32:
            return None
        return normalize_code(response, digits=CODE_DIGITS)

    def is_enabled_for(self, session: Session, user: User) -> bool:
        if not self.is_confirmed_for(session, user):
            return False
        # An admin's account opens the whole practice: email alone never protects it.
        return user.role != "admin" or self.has_stronger_factor(session, user)

    def enabled_user_ids(self):
        """Users whose current address is confirmed for codes (an admin's email still needs the app beside it)."""
        return (
            select(EmailMethod.user_id)
            .join(User, User.id == EmailMethod.user_id)
            .where(EmailMethod.address == User.email)
        )

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> Challenge:
        code = self.issue(session, user=user, purpose=CHALLENGE)
        mail = self.mail
        return Challenge(
            sent_to=user.email,
            expires_in=int(CODE_TTL.total_seconds()),
            resend_after=SENDS_PER_ACCOUNT.limits[0].window_seconds,
            deliver=lambda context: mail.send_code(
                user, code=code, purpose="sign_in", minutes=int(CODE_TTL.total_seconds() // 60), context=context
            ),
        )

    def verify(
        self, session: Session, *, user: User, response: FactorResponse, flow: SignInFlow | None = None
    ) -> Verification:
        return self.check(session, user=user, code=response, purpose=CHALLENGE)

    def remove(self, session: Session, *, user: User) -> None:
        session.execute(delete(EmailCode).where(EmailCode.user_id == user.id))
        session.execute(delete(EmailMethod).where(EmailMethod.user_id == user.id))

    # -- helpers -------------------------------------------------------------------

    def _send_key(self, user: User) -> tuple[Rule, str]:
        return (SENDS_PER_ACCOUNT, f"email-send:user:{user.id}")

    def _hash(self, user_id: int, purpose: str, code: str) -> str:
        return self.hasher.hash(f"{user_id}:{purpose}:{code}")


def _seconds(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"
