"""Sign-in as a flow: password first, then a second factor, then a session.

A flow row records that the password was right; it grants nothing by itself and
lives ten minutes. Only ``verify_second_factor`` turns it into a session.
"""

from __future__ import annotations

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
from twofold.core.policy import Policy
from twofold.core.reauth import PasswordCheck, PasswordGate
from twofold.core.remembered import BrowserCookie, RememberedBrowserService
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.crypto.passwords import PasswordHasher
from twofold.errors import (
    DeliveryFailed,
    FlowExpired,
    FlowNotFound,
    InvalidCredentials,
    InvalidInput,
    MethodNotAvailable,
    Throttled,
    TwofoldError,
)
from twofold.factors.base import Challenge, FactorRegistry, FactorResponse, run_after_commit
from twofold.store.db import Database, Refusal, lock_account
from twofold.store.models import Practice, SignInFlow, User
from twofold.store.prepared import Prepared, as_record
from twofold.throttle import Throttle, code_throttle_key, password_checks

FLOW_TTL = timedelta(minutes=10)
FLOW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # secrets.token_urlsafe's alphabet

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


class MalformedCode(InvalidInput):
    message = "That is not a code of this method: check the number of digits and type only 0-9."


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
        """
        email = normalize_email(email)
        if not email or not email.isprintable():
            # No account has such an email; PostgreSQL would refuse a NUL in the lookup.
            raise InvalidInput("Enter your email address, such as name@example.org.")
        with self.gate.guess(
            email=email,
            password=password,
            counted=password_checks(email, context.ip),
            what="sign-in attempts",
            on_throttled=lambda user, wait: self._audit_throttled(user, wait, context),
        ) as check:
            return self._after_password(
                check, password=password, context=context, return_to=return_to, remembered_cookies=remembered_cookies
            )

    def _audit_throttled(self, user: User | None, wait: int, context: RequestContext) -> None:
        with self.db.transaction() as s:
            self.audit.record(
                s,
                EventTag.SIGN_IN_THROTTLED,
                context=context,
                practice_id=user.practice_id if user else None,
                subject_id=user.id if user else None,
                details={"step": "password", "retry_after": wait},
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
        with self.db.transaction() as s:
            if not usable:
                reason = "unknown_email" if user is None else ("inactive" if check.ok else "wrong_password")
                wait = check.count_failure(s)
                practice_id = user.practice_id if user else None
                subject_id = user.id if user else None
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_PASSWORD_FAILED,
                    context=context,
                    practice_id=practice_id,
                    subject_id=subject_id,
                    details={"reason": reason},
                )
                self.audit.record_lockout(
                    s, wait=wait, step="password", context=context, practice_id=practice_id, subject_id=subject_id
                )
                raise Refusal(InvalidCredentials())
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
            policy = Policy.of(user.practice)
            methods = self.factors.enabled_for(s, user, self._allowed(s, user, policy))
            # A factor set up but no longer allowed still closes the password-only door.
            if not methods and not self.factors.enabled_for(s, user):
                return self._complete(s, user=user, context=context, method="password", return_to=return_to)
            trust = self.remembered.check(s, user=user, cookies=remembered_cookies, context=context)
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
        also carries a remembered-browser cookie, granted in the same transaction.
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
            flow_record, user_record = self._live_flow(s, flow_id)
            flow, user = _as_flow(flow_record), _as_user(user_record)
            policy = Policy.of(user.practice)
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
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_THROTTLED,
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                    details={"step": "second_factor", "method": method, "retry_after": wait},
                )
                raise Refusal(Throttled(wait, "code attempts"))
            verification = factor.verify(s, user=user, response=code, flow=flow)
            if not verification.accepted:
                if verification.after_commit is not None:
                    refused.append(verification.after_commit)
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
                self.audit.record_lockout(
                    s,
                    wait=wait,
                    step="second_factor",
                    context=context,
                    practice_id=user.practice_id,
                    subject_id=user.id,
                )
                raise Refusal(verification.refusal(factor.wrong_code_message))
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
            flow_record, user_record = self._live_flow(s, flow_id)
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

    def flow_methods(self, flow_id: str) -> tuple[SimpleNamespace, SimpleNamespace, list[str]]:
        """The live flow, its user and the methods it offers (for the code page)."""
        with self.db.reading() as s:
            flow, user = self._live_flow(s, flow_id, lock=False)
            return flow, user, self._methods(s, _as_user(user))

    # -- steps ---------------------------------------------------------------

    def _methods(self, s: Session, user: User) -> list[str]:
        """The methods ``user`` has set up that their practice allows."""
        return self.factors.enabled_for(s, user, self._allowed(s, user, Policy.of(user.practice)))

    def _allowed(self, s: Session, user: User, policy: Policy) -> tuple[str, ...]:
        """The kinds ``user`` may sign in with under ``policy`` (see ``FactorRegistry.for_member``)."""
        return self.factors.for_member(s, user, policy.allowed_methods, policy.phishing_resistant_roles)

    def _live_flow(self, s: Session, flow_id: str, lock: bool = True) -> tuple[SimpleNamespace, SimpleNamespace]:
        """The live flow and its user (with ``user.practice``) as plain attribute records.

        With ``lock`` the flow row stays locked until the transaction ends.
        """
        if not FLOW_ID.fullmatch(flow_id):  # not one of ours (and PostgreSQL refuses a NUL in a lookup)
            raise FlowNotFound()
        row = (_FLOW_ROWS_LOCKED if lock else _FLOW_ROWS).execute(s, {"flow_id": flow_id}).one_or_none()
        if row is None:
            raise FlowNotFound()
        flow = as_record(_FLOWS, row[:_FLOW_END])
        if flow.state != PASSWORD_VERIFIED or self.clock.now() >= flow.expires_at:
            raise FlowExpired()
        user = as_record(_USERS, row[_FLOW_END:_USER_END])
        if user.id is None or not user.active:
            raise FlowExpired()
        user.practice = as_record(_PRACTICES, row[_USER_END:])
        return flow, user

    def _open_flow(
        self, s: Session, *, user: User, methods: list[str], context: RequestContext, return_to: str | None
    ) -> SignInResult:
        now = self.clock.now()
        flow = SignInFlow(
            id=secrets.token_urlsafe(24),
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
        return SignInResult("second_factor_required", user.id, flow_id=flow.id, methods=methods, return_to=return_to)

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
        return SignInResult("signed_in", user.id, session_token=token, return_to=return_to)
