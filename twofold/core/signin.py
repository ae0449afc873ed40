"""Sign-in as a flow: password first, then a second factor, then a session.

A flow row records that the password was right; it grants nothing by itself and
lives ten minutes. Only ``verify_second_factor`` turns it into a session.

The flow is bound to the browser that passed the password step: that browser gets
a flow cookie (``FLOW_COOKIE``), the flow stores a keyed hash of it, and every
later step must come with it (through ``RequestContext.flow_binding``). The flow id
itself is stored only as a keyed hash too. A flow id seen in a URL, a log or a
copy of the database finishes no sign-in, and a flow takes at most
``MAX_FLOW_ATTEMPTS`` wrong codes before it ends.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.known_browsers import KnownBrowsers
from twofold.core.lockouts import LockWindows
from twofold.core.policy import Policy
from twofold.core.reauth import PasswordCheck, PasswordGate
from twofold.core.remembered import BrowserCookie, RememberedBrowserService, TrustCheck
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.core.workstations import RememberRefusedOnWorkstation, WorkstationService
from twofold.crypto.passwords import PasswordHasher
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import (
    CodeJustUsed,
    DeliveryFailed,
    FlowExpired,
    FlowNotFound,
    InvalidCode,
    InvalidCredentials,
    InvalidInput,
    MethodNotAvailable,
    NotFound,
    Throttled,
    TwofoldError,
)
from twofold.factors.base import Challenge, FactorRegistry, FactorResponse, Outcome, run_after_commit
from twofold.store.db import Database, Refusal, lock_account
from twofold.store.models import Practice, SignInFlow, User
from twofold.store.prepared import Prepared, as_record
from twofold.throttle import (
    PASSWORD_PER_ACCOUNT,
    Limit,
    Rule,
    Throttle,
    account_lock_keys,
    code_throttle_key,
    password_checks,
    subject_key,
)

FLOW_TTL = timedelta(minutes=10)
FLOW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet
FLOW_COOKIE = "twofold_flow"
# Wrong codes one flow may take; then it ends and the sign-in starts again from the password
# (which is throttled too). The per-account code throttle still counts across flows.
MAX_FLOW_ATTEMPTS = 5
# At most one "sign-in is paused" email with an unlock link per account and hour.
UNLOCK_MAIL = Rule("unlock-mail", (Limit(3600, 1),))

PASSWORD_VERIFIED = "password_verified"
SECOND_FACTOR_VERIFIED = "second_factor_verified"


@dataclass(frozen=True)
class SignInResult:
    """Either a session (``session_token``) or a flow waiting for a second factor."""

    status: str  # "signed_in" | "second_factor_required"
    user_id: int
    session_token: str | None = None
    flow_id: str | None = None
    methods: list[str] = field(default_factory=list)
    return_to: str | None = None
    # A remembered-browser cookie to set (granted) or to delete (refused token).
    browser_cookie: BrowserCookie | None = None
    # The flow cookie to set (a flow opened; it outlives the flow by nothing, so it is left to
    # expire), and the device cookie that makes this browser known to the account (signed in).
    flow_cookie: BrowserCookie | None = None
    device_cookie: BrowserCookie | None = None

    @property
    def cookies(self) -> list[BrowserCookie]:
        """Every cookie this result sets or deletes, but the session's."""
        return [c for c in (self.browser_cookie, self.flow_cookie, self.device_cookie) if c is not None]


class MalformedCode(InvalidInput):
    message = "That is not a code of this method: check the number of digits and type only 0-9."


class FlowExhausted(FlowExpired):
    message = "This sign-in ended after too many wrong codes. Start again from the sign-in page."


class UnlockLinkInvalid(NotFound):
    code = "unlock_link_invalid"
    message = (
        "This unlock link is not valid or has expired. Sign in from a browser you used before, "
        "or ask your practice admin to unlock your account."
    )


