"""The audit log: append-only, hash-chained per practice, written in the caller's transaction.

Each event's ``hash`` is a keyed link (HMAC-SHA256 under a key derived from the secret key,
see twofold/crypto/chain.py) over the event before it and every column of this one, so a
copy of the database and write access to it are not enough to rewrite a chain unseen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto.chain import GENESIS, ChainKeys
from twofold.store.models import AuditChainHead, AuditEvent
from twofold.store.prepared import Prepared

__all__ = ["GENESIS", "AlertDesk", "AlertKind", "AuditLog", "EventTag", "NoAlerts", "event_fields"]

_HEADS = cast(Table, AuditChainHead.__table__)
# The statements of record(), which every sign-in runs; see twofold/store/prepared.py.
_SELECT_HEAD = Prepared(
    select(_HEADS.c.seq, _HEADS.c.hash).where(_HEADS.c.chain == bindparam("head_chain")).with_for_update()
)
_INSERT_HEAD = Prepared(insert(_HEADS))
_UPDATE_HEAD = Prepared(update(_HEADS).where(_HEADS.c.chain == bindparam("head_chain")))
_INSERT_EVENT = Prepared(insert(cast(Table, AuditEvent.__table__)))


class EventTag(StrEnum):
    """Stable, namespaced event names (documented in docs/audit-events.md)."""

    SIGN_IN_SUCCEEDED = "account:sign_in:succeeded"
    SIGN_IN_PASSWORD_FAILED = "account:sign_in:password_failed"
    SIGN_IN_SECOND_FACTOR_REQUIRED = "account:sign_in:second_factor_required"
    SIGN_IN_CODE_FAILED = "account:sign_in:code_failed"
    SIGN_IN_THROTTLED = "account:sign_in:throttled"
    SIGN_IN_CODE_SENT = "account:sign_in:code_sent"
    SIGN_IN_CODE_SEND_LIMITED = "account:sign_in:code_send_limited"
    LOCKED_OUT = "account:sign_in:locked_out"
    SIGN_IN_UNLOCKED = "account:sign_in:unlocked"
    SIGNED_OUT = "account:sign_out"
    PASSWORD_REHASHED = "account:password:rehashed"
    PASSWORD_CHANGED = "account:password:changed"
    TOTP_ENROLLMENT_STARTED = "account:two_factor:totp_enrollment_started"
    TOTP_ENROLLMENT_FAILED = "account:two_factor:totp_enrollment_failed"
    TWO_FACTOR_ENABLED = "account:two_factor:enabled"
    TWO_FACTOR_DISABLED = "account:two_factor:disabled"
    TWO_FACTOR_DISABLE_FAILED = "account:two_factor:disable_failed"
    TOTP_REPLACEMENT_STARTED = "account:two_factor:totp_replacement_started"
    TOTP_ADDED = "account:two_factor:totp_added"
    TOTP_REPLACED = "account:two_factor:totp_replaced"
    REAUTHENTICATION_FAILED = "account:reauthentication:failed"
    RECOVERY_CODES_GENERATED = "account:recovery_codes:generated"
    EMAIL_CODE_SENT = "account:email_code:sent"
    EMAIL_CODE_SEND_LIMITED = "account:email_code:send_limited"
    EMAIL_METHOD_ADDED = "account:email_method:added"
    EMAIL_METHOD_CONFIRM_FAILED = "account:email_method:confirm_failed"
    EMAIL_METHOD_REMOVED = "account:email_method:removed"
    SECURITY_EMAIL_UNDELIVERED = "account:security_email:undelivered"
    SESSION_EXPIRED = "account:session:expired"
    SESSION_REVOKED = "account:session:revoked"
    PASSWORD_CHANGE_FAILED = "account:password:change_failed"
    REMEMBERED_BROWSER_GRANTED = "account:remembered_browser:granted"
    REMEMBERED_BROWSER_USED = "account:remembered_browser:used"
    REMEMBERED_BROWSER_EXPIRED = "account:remembered_browser:expired"
    REMEMBERED_BROWSER_REVOKED = "account:remembered_browser:revoked"
    REMEMBERED_BROWSER_REJECTED = "account:remembered_browser:rejected"
    PRACTICE_CREATED = "practice:created"
    MEMBER_ADDED = "practice:member:added"
    MEMBERS_IMPORTED = "practice:members:imported"
    MEMBERS_EXPORTED = "practice:members:exported"
    MEMBER_ROLE_CHANGED = "practice:member:role_changed"
    MEMBER_DEACTIVATED = "practice:member:deactivated"
    MEMBER_REACTIVATED = "practice:member:reactivated"
    MEMBER_UNLOCKED = "practice:member:unlocked"
    MEMBER_MOVED_IN = "practice:member:moved_in"
    MEMBER_MOVED_OUT = "practice:member:moved_out"
    MEMBER_MOVE_REFUSED = "practice:member:move_refused"
    SETUP_LINK_SENT = "practice:member:setup_link_sent"
    SETUP_LINK_REFUSED = "practice:member:setup_link_refused"
    SETUP_LINK_USED = "practice:member:setup_link_used"
    PASSWORD_SET = "account:password:set"
    TWO_FACTOR_SET_UP_BY_ADMIN = "practice:member:two_factor_set_up"
    TWO_FACTOR_RESET = "practice:member:two_factor_reset"
    TWO_FACTOR_RESET_FAILED = "practice:member:two_factor_reset_failed"
    TWO_FACTOR_ENROLMENT_SKIPPED = "account:two_factor:enrolment_skipped"
    POLICY_CHANGED = "practice:policy:changed"
    AUDIT_EXPORTED = "practice:audit:exported"
    REPORT_EXPORTED = "practice:report:exported"
    OIDC_CLIENT_REGISTERED = "practice:app:oidc_client_registered"
    OIDC_CLIENT_SECRET_ROTATED = "practice:app:oidc_client_secret_rotated"
    OIDC_CLIENT_CHANGED = "practice:app:oidc_client_changed"
    OIDC_LOGOUT_UNDELIVERED = "practice:app:backchannel_logout_undelivered"
    OIDC_SIGNED_IN = "account:oidc:signed_in"
    OIDC_ACCESS_DENIED = "account:oidc:access_denied"
    OIDC_TOKEN_REPLAYED = "account:oidc:token_replayed"
    OIDC_SIGNING_KEY_ROTATED = "oidc:signing_key:rotated"
    APP_ADDED = "practice:app:added"
    APP_CHANGED = "practice:app:changed"
    APP_REMOVED = "practice:app:removed"
    APP_ACCESSED = "account:app:accessed"
    APP_ACCESS_DENIED = "account:app:access_denied"
    WEBAUTHN_ADDED = "account:webauthn:added"
    WEBAUTHN_ADD_FAILED = "account:webauthn:add_failed"
    WEBAUTHN_RENAMED = "account:webauthn:renamed"
    WEBAUTHN_REMOVED = "account:webauthn:removed"
    WEBAUTHN_POSSIBLE_CLONE = "account:webauthn:possible_clone"
    PASSKEY_SIGN_IN_FAILED = "account:sign_in:passkey_failed"
    SIGN_IN_WORKSTATION_REFUSED = "account:sign_in:workstation_refused"
    WORKSTATION_MARKED = "practice:workstation:marked"
    WORKSTATION_RENAMED = "practice:workstation:renamed"
    WORKSTATION_UNMARKED = "practice:workstation:unmarked"
    ALERT_PREFERENCES_CHANGED = "practice:alerts:preferences_changed"
    ALERT_ACKNOWLEDGED = "practice:alert:acknowledged"


# What the admin pages show for each event: the one list of human labels (the audit log, a member's
# recent activity, the search). Plain words an admin reads; the names above stay for integrators.
EVENT_LABELS: dict[str, str] = {
    EventTag.SIGN_IN_SUCCEEDED: "Signed in",
    EventTag.SIGN_IN_PASSWORD_FAILED: "Sign-in refused: wrong password",
    EventTag.SIGN_IN_SECOND_FACTOR_REQUIRED: "Password accepted, code asked for",
    EventTag.SIGN_IN_CODE_FAILED: "Sign-in refused: wrong code",
    EventTag.SIGN_IN_THROTTLED: "Sign-in refused: too many tries, waiting",
    EventTag.SIGN_IN_CODE_SENT: "Sign-in code emailed",
    EventTag.SIGN_IN_CODE_SEND_LIMITED: "Sign-in code not emailed: too many asked for",
    EventTag.LOCKED_OUT: "Locked out after too many wrong tries",
    EventTag.SIGNED_OUT: "Signed out",
    EventTag.PASSWORD_REHASHED: "Password storage upgraded",
    EventTag.PASSWORD_CHANGED: "Password changed",
    EventTag.TOTP_ENROLLMENT_STARTED: "Authenticator app set-up started",
    EventTag.TOTP_ENROLLMENT_FAILED: "Authenticator app set-up: wrong code",
    EventTag.TWO_FACTOR_ENABLED: "Two-factor authentication turned on",
    EventTag.TWO_FACTOR_DISABLED: "Two-factor authentication turned off",
    EventTag.TWO_FACTOR_DISABLE_FAILED: "Turning off two-factor authentication refused",
    EventTag.TOTP_REPLACEMENT_STARTED: "Authenticator app replacement started",
    EventTag.TOTP_ADDED: "Authenticator app added",
    EventTag.TOTP_REPLACED: "Authenticator app replaced",
    EventTag.REAUTHENTICATION_FAILED: "Confirming identity refused (password or code)",
    EventTag.RECOVERY_CODES_GENERATED: "New backup codes made",
    EventTag.EMAIL_CODE_SENT: "Code emailed to confirm a change",
    EventTag.EMAIL_CODE_SEND_LIMITED: "Code not emailed: too many asked for",
    EventTag.EMAIL_METHOD_ADDED: "Email codes added",
    EventTag.EMAIL_METHOD_CONFIRM_FAILED: "Adding email codes: wrong code",
    EventTag.EMAIL_METHOD_REMOVED: "Email codes removed",
    EventTag.SECURITY_EMAIL_UNDELIVERED: "Security email could not be delivered",
    EventTag.SESSION_EXPIRED: "Signed out after inactivity or the time limit",
    EventTag.SESSION_REVOKED: "Session signed out",
    EventTag.PASSWORD_CHANGE_FAILED: "Password change refused",
    EventTag.REMEMBERED_BROWSER_GRANTED: "Browser remembered",
    EventTag.REMEMBERED_BROWSER_USED: "Signed in on a remembered browser",
    EventTag.REMEMBERED_BROWSER_EXPIRED: "Remembered browser expired",
    EventTag.REMEMBERED_BROWSER_REVOKED: "Remembered browser forgotten",
    EventTag.REMEMBERED_BROWSER_REJECTED: "Remembered browser not accepted",
    EventTag.PRACTICE_CREATED: "Practice created",
    EventTag.MEMBER_ADDED: "Member added",
    EventTag.MEMBERS_IMPORTED: "Members imported",
    EventTag.MEMBERS_EXPORTED: "Members exported",
    EventTag.MEMBER_ROLE_CHANGED: "Member's role changed",
    EventTag.MEMBER_DEACTIVATED: "Member deactivated",
    EventTag.MEMBER_REACTIVATED: "Member reactivated",
    EventTag.SETUP_LINK_SENT: "Set-up link sent",
    EventTag.SETUP_LINK_REFUSED: "Set-up link refused (used, expired or replaced)",
    EventTag.SETUP_LINK_USED: "Set-up link used",
    EventTag.PASSWORD_SET: "Password chosen",
    EventTag.TWO_FACTOR_SET_UP_BY_ADMIN: "Two-factor authentication set up by an admin",
    EventTag.TWO_FACTOR_RESET: "Two-factor authentication reset by an admin",
    EventTag.TWO_FACTOR_RESET_FAILED: "Two-factor reset refused",
    EventTag.TWO_FACTOR_ENROLMENT_SKIPPED: "Two-factor set-up skipped (grace period)",
    EventTag.POLICY_CHANGED: "Security policy changed",
    EventTag.AUDIT_EXPORTED: "Audit log exported",
    EventTag.REPORT_EXPORTED: "Compliance report downloaded",
    EventTag.SIGN_IN_UNLOCKED: "Unlocked from the emailed link",
    EventTag.MEMBER_UNLOCKED: "Member unlocked by an admin",
    EventTag.MEMBER_MOVED_IN: "Member joined from another practice (accepted an invitation)",
    EventTag.MEMBER_MOVED_OUT: "Member moved to another practice (accepted its invitation)",
    EventTag.MEMBER_MOVE_REFUSED: "Move to another practice refused (last admin)",
    EventTag.OIDC_CLIENT_REGISTERED: "App connected for OpenID Connect sign-in",
    EventTag.OIDC_CLIENT_SECRET_ROTATED: "App's client secret replaced",
    EventTag.OIDC_CLIENT_CHANGED: "App's sign-in addresses changed",
    EventTag.OIDC_LOGOUT_UNDELIVERED: "App not reached to sign a member out (back-channel logout)",
    EventTag.OIDC_SIGNED_IN: "Signed in to an app (OpenID Connect)",
    EventTag.OIDC_ACCESS_DENIED: "App sign-in refused (OpenID Connect)",
    EventTag.OIDC_TOKEN_REPLAYED: "App token reused: its tokens revoked",
    EventTag.OIDC_SIGNING_KEY_ROTATED: "OpenID Connect signing key replaced",
    EventTag.APP_ADDED: "App added",
    EventTag.APP_CHANGED: "App changed",
    EventTag.APP_REMOVED: "App removed",
    EventTag.APP_ACCESSED: "Opened an app",
    EventTag.APP_ACCESS_DENIED: "App access refused",
    EventTag.WEBAUTHN_ADDED: "Security key or passkey added",
    EventTag.WEBAUTHN_ADD_FAILED: "Adding a security key or passkey failed",
    EventTag.WEBAUTHN_RENAMED: "Security key or passkey renamed",
    EventTag.WEBAUTHN_REMOVED: "Security key or passkey removed",
    EventTag.WEBAUTHN_POSSIBLE_CLONE: "Security key refused: possibly copied",
    EventTag.PASSKEY_SIGN_IN_FAILED: "Passkey sign-in refused",
    EventTag.SIGN_IN_WORKSTATION_REFUSED: "Sign-in refused: another practice's shared workstation",
    EventTag.WORKSTATION_MARKED: "Browser marked as a shared workstation",
    EventTag.WORKSTATION_RENAMED: "Shared workstation renamed",
    EventTag.WORKSTATION_UNMARKED: "Shared workstation unmarked",
    EventTag.ALERT_PREFERENCES_CHANGED: "Alert choices changed",
    EventTag.ALERT_ACKNOWLEDGED: "Alert dismissed",
}


class AlertKind(StrEnum):
    """What a practice's admins can be alerted about (core/practice/alerts.py); stable API names."""

    TWO_FACTOR_DISABLED = "two_factor_disabled"
    BACKUP_CODE_USED = "backup_code_used"
    BACKUP_CODES_LOW = "backup_codes_low"
    LOCKED_OUT = "locked_out"
    TWO_FACTOR_RESET = "two_factor_reset"


