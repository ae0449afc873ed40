"""Security emails: what changed, when, from which browser and address, and what to do if it was not you.

Every change to how an account signs in is told to its owner by email, so that a
change they did not make is noticed while it can still be undone. Each message has
a text and an HTML part rendered from ``mail_templates/`` (Jinja2, HTML autoescaped).

Notices (``notify_*``) are queued and sent off the request path: call them after
the change has committed. Codes (``send_code``) are tried once at once so the
person waiting can be told when mail is down (see ``Notifier.send_now``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import CursorResult, delete, select

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock, local
from twofold.context import RequestContext
from twofold.core.notifier import Message, Notifier
from twofold.core.user_agents import browser_label
from twofold.store.db import Database
from twofold.store.models import UndeliveredMail, User

TEMPLATES = Path(__file__).parent / "mail_templates"

DEFAULT_ADVICE = (
    "Someone may know your password. Change your password in your security settings now, check your "
    "sign-in methods there, and tell your practice admin: they can reset your two-factor authentication "
    "and check the audit log."
)

CODE_WORDING = {
    # purpose: (subject, intro, warning)
    "sign_in": (
        "Your Twofold sign-in code",
        "Someone signed in to your account with your password and asked for a code by email. Enter this code to finish signing in:",
        "If you are not signing in right now, someone knows your password: do not share this code, change your "
        "password, and tell your practice admin.",
    ),
    "reauth": (
        "Your Twofold confirmation code",
        "You asked for a code to confirm a change to your security settings. Enter this code with your password:",
        "If you did not ask for this code, someone may be signed in as you: change your password and tell your "
        "practice admin.",
    ),
    "confirm_address": (
        "Confirm your email for sign-in codes",
        "You asked to receive sign-in codes by email at this address. Enter this code in your security settings "
        "to confirm it:",
        "If you did not ask for this, someone may be signed in as you: change your password and tell your "
        "practice admin. Your sign-in methods are unchanged until the code is entered.",
    ),
}


def mail_templates() -> Environment:
    """The emails' templates (``mail_templates/``): HTML autoescaped, every name required."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


class Recipient(Protocol):
    id: int
    email: str
    name: str


class _NoticeSpec(Protocol):
    """What a notice template (mail_templates/notices/*.txt) sets: its module's exported names."""

    subject: str
    paragraphs: Iterable[str]
    advice: str