_FLOWS = cast(Table, SignInFlow.__table__)
_USERS = cast(Table, User.__table__)
_PRACTICES = cast(Table, Practice.__table__)
_SET_FLOW_STATE = Prepared(update(_FLOWS).where(_FLOWS.c.id == bindparam("row_id")))
_COUNT_FLOW_ATTEMPT = Prepared(
    update(_FLOWS).where(_FLOWS.c.id == bindparam("row_id")).values(attempts=_FLOWS.c.attempts + 1)
)
_SET_LAST_SIGN_IN = Prepared(update(_USERS).where(_USERS.c.id == bindparam("row_id")))
# The flow with its user and practice in one statement, as plain rows: loading three
# ORM objects cost more than the rest of the code step's reads together (see
# benchmarks/http_code_step.py). The locking form locks only the flow row.
_FLOW_SELECT = (
    select(_FLOWS, _USERS, _PRACTICES)
    .select_from(
        _FLOWS.outerjoin(_USERS, _USERS.c.id == _FLOWS.c.user_id).outerjoin(
            _PRACTICES, _PRACTICES.c.id == _USERS.c.practice_id
        )
    )
    .where(_FLOWS.c.id == bindparam("flow_id"))
)
_FLOW_ROWS = Prepared(_FLOW_SELECT)
_FLOW_ROWS_LOCKED = Prepared(_FLOW_SELECT.with_for_update(of=_FLOWS))
# Where each table's columns sit in a row of them.
_FLOW_END = len(_FLOWS.columns)
_USER_END = _FLOW_END + len(_USERS.columns)


def _write(s: Session, obj: SignInFlow | User | SimpleNamespace, statement: Prepared, **values: Any) -> None:
    """Update columns of a row with one plain UPDATE, and a loaded ORM object to match.

    Every code-step sign-in does this twice; a plain statement costs a fraction of
    the ORM's flush (see benchmarks/http_code_step.py).
    """
    statement.execute(s, {"row_id": obj.id, **values})
    if isinstance(obj, SimpleNamespace):
        for name, value in values.items():
            setattr(obj, name, value)
        return
    for name, value in values.items():
        set_committed_value(obj, name, value)


def _as_user(record: SimpleNamespace) -> User:
    """A user record of ``_live_flow`` where the factors, sessions and browsers take a ``User``.

    It has every column of ``users`` as an attribute, and ``practice`` (its
    practice row as a record): all that those read of a user. It is no ORM object
    (no session, no other relationships); ``_write`` updates it as a record.
    """
    return cast(User, record)


def _as_flow(record: SimpleNamespace) -> SignInFlow:
    """A flow record of ``_live_flow`` (every column of ``sign_in_flows``) where a ``SignInFlow`` is taken."""
    return cast(SignInFlow, record)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _also(first, second):
    """Two after-commit follow-ups as one; either may be None."""
    if first is None or second is None:
        return first or second

    def both(context: RequestContext) -> None:
        run_after_commit(first, context)
        second(context)

    return both