# The audited events that alert a practice's admins. Raised from ``AuditLog.record``, so every path
# that records one (each place a lockout starts, say) alerts the same way, in the same transaction.
# Backup codes are not audited on their own: their factor raises those alerts where a code is claimed.
ALERTING_EVENTS: dict[str, AlertKind] = {
    EventTag.TWO_FACTOR_DISABLED: AlertKind.TWO_FACTOR_DISABLED,
    EventTag.LOCKED_OUT: AlertKind.LOCKED_OUT,
    EventTag.TWO_FACTOR_RESET: AlertKind.TWO_FACTOR_RESET,
}


class AlertDesk(Protocol):
    def raise_alert(
        self,
        session: Session,
        *,
        kind: AlertKind,
        practice_id: int,
        subject_id: int,
        actor_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an alert about member ``subject_id`` for their practice's admins, in ``session``'s
        transaction; the admins who want it at once are emailed once that transaction has committed.
        ``details`` holds counts only, never a code, secret or token."""


class NoAlerts:
    """No one is alerted (tools and tests that build an ``AuditLog`` alone)."""

    def raise_alert(
        self,
        session: Session,
        *,
        kind: AlertKind,
        practice_id: int,
        subject_id: int,
        actor_id: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        return None


def event_label(name: str) -> str:
    """An event's label for people; a name without one (from a newer or older version) in plain words."""
    label = EVENT_LABELS.get(name)
    if label is not None:
        return label
    words = name.split(":", 1)[-1].replace(":", " ").replace("_", " ")
    return words[:1].upper() + words[1:]


def events_labelled(text: str) -> list[str]:
    """The names of the events whose label contains ``text`` (any case): the audit log's search by label."""
    wanted = " ".join(text.lower().split())
    return [str(name) for name, label in EVENT_LABELS.items() if wanted and wanted in label.lower()]


_HASHED = ("chain", "seq", "practice_id", "at", "event", "actor_id", "subject_id", "ip", "user_agent", "details")


def _hashed_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields = {name: values[name] for name in _HASHED}
    fields["at"] = fields["at"].isoformat()
    fields["details"] = fields["details"] or {}
    return fields


def event_fields(event: AuditEvent | Row[Any]) -> dict[str, Any]:
    """What the hash covers: every column but the id and the hashes themselves."""
    return _hashed_fields({name: getattr(event, name) for name in _HASHED})


@dataclass(kw_only=True, slots=True)
class AuditLog:
    clock: Clock
    keys: ChainKeys
    alerts: AlertDesk = field(default_factory=NoAlerts)

    def link_of(self, prev_hash: str, event: AuditEvent) -> str:
        """The link ``event`` gets after ``prev_hash`` under the current key."""
        return self.keys.link(prev_hash, event_fields(event))

    def links(self, prev_hash: str, event: AuditEvent | Row[Any]) -> bool:
        """Whether ``event.hash`` is its link after ``prev_hash`` (under the current or an earlier key)."""
        return self.keys.holds(prev_hash, event_fields(event), event.hash)

    def record(
        self,
        session: Session,
        event: EventTag | str,
        *,
        context: RequestContext,
        practice_id: int | None,
        actor_id: int | None = None,
        subject_id: int | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append one event to its practice's chain, in ``session``'s transaction.

        The chain head row is locked (FOR UPDATE on PostgreSQL; SQLite's writing
        transactions are already exclusive) so concurrent appends cannot fork it.
        Never put a code, secret, token or password in ``details``.
        """
        chain = practice_id or 0
        # Plain SQL in the session's transaction: the hot paths write an event on every
        # sign-in, and this skips the ORM's flush of unrelated pending changes here
        # (they are flushed once, at commit).
        head = _SELECT_HEAD.execute(session, {"head_chain": chain}).one_or_none()
        if head is None:
            _INSERT_HEAD.execute(session, {"chain": chain, "seq": 0, "hash": GENESIS})
            prev_seq, prev_hash = 0, GENESIS
        else:
            prev_seq, prev_hash = head
        row = {
            "chain": chain,
            "seq": prev_seq + 1,
            "practice_id": practice_id,
            "at": at or self.clock.now(),
            "event": str(event),
            "actor_id": actor_id,
            "subject_id": subject_id,
            "ip": context.ip or None,
            "user_agent": (context.user_agent or "")[:512] or None,
            "details": details or {},
            "prev_hash": prev_hash,
        }
        row["hash"] = self.keys.link(prev_hash, _hashed_fields(row))
        _INSERT_EVENT.execute(session, row)
        _UPDATE_HEAD.execute(session, {"head_chain": chain, "seq": row["seq"], "hash": row["hash"]})
        kind = ALERTING_EVENTS.get(str(event))
        if kind is not None and practice_id is not None and subject_id is not None:
            self.alerts.raise_alert(
                session,
                kind=kind,
                practice_id=practice_id,
                subject_id=subject_id,
                actor_id=actor_id,
                details={"retry_after": details["retry_after"]} if details and "retry_after" in details else None,
            )

    def record_lockout(
        self,
        session: Session,
        *,
        wait: int,
        step: str,
        context: RequestContext,
        practice_id: int | None,
        subject_id: int | None,
    ) -> None:
        """Record a lockout when the failure just counted started a wait (``wait`` > 0); nothing otherwise.

        Every step that counts guesses (password, code, app set-up, re-authentication) audits the
        moment it locks an account the same way, so the log reads one event name for all of them.
        """
        if wait:
            self.record(
                session,
                EventTag.LOCKED_OUT,
                context=context,
                practice_id=practice_id,
                subject_id=subject_id,
                details={"step": step, "retry_after": wait},
            )

    def record_many(
        self,
        session: Session,
        entries: Iterable[tuple[EventTag | str, int | None, dict[str, Any] | None]],
        *,
        context: RequestContext,
        practice_id: int | None,
        actor_id: int | None = None,
    ) -> int:
        """Append several events of one practice, ``(event, subject_id, details)`` each, under one
        lock of the chain head: bulk work (a CSV import) writes them in one statement, not three per event.
        """
        chain = practice_id or 0
        head = session.execute(
            select(AuditChainHead).where(AuditChainHead.chain == chain).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditChainHead(chain=chain, seq=0, hash=GENESIS)
            session.add(head)
        seq, prev_hash, at = head.seq, head.hash, self.clock.now()
        rows = []
        for event, subject_id, details in entries:
            seq += 1
            row = AuditEvent(
                chain=chain,
                seq=seq,
                practice_id=practice_id,
                at=at,
                event=str(event),
                actor_id=actor_id,
                subject_id=subject_id,
                ip=(context.ip or None),
                user_agent=(context.user_agent or "")[:512] or None,
                details=details or {},
                prev_hash=prev_hash,
            )
            row.hash = prev_hash = self.link_of(prev_hash, row)
            rows.append(row)
        session.add_all(rows)
        head.seq, head.hash = seq, prev_hash
        return len(rows)
