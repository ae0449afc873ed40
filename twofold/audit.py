"""The audit log: append-only, hash-chained per practice, written in the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.store.models import AuditChainHead, AuditEvent
from twofold.store.prepared import Prepared

GENESIS = "0" * 64

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
    WEBAUTHN_ADDED = "account:webauthn:added"
    WEBAUTHN_ADD_FAILED = "account:webauthn:add_failed"
    WEBAUTHN_RENAMED = "account:webauthn:renamed"
    WEBAUTHN_REMOVED = "account:webauthn:removed"
    WEBAUTHN_POSSIBLE_CLONE = "account:webauthn:possible_clone"
    PASSKEY_SIGN_IN_FAILED = "account:sign_in:passkey_failed"


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


_HASHED = ("chain", "seq", "practice_id", "at", "event", "actor_id", "subject_id", "ip", "user_agent", "details")


def _hashed_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields = {name: values[name] for name in _HASHED}
    fields["at"] = fields["at"].isoformat()
    fields["details"] = fields["details"] or {}
    return fields


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """What the hash covers: every column but the id and the hashes themselves."""
    return _hashed_fields({name: getattr(event, name) for name in _HASHED})


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    return _digest(prev_hash, event_fields(event))


@dataclass(kw_only=True, slots=True)
class AuditLog:
    clock: Clock

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
        row["hash"] = _digest(prev_hash, _hashed_fields(row))
        _INSERT_EVENT.execute(session, row)
        _UPDATE_HEAD.execute(session, {"head_chain": chain, "seq": row["seq"], "hash": row["hash"]})

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
            row.hash = prev_hash = event_hash(prev_hash, row)
            rows.append(row)
        session.add_all(rows)
        head.seq, head.hash = seq, prev_hash
        return len(rows)