@dataclass(kw_only=True, slots=True)
class SignInService:
    db: Database
    clock: Clock
    passwords: PasswordHasher
    gate: PasswordGate
    throttle: Throttle
    audit: AuditLog
    sessions: SessionService
    factors: FactorRegistry
    remembered: RememberedBrowserService
    mail: SecurityMail
    known_browsers: KnownBrowsers
    windows: LockWindows
    flow_hasher: TokenHasher
    workstations: WorkstationService

    def start_sign_in(
        self,
        *,
        email: str,
        password: str,
        context: RequestContext,
        return_to: str | None = None,
        remembered_cookies: Mapping[str, str] | None = None,
    ) -> SignInResult:
        """Check the password. Unknown email and wrong password get the same error, at the same cost.

        The argon2 work happens outside any transaction, so a sign-in holds no
        database lock while hashing. When the account has a second factor and
        ``remembered_cookies`` (the request's cookies) hold a live remembered-browser
        token of this account, the sign-in completes without a code.

        Wrong guesses count per account and client; ``remembered_cookies`` may also
        hold this account's device cookie, which exempts the browser from the
        account-wide ceiling (see twofold/core/known_browsers.py).
        """
        email = normalize_email(email)
        if not email or not email.isprintable():
            # No account has such an email; PostgreSQL would refuse a NUL in the lookup.
            raise InvalidInput("Enter your email address, such as name@example.org.")
        known = self.known_browsers.recognise(email, remembered_cookies)
        asked: list[User | None] = []
        try:
            with self.gate.guess(
                email=email,
                password=password,
                counted=password_checks(email, context.ip, known_browser=known),
                what="sign-in attempts",
                on_throttled=lambda user, _wait: asked.append(user),
            ) as check:
                return self._after_password(
                    check,
                    password=password,
                    context=context,
                    return_to=return_to,
                    remembered_cookies=remembered_cookies,
                )
        except Throttled as exc:
            if asked:  # refused by the gate before any argon2 work: counted in its lock window
                user = asked[0]
                with self.db.transaction() as s:
                    self.windows.refused(
                        s,
                        key=exc.blocked_by,
                        wait=exc.retry_after,
                        step="password",
                        context=context,
                        practice_id=user.practice_id if user else None,
                        subject_id=user.id if user else None,
                    )
            raise

    def _refuse_password(self, check: PasswordCheck, *, context: RequestContext) -> None:
        """Count, audit and refuse a wrong password (or an inactive account); email an unlock link when it
        just locked the account for unknown browsers."""
        user = check.user
        reason = "unknown_email" if user is None else ("inactive" if check.ok else "wrong_password")
        practice_id = user.practice_id if user else None
        subject_id = user.id if user else None
        unlock_mail = None
        with self.db.transaction() as s:
            check.count_failure(s)
            self.audit.record(
                s,
                EventTag.SIGN_IN_PASSWORD_FAILED,
                context=context,
                practice_id=practice_id,
                subject_id=subject_id,
                details={"reason": reason},
            )
            blocked = self.throttle.blocking(s, check.counted)
            if blocked is None:
                self.windows.summarise_due(s)
            else:
                opened = self.windows.locked(
                    s,
                    key=blocked.key,
                    wait=blocked.wait,
                    step="password",
                    context=context,
                    practice_id=practice_id,
                    subject_id=subject_id,
                )
                if opened and user is not None and user.active and blocked.key == self._ceiling_key(user.email):
                    unlock_mail = self._unlock_mail(s, user=user, wait=blocked.wait)
        run_after_commit(unlock_mail, context)
        raise InvalidCredentials()

    @staticmethod
    def _ceiling_key(email: str) -> str:
        return subject_key(PASSWORD_PER_ACCOUNT, email)

    def _unlock_mail(self, s: Session, *, user: User, wait: int):
        """The "sign-in is paused" email with an unlock link, at most once an hour per account (None: not now)."""
        key = [(UNLOCK_MAIL, f"unlock-mail:user:{user.id}")]
        if self.throttle.retry_after(s, key):
            return None
        self.throttle.hit(s, key)
        member = s.get(User, user.id)
        if member is None or member.practice is None:  # loaded now: the email is written after the commit
            return None
        token = self.known_browsers.unlock_token(user_id=member.id, email=member.email)
        return partial(
            self.mail.notify_sign_in_locked,
            member,
            minutes=max(1, (wait + 59) // 60),
            unlock_path=f"/sign-in/unlock/{token}",
        )

    def _after_password(
        self,
        check: PasswordCheck,
        *,
        password: str,
        context: RequestContext,
        return_to: str | None,
        remembered_cookies: Mapping[str, str] | None,
    ) -> SignInResult:
        user = check.user
        usable = check.ok and user is not None and user.active
        rehashed = (
            self.passwords.hash(password)
            if usable and user is not None and self.passwords.needs_rehash(user.password_hash)
            else None
        )
        if not usable:
            self._refuse_password(check, context=context)
        with self.db.transaction() as s:
            check.release(s)  # a right password: its failure, reserved before argon2 ran, is taken back
            if user is None:
                raise RuntimeError("a usable password check without its user")
            user = s.get(User, user.id)
            if user is None:
                raise RuntimeError("the user whose password was checked is gone (users are never deleted)")
            if rehashed:
                user.password_hash = rehashed
                self.audit.record(
                    s,
                    EventTag.PASSWORD_REHASHED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                )
            workstation = self.workstations.recognise(s, context.workstation)
            if workstation is not None and workstation.practice_id != user.practice_id:
                # Another practice's front desk: the one answer every refused password gets, so the
                # refusal confirms nothing about the password; the reason stays in the audit log.
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_WORKSTATION_REFUSED,
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                    details={"workstation_id": workstation.id},
                )
                raise Refusal(InvalidCredentials())
            policy = Policy.of(user.practice)
            methods = self.factors.enabled_for(s, user, self._allowed(s, user, policy))
            # A factor set up but no longer allowed still closes the password-only door.
            if not methods and not self.factors.enabled_for(s, user):
                return self._complete(s, user=user, context=context, method="password", return_to=return_to)
            # On a shared workstation a remembered-browser cookie is ignored (not even looked up): the
            # person who left it there is not who signs in next, so every sign-in asks for the code.
            trust = (
                TrustCheck()
                if workstation is not None
                else self.remembered.check(s, user=user, cookies=remembered_cookies, context=context)
            )
            if trust.trusted:
                return self._complete(s, user=user, context=context, method="remembered_browser", return_to=return_to)
            result = self._open_flow(s, user=user, methods=methods, context=context, return_to=return_to)
            return replace(result, browser_cookie=trust.cookie)

    def verify_second_factor(
        self,
        *,
        flow_id: str,
        method: str,
        code: FactorResponse,
        context: RequestContext,
        remember_browser: bool = False,
    ) -> SignInResult:
        """Check a code for a flow; on success the flow is consumed and a session begins.

        With ``remember_browser`` (and a practice policy that allows it) the result
        also carries a remembered-browser cookie, granted in the same transaction. On a
        shared workstation ``remember_browser`` is refused (``RememberRefusedOnWorkstation``)
        before the code is checked.
        A refused response's follow-up (the "possible cloned key" email) runs once the
        refusal's record is committed.
        """
        refused_follow_up: list[Callable[[RequestContext], None]] = []
        try:
            return self._verify_second_factor(
                flow_id=flow_id,
                method=method,
                code=code,
                context=context,
                remember_browser=remember_browser,
                refused=refused_follow_up,
            )
        except TwofoldError:
            for work in refused_follow_up:
                run_after_commit(work, context)
            raise

    def _verify_second_factor(
        self,
        *,
        flow_id: str,
        method: str,
        code: FactorResponse,
        context: RequestContext,
        remember_browser: bool,
        refused: list[Callable[[RequestContext], None]],
    ) -> SignInResult:
        with self.db.transaction() as s:
            flow_record, user_record = self._live_flow(s, flow_id, binding=context.flow_binding)
            flow, user = _as_flow(flow_record), _as_user(user_record)
            policy = Policy.of(user.practice)
            if remember_browser and self.workstations.recognise(s, context.workstation) is not None:
                raise RememberRefusedOnWorkstation()  # before the code is looked at: nothing is used up
            factor = self.factors.get(method)
            # Only the method asked for is looked up (one query, not one per factor).
            if (
                factor is None
                or not self.factors.allows(policy.allowed_methods, method)
                or (policy.phishing_resistant_roles and method not in self._allowed(s, user, policy))
                or not factor.is_enabled_for(s, user)
            ):
                raise MethodNotAvailable()
            if factor.normalize(code) is None:
                # Malformed input changes nothing: no attempt is counted.
                raise MalformedCode(f"That is not a code of this method: enter {factor.code_format}.")
            lock_account(s, user.id)
            key = code_throttle_key(user.id)
            wait = self.throttle.retry_after(s, [key])
            if wait:
                self.windows.refused(
                    s,
                    key=key[1],
                    wait=wait,
                    step="second_factor",
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                )
                raise Refusal(Throttled(wait, "code attempts"))
            verification = factor.verify(s, user=user, response=code, flow=flow)
            if not verification.accepted:
                wait = 0
                if verification.after_commit is not None:
                    refused.append(verification.after_commit)
                if verification.counts_as_guess:
                    _COUNT_FLOW_ATTEMPT.execute(s, {"row_id": flow.id})
                    wait = self.throttle.hit(s, [key])
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_CODE_FAILED,
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                    details={"method": method, "reason": str(verification.outcome), **(verification.details or {})},
                )
                self.windows.locked(
                    s,
                    key=key[1],
                    wait=wait,
                    step="second_factor",
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                )
                if not wait:
                    self.windows.summarise_due(s)
                # One answer for every wrong code, whatever the reason (wrong, reused, expired, or right for
                # another time step): telling "right but for another time" apart would confirm a guessed
                # code that becomes valid later. The reason stays in the audit event. The one exception is the
                # code this member's app just had accepted, sent again: it confirms nothing new, and saying
                # "wait for the next code" saves a member a lockout right after setting up.
                if verification.outcome is Outcome.JUST_USED:
                    raise Refusal(CodeJustUsed())
                raise Refusal(InvalidCode(factor.wrong_code_message))
            _write(s, flow, _SET_FLOW_STATE, state=SECOND_FACTOR_VERIFIED)
            after_commit = verification.after_commit
            result = self._complete(
                s,
                user=user,
                context=context,
                method=method,
                return_to=flow.return_to,
                details=verification.details,
            )
            if remember_browser:
                cookie = self.remembered.grant(s, user=user, context=context)
                result = replace(result, browser_cookie=cookie)
                if cookie is not None:
                    after_commit = _also(
                        after_commit,
                        partial(self.mail.notify_browser_remembered, user, days=policy.remember_browser_days),
                    )
        run_after_commit(after_commit, context)
        return result

    def begin_challenge(self, *, flow_id: str, method: str, context: RequestContext) -> Challenge:
        """Start ``method``'s challenge for a flow (email a code, say) and deliver it after the commit.

        Raises ``MethodNotAvailable`` for a method that sends nothing or is not the
        user's, ``Throttled`` at a send limit (audited), and ``DeliveryFailed`` when
        the code could not be sent at once (it is retried in the background).
        """
        with self.db.transaction() as s:
            flow_record, user_record = self._live_flow(s, flow_id, binding=context.flow_binding)
            flow, user = _as_flow(flow_record), _as_user(user_record)
            factor = self.factors.get(method)
            if factor is None or method not in self._methods(s, user):
                raise MethodNotAvailable()
            try:
                challenge = factor.begin_challenge(s, user=user, flow=flow)
            except Throttled as exc:
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_CODE_SEND_LIMITED,
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                    details={"method": method, "retry_after": exc.retry_after},
                )
                raise Refusal(exc) from None
            if challenge is None:
                raise MethodNotAvailable("This method needs nothing sent: enter the code it shows.")
            self.audit.record(
                s,
                EventTag.SIGN_IN_CODE_SENT,
                context=context,
                practice_id=user.practice_id,
                subject_id=user.id,
                details={"method": method},
            )
        if not challenge.deliver(context):
            raise DeliveryFailed()
        return challenge

    def flow_methods(
        self, flow_id: str, *, context: RequestContext | None = None
    ) -> tuple[SimpleNamespace, SimpleNamespace, list[str]]:
        """The live flow, its user and the methods it offers (for the code page), to the browser it is bound to."""
        with self.db.reading() as s:
            flow, user = self._live_flow(s, flow_id, lock=False, binding=context.flow_binding if context else None)
            return flow, user, self._methods(s, _as_user(user))

    # -- unlocking -----------------------------------------------------------

    def unlock_with_link(self, *, token: str, context: RequestContext) -> BrowserCookie:
        """Open an emailed unlock link: clear the account's failure counts and make this browser known.

        Returns the device cookie to set. Raises ``UnlockLinkInvalid`` for a link that is
        not ours, expired, or for an account that is inactive or whose email changed.
        """
        claimed = self.known_browsers.read_unlock_token(token)
        if claimed is None:
            raise UnlockLinkInvalid()
        with self.db.transaction() as s:
            user = s.get(User, claimed.user_id)
            if user is None or not user.active or not self.known_browsers.unlock_is_valid(token, email=user.email):
                raise UnlockLinkInvalid()
            self.clear_lockout(s, user=user)
            self.audit.record(
                s,
                EventTag.SIGN_IN_UNLOCKED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"by": "email_link"},
            )
            return self.known_browsers.issue(user.email)

    def clear_lockout(self, s: Session, *, user: User) -> None:
        """Forget ``user``'s failed passwords (from every client) and codes, in ``s``'s transaction.

        The lock windows end at once, with their summary events. The caller audits why.
        """
        keys = account_lock_keys(user.email, user.id)
        self.windows.end(s, keys)
        self.throttle.clear(s, keys)

    # -- steps ---------------------------------------------------------------

    def _methods(self, s: Session, user: User) -> list[str]:
        """The methods ``user`` has set up that their practice allows."""
        return self.factors.enabled_for(s, user, self._allowed(s, user, Policy.of(user.practice)))

    def _allowed(self, s: Session, user: User, policy: Policy) -> tuple[str, ...]:
        """The kinds ``user`` may sign in with under ``policy`` (see ``FactorRegistry.for_member``)."""
        return self.factors.for_member(s, user, policy.allowed_methods, policy.phishing_resistant_roles)

    def _live_flow(
        self, s: Session, flow_id: str, lock: bool = True, *, binding: str | None = None
    ) -> tuple[SimpleNamespace, SimpleNamespace]:
        """The live flow and its user (with ``user.practice``) as plain attribute records.

        With ``lock`` the flow row stays locked until the transaction ends. A flow asked
        for without the flow cookie of its browser (``binding``) is not found, as an
        unknown one is: the answer tells a guesser nothing.
        """
        if not FLOW_ID.fullmatch(flow_id):  # not one of ours (and PostgreSQL refuses a NUL in a lookup)
            raise FlowNotFound()
        stored_id = self.flow_hasher.hash(flow_id)
        row = (_FLOW_ROWS_LOCKED if lock else _FLOW_ROWS).execute(s, {"flow_id": stored_id}).one_or_none()
        if row is None:
            raise FlowNotFound()
        flow = as_record(_FLOWS, row[:_FLOW_END])
        if not binding or len(binding) > 128 or flow.binding_hash is None:
            raise FlowNotFound()
        if not hmac.compare_digest(flow.binding_hash, self.flow_hasher.hash(f"binding:{binding}")):
            raise FlowNotFound()
        if flow.state != PASSWORD_VERIFIED or self.clock.now() >= flow.expires_at:
            raise FlowExpired()
        if flow.attempts >= MAX_FLOW_ATTEMPTS:
            raise FlowExhausted()
        user = as_record(_USERS, row[_FLOW_END:_USER_END])
        if user.id is None or not user.active:
            raise FlowExpired()
        user.practice = as_record(_PRACTICES, row[_USER_END:])
        return flow, user

    def _open_flow(
        self, s: Session, *, user: User, methods: list[str], context: RequestContext, return_to: str | None
    ) -> SignInResult:
        now = self.clock.now()
        flow_id = secrets.token_urlsafe(24)
        binding = random_token(32)
        flow = SignInFlow(
            id=self.flow_hasher.hash(flow_id),
            binding_hash=self.flow_hasher.hash(f"binding:{binding}"),
            user_id=user.id,
            state=PASSWORD_VERIFIED,
            created_at=now,
            expires_at=now + FLOW_TTL,
            attempts=0,
            ip=context.ip,
            user_agent=(context.user_agent or "")[:512] or None,
            return_to=return_to,
        )
        s.add(flow)
        self.audit.record(
            s,
            EventTag.SIGN_IN_SECOND_FACTOR_REQUIRED,
            context=context,
            practice_id=user.practice_id,
            subject_id=user.id,
            details={"methods": methods},
        )
        return SignInResult(
            "second_factor_required",
            user.id,
            flow_id=flow_id,
            methods=methods,
            return_to=return_to,
            flow_cookie=BrowserCookie(FLOW_COOKIE, binding, int(FLOW_TTL.total_seconds())),
        )

    def _amr(self, method: str, details: dict | None = None) -> tuple[str, ...]:
        """RFC 8176 references for a sign-in by ``method`` after the password (or a remembered browser).

        A factor may name the proof of one response in ``details["amr"]`` (a synced passkey is "swk").
        """
        factor = self.factors.get(method)
        if factor is None:  # the password alone, or the password on a remembered browser
            return ("pwd",)
        return ("pwd", (details or {}).get("amr") or factor.amr, "mfa")

    def _complete(
        self,
        s: Session,
        *,
        user: User,
        context: RequestContext,
        method: str,
        return_to: str | None,
        details: dict | None = None,
    ) -> SignInResult:
        token = self.sessions.start(s, user=user, context=context, amr=self._amr(method, details))
        _write(s, user, _SET_LAST_SIGN_IN, last_sign_in_at=self.clock.now())
        self.audit.record(
            s,
            EventTag.SIGN_IN_SUCCEEDED,
            context=context,
            practice_id=user.practice_id,
            actor_id=user.id,
            subject_id=user.id,
            details={**(details or {}), "method": method},
        )
        return SignInResult(
            "signed_in",
            user.id,
            session_token=token,
            return_to=return_to,
            device_cookie=self.known_browsers.issue(user.email),
        )