@dataclass(kw_only=True, slots=True)
class SecurityMail:
    """Renders and sends the emails about an account's security."""

    notifier: Notifier
    clock: Clock
    base_url: str
    _env: Environment = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._env = mail_templates()

    @property
    def security_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/account/security"

    # -- codes ---------------------------------------------------------------------

    def code_message(
        self, user: Recipient, *, code: str, purpose: str, minutes: int, context: RequestContext
    ) -> Message:
        subject, intro, warning = CODE_WORDING[purpose]
        values = {
            **self._facts(user, context),
            "subject": subject,
            "intro": intro,
            "warning": warning,
            "code": code,
            "minutes": minutes,
        }
        return Message(
            to=user.email,
            subject=subject,
            text=self._env.get_template("code.txt").render(values),
            html=self._env.get_template("code.html").render(values),
            tags=(f"code:{purpose}",),
            user_id=user.id,
        )

    def send_code(self, user: Recipient, *, code: str, purpose: str, minutes: int, context: RequestContext) -> bool:
        """Send a one-time code now; False when the first try failed (it is then retried in the background)."""
        return self.notifier.send_now(
            self.code_message(user, code=code, purpose=purpose, minutes=minutes, context=context)
        )

    # -- notices ---------------------------------------------------------------------

    def notice(self, kind: str, user: Recipient, context: RequestContext, **facts) -> Message:
        """The rendered notice ``kind`` (a file in mail_templates/notices/) about ``user``."""
        values = {**self._facts(user, context), "default_advice": DEFAULT_ADVICE, "actor": None, **facts}
        # make_module() is typed as a bare TemplateModule; its attributes are the template's ``set`` names.
        spec = cast(_NoticeSpec, self._env.get_template(f"notices/{kind}.txt").make_module(values))
        values.update(subject=spec.subject, paragraphs=list(spec.paragraphs), advice=spec.advice)
        return Message(
            to=user.email,
            subject=spec.subject,
            text=self._env.get_template("notice.txt").render(values),
            html=self._env.get_template("notice.html").render(values),
            tags=(kind,),
            user_id=user.id,
        )

    def _notify(self, kind: str, user: Recipient, context: RequestContext, **facts) -> None:
        self.notifier.send(self.notice(kind, user, context, **facts))

    def notify_two_factor_enabled(self, user: Recipient, context: RequestContext, *, method_label: str) -> None:
        """``method_label`` names the method 2FA was turned on with, as a sentence does (the factor's
        ``described_as``: "an authenticator app")."""
        self._notify("two_factor_enabled", user, context, method_label=method_label)

    def notify_two_factor_disabled(self, user: Recipient, context: RequestContext) -> None:
        self._notify("two_factor_disabled", user, context)

    def notify_recovery_code_used(self, user: Recipient, context: RequestContext, *, codes_left: int) -> None:
        self._notify("recovery_code_used", user, context, codes_left=codes_left)

    def notify_recovery_codes_generated(self, user: Recipient, context: RequestContext) -> None:
        self._notify("recovery_codes_generated", user, context)

    def notify_email_method_added(self, user: Recipient, context: RequestContext) -> None:
        self._notify("email_method_added", user, context, address=user.email)

    def notify_email_method_removed(self, user: Recipient, context: RequestContext) -> None:
        self._notify("email_method_removed", user, context)

    def notify_authenticator_added(self, user: Recipient, context: RequestContext) -> None:
        self._notify("authenticator_added", user, context)

    def notify_authenticator_replaced(self, user: Recipient, context: RequestContext) -> None:
        self._notify("authenticator_replaced", user, context)

    def notify_webauthn_added(self, user: Recipient, context: RequestContext, *, key_name: str) -> None:
        self._notify("webauthn_added", user, context, key_name=key_name)

    def notify_webauthn_removed(self, user: Recipient, context: RequestContext, *, key_name: str) -> None:
        self._notify("webauthn_removed", user, context, key_name=key_name)

    def notify_possible_cloned_key(self, user: Recipient, context: RequestContext, *, key_name: str) -> None:
        """A key's signature counter went back at sign-in (WebAuthn §6.1.1): the sign-in was refused."""
        self._notify("webauthn_possible_clone", user, context, key_name=key_name)

    def notify_password_changed(self, user: Recipient, context: RequestContext) -> None:
        """For the password-change use case: call after the change committed."""
        self._notify("password_changed", user, context)

    def notify_browser_remembered(self, user: Recipient, context: RequestContext, *, days: int) -> None:
        """For the remember-this-browser use case: ``days`` is how long it is remembered."""
        self._notify("browser_remembered", user, context, days=days)

    def notify_sign_in_locked(
        self, user: Recipient, context: RequestContext, *, minutes: int, unlock_path: str
    ) -> None:
        """Sign-in from unknown browsers is paused after wrong passwords; ``unlock_path`` unlocks one browser."""
        self._notify(
            "sign_in_locked", user, context, minutes=minutes, unlock_url=f"{self.base_url.rstrip('/')}{unlock_path}"
        )

    def notify_admin_reset(
        self, user: Recipient, context: RequestContext, *, admin_name: str | None, reason: str | None = None
    ) -> None:
        """For the admin reset: ``user`` is the member reset, ``context`` the admin's request."""
        self._notify("admin_reset", user, context, admin_name=admin_name, actor=admin_name, reason=reason)

    # -- helpers ---------------------------------------------------------------------

    def _facts(self, user: Recipient, context: RequestContext) -> dict:
        practice = getattr(user, "practice", None)
        return {
            "name": user.name,
            "when": format_when(self.clock.now(), getattr(practice, "time_zone", None)),
            "browser": browser_label(context.user_agent),
            "ip": context.ip or "not known",
            "practice": getattr(practice, "name", None) or "your practice",
            "security_url": self.security_url,
        }


def format_when(moment: datetime, time_zone: str | None = None) -> str:
    """'Monday 2 November 2026, 09:00 EST': unambiguous in every locale, in the practice's time zone."""
    shown = local(moment, time_zone)
    return f"{shown:%A} {shown.day} {shown:%B %Y, %H:%M} {shown:%Z}"


@dataclass(kw_only=True, slots=True)
class UndeliveredMailLog:
    """Keeps what could not be delivered, so the member sees it on their Security page.

    Subscribed to the notifier; called on the mail thread once a message is given up on.
    """

    db: Database
    clock: Clock
    audit: AuditLog

    def undelivered(self, message: Message, attempts: int) -> None:
        if message.user_id is None:
            return
        kind = message.tags[0] if message.tags else "message"
        with self.db.transaction() as s:
            user = s.get(User, message.user_id)
            if user is None:
                return
            s.add(
                UndeliveredMail(
                    user_id=user.id,
                    kind=kind[:64],
                    subject=message.subject[:200],
                    failed_at=self.clock.now(),
                    attempts=attempts,
                )
            )
            self.audit.record(
                s,
                EventTag.SECURITY_EMAIL_UNDELIVERED,
                context=RequestContext.system("mail"),
                practice_id=user.practice_id,
                subject_id=user.id,
                details={"kind": kind, "attempts": attempts},
            )

    def recent_for(self, user_id: int, *, limit: int = 5) -> list[UndeliveredMail]:
        """The member's latest undelivered messages, newest first."""
        with self.db.reading() as s:
            return list(
                s.execute(
                    select(UndeliveredMail)
                    .where(UndeliveredMail.user_id == user_id)
                    .order_by(UndeliveredMail.failed_at.desc(), UndeliveredMail.id.desc())
                    .limit(limit)
                ).scalars()
            )

    def dismiss(self, user_id: int) -> int:
        """Forget the member's undelivered-mail notices (they have seen them); return how many."""
        with self.db.transaction() as s:
            result = s.execute(delete(UndeliveredMail).where(UndeliveredMail.user_id == user_id))
            return cast(CursorResult[Any], result).rowcount  # a DELETE's result: a CursorResult
