"""Practices, members and the account's own two-factor settings."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import GENESIS, AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.reauth import Reauthentication
from twofold.core.remembered import RememberedBrowserService
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.core.signin import normalize_email
from twofold.crypto.passwords import PasswordHasher
from twofold.errors import Conflict, InvalidInput, NotFound
from twofold.factors.base import FactorRegistry, FactorResponse
from twofold.store.db import Database
from twofold.store.models import ROLES, AuditChainHead, Practice, User

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B-4 §3.1.1.2: at least 8; we ask 12 (15 without MFA is advised).
MAX_PASSWORD_LENGTH = 256


class TwoFactorAlreadyEnabled(Conflict):
    code = "two_factor_already_enabled"
    message = (
        'Two-factor authentication is already on. To use a new authenticator app, choose "Replace authenticator '
        'app" and confirm with your password and a code.'
    )


class TwoFactorNotEnabled(Conflict):
    code = "two_factor_not_enabled"
    message = "Two-factor authentication is not on for this account."


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    methods: list[str]
    recovery_codes_left: int = 0


class BackupCodeCount(Protocol):
    def remaining(self, session: Session, *, user: User) -> int:
        """How many unused backup codes ``user`` has."""


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")


# One plain address (RFC 5322 addr-spec, dot-atom local part): no display name, no list, no
# comment, no quoting, no spaces or control characters. An address is a mail header's value
# and an SMTP recipient: "Eve <eve@x.org>", "a@x.org, eve@x.org" or a CR/LF must never get
# that far (a set-up link was once delivered to an address smuggled in beside the member's).
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+")
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path, less the angle brackets
MAX_NAME_LENGTH = 200
# Bidirectional overrides and isolates: they make a name read differently from what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_email(email: str) -> str:
    """One plain address, normalised (trimmed, lower case); ``InvalidInput`` otherwise."""
    email = normalize_email(email)
    if len(email) > MAX_EMAIL_LENGTH or len(email.partition("@")[0]) > 64 or not PLAIN_ADDRESS.fullmatch(email):
        raise InvalidInput("Enter a valid email address, such as name@example.org.")
    return email


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control character, a line or paragraph separator, or a bidi override."""
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS or ch == "\ufeff" for ch in text)


def check_name(name: str, *, what: str = "A member") -> str:
    """A person's or practice's name, trimmed: 1 to 200 characters, none of them a control character."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME_LENGTH or has_control_characters(name):
        raise InvalidInput(f"{what} needs a name of 1 to {MAX_NAME_LENGTH} characters, without line breaks or tabs.")
    return name


@dataclass(kw_only=True, slots=True)
class AccountService:
    db: Database
    clock: Clock
    passwords: PasswordHasher
    audit: AuditLog
    factors: FactorRegistry
    sessions: SessionService
    remembered: RememberedBrowserService
    reauth: Reauthentication
    mail: SecurityMail
    backup_codes: BackupCodeCount
    default_time_zone: str = "UTC"  # a new practice's (TWOFOLD_DEFAULT_TIME_ZONE)

    # -- practices and members ----------------------------------------------

    def create_practice(self, *, name: str, context: RequestContext) -> Practice:
        name = check_name(name, what="A practice")
        try:
            with self.db.transaction() as s:
                practice = Practice(
                    name=name,
                    created_at=self.clock.now(),
                    allowed_methods=self.factors.kinds(),
                    time_zone=self.default_time_zone,
                )
                s.add(practice)
                s.flush()
                s.add(AuditChainHead(chain=practice.id, seq=0, hash=GENESIS))
                s.flush()
                self.audit.record(
                    s, EventTag.PRACTICE_CREATED, context=context, practice_id=practice.id, details={"name": name}
                )
                return practice
        except IntegrityError:
            raise Conflict(f"A practice named {name!r} already exists.") from None

    def find_practice(self, name: str) -> Practice | None:
        with self.db.reading() as s:
            return s.execute(select(Practice).where(Practice.name == name.strip())).scalar_one_or_none()

    def add_member(
        self,
        *,
        practice_id: int,
        email: str,
        name: str,
        role: str,
        password: str,
        context: RequestContext,
        actor_id: int | None = None,
    ) -> User:
        email = check_email(email)
        name = check_name(name)
        if role not in ROLES:
            raise InvalidInput(f"The role must be one of: {', '.join(ROLES)}.")
        check_password_rules(password)
        password_hash = self.passwords.hash(password)
        try:
            with self.db.transaction() as s:
                practice = s.get(Practice, practice_id)
                if practice is None:
                    raise NotFound("No such practice.")
                now = self.clock.now()
                user = User(
                    practice_id=practice_id,
                    email=email,
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    active=True,
                    created_at=now,
                    password_changed_at=now,
                    practice=practice,
                )
                s.add(user)
                s.flush()
                self.audit.record(
                    s,
                    EventTag.MEMBER_ADDED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=actor_id,
                    subject_id=user.id,
                    details={"role": role},
                )
                return user
        except IntegrityError:
            raise Conflict("An account with this email already exists.") from None

    # -- the account's own two-factor settings -------------------------------

    def two_factor_status(self, user: User) -> TwoFactorStatus:
        with self.db.reading() as s:
            methods = self.factors.enabled_for(s, user)
            left = self.backup_codes.remaining(s, user=user)
        return TwoFactorStatus(enabled=bool(methods), methods=methods, recovery_codes_left=left)

    def disable_two_factor(self, *, user: User, password: str, code: FactorResponse, context: RequestContext) -> None:
        """Turn 2FA off after re-checking the password and a current code (re-authentication).

        The code may be an app code, a backup code or an emailed code; every
        factor's credentials are then removed, backup codes included.
        """
        with self.reauth.password(user=user, password=password) as password_check, self.db.transaction() as s:
            loaded = s.get(User, user.id)
            if loaded is None:
                raise RuntimeError("the signed-in user's row is gone (users are deactivated, never deleted)")
            user = loaded
            if not self.factors.enabled_for(s, user):
                raise TwoFactorNotEnabled()
            proof = self.reauth.verify(
                s,
                user=user,
                password=password_check,
                code=code,
                context=context,
                action="disable_two_factor",
                failed_event=EventTag.TWO_FACTOR_DISABLE_FAILED,
            )
            for factor in self.factors:
                factor.remove(s, user=user)
            # Trust in a browser stands for a proven second factor; with none left, none stands.
            self.remembered.revoke_all_for(s, user.id, "two_factor_disabled", context=context, actor_id=user.id)
            self.audit.record(
                s,
                EventTag.TWO_FACTOR_DISABLED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"proof": proof.method},
            )
        self.mail.notify_two_factor_disabled(user, context)

    def sign_out(self, *, token: str, context: RequestContext) -> bool:
        """End the session whose cookie is ``token``; False when it was not live."""
        with self.db.transaction() as s:
            record = self.sessions.end(s, token=token)
            if record is None:
                return False
            user = s.get(User, record.user_id)
            if user is None:
                raise RuntimeError("a session without its user (user_id is a foreign key)")
            self.audit.record(
                s,
                EventTag.SIGNED_OUT,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"session_id": record.id},
            )
            return True

    def policy_for(self, user: User) -> Policy:
        return Policy.of(user.practice)
