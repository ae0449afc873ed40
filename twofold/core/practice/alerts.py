"""Admin alerts: a practice's admins hear when a member turns 2FA off, uses a backup code or runs low
on them, is locked out, or has 2FA reset by an admin.

An alert is a row written in the transaction of the event it reports (``raise_alert``, called by
``AuditLog.record`` for audited events and by the backup-code factor where a code is claimed), so a
change that rolls back alerts no one. Each admin chooses per kind: an email as it happens
(the default), one daily digest, or off. Emails as it happens are built in the transaction and
queued once it has committed; the digest (``send_digests``, run by the server's scheduler and by
``twofold alerts digest``) covers the previous day of the practice's calendar and claims a row per
admin and day before sending, so a day is sent at most once.

An alert holds who, what and when, and counts (backup codes left, seconds locked): never a code,
secret or token. The admin who did a reset, and the member the alert is about, are not emailed
about it (they know, and the member has their own security email); everyone sees it on the
Members page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, event, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AlertKind, AuditLog, EventTag
from twofold.clock import Clock, local, zone
from twofold.context import RequestContext
from twofold.core.notifier import Message, Notifier
from twofold.core.retention import PurgeRule
from twofold.core.security_mail import mail_templates
from twofold.errors import InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import Alert, AlertDigest, AlertPreference, User

log = logging.getLogger("twofold.alerts")
_TEMPLATES = mail_templates()

# The same number Account Settings warns its owner at (factors/recovery_codes/factor.py LOW_WATER).
LOW_BACKUP_CODES = 3

KIND_LABELS: dict[str, str] = {
    AlertKind.TWO_FACTOR_DISABLED: "Turned two-factor authentication off",
    AlertKind.BACKUP_CODE_USED: "Used a backup code",
    AlertKind.BACKUP_CODES_LOW: f"Running low on backup codes ({LOW_BACKUP_CODES} or fewer left)",
    AlertKind.LOCKED_OUT: "Locked out after too many wrong tries",
    AlertKind.TWO_FACTOR_RESET: "Two-factor authentication reset by an admin",
}
KINDS: tuple[str, ...] = tuple(KIND_LABELS)

IMMEDIATE, DIGEST, OFF = "immediate", "digest", "off"
DELIVERIES: dict[str, str] = {
    IMMEDIATE: "Email each one as it happens",
    DIGEST: "One email a day (digest)",
    OFF: "Off (Members page only)",
}
DEFAULT_DELIVERY = IMMEDIATE

# What the purge deletes (core/retention.py): alerts dismissed longer ago than the keeping period
# (30 days by default; one never dismissed stays until it is), and the digests' claims of past days.
PURGE_RULES = [
    PurgeRule(
        "dismissed alerts",
        Alert.id,
        lambda now, kept: and_(Alert.acknowledged_at.is_not(None), Alert.acknowledged_at < kept),
    ),
    PurgeRule("alert digest claims", AlertDigest.id, lambda now, kept: AlertDigest.sent_at < kept),
]

RECENT = timedelta(days=7)
MAX_SHOWN = 50
_PENDING = "twofold.admin_alerts"  # Session.info key: the emails to queue once the transaction commits


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert as pages and the API show it."""

    id: int
    kind: str
    subject_id: int
    subject_name: str
    subject_email: str
    actor_name: str | None
    at: datetime
    details: Mapping[str, Any]
    acknowledged_at: datetime | None

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())

    @property
    def summary(self) -> str:
        """What happened in one plain sentence (no name: pages put the member's name first)."""
        left = self.details.get("codes_left")
        if self.kind == AlertKind.BACKUP_CODE_USED:
            return f"Used a backup code ({left} left)." if left is not None else "Used a backup code."
        if self.kind == AlertKind.BACKUP_CODES_LOW:
            return f"Has {left} backup code{'s' if left != 1 else ''} left." if left is not None else self.label
        if self.kind == AlertKind.LOCKED_OUT:
            wait = self.details.get("retry_after")
            minutes = max(1, round(wait / 60)) if isinstance(wait, int) else None
            return f"Locked out after too many wrong tries (for {minutes} min)." if minutes else self.label + "."
        if self.kind == AlertKind.TWO_FACTOR_RESET:
            by = self.actor_name or "the Twofold operator"
            return f"Two-factor authentication reset by {by}."
        return self.label + "."


class AlertNotFound(NotFound):
    code = "alert_not_found"
    message = "No such alert in your practice."


class AlertKindUnknown(InvalidInput):
    code = "unknown_alert_kind"


class AlertDeliveryUnknown(InvalidInput):
    code = "unknown_alert_delivery"


@dataclass(kw_only=True, slots=True)
class AlertRecorder:
    """Raises alerts (the audit log's and the backup-code factor's ``AlertDesk``) and writes their emails."""

    clock: Clock
    notifier: Notifier
    base_url: str

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
        now = self.clock.now()
        alert = Alert(
            practice_id=practice_id,
            kind=str(kind),
            subject_id=subject_id,
            actor_id=actor_id,
            at=now,
            details=dict(details or {}),
        )
        session.add(alert)
        admins = self._emailed_at_once(session, practice_id, str(kind))
        admins = [a for a in admins if a.id not in (subject_id, actor_id)]
        if not admins:
            return
        subject = session.get(User, subject_id)
        if subject is None:
            return
        actor = session.get(User, actor_id) if actor_id is not None else None
        view = _view(alert, subject, actor, at=now, alert_id=0)
        pending = self._pending(session)
        practice = subject.practice
        for admin in admins:
            pending.setdefault((admin.email, admin.name, practice.name, practice.time_zone), []).append(view)

    def _pending(self, session: Session) -> dict[tuple[str, str, str, str], list[AlertView]]:
        pending = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = {}
            event.listen(session, "after_commit", partial(self._send_pending, pending))
            event.listen(session, "after_rollback", lambda _session: pending.clear())
        return pending

    def _send_pending(self, pending: dict[tuple[str, str, str, str], list[AlertView]], _session: Session) -> None:
        """After the commit: one email per admin with every alert of the transaction (a backup code used
        and running low arrive together)."""
        for (email, name, practice, time_zone), views in pending.items():
            self.notifier.send(self.message(to=email, name=name, practice=practice, time_zone=time_zone, views=views))
        pending.clear()

    # -- the email -----------------------------------------------------------------------------

    def message(
        self,
        *,
        to: str,
        name: str,
        practice: str,
        time_zone: str,
        views: list[AlertView],
        digest_day: date | None = None,
    ) -> Message:
        base = self.base_url.rstrip("/")
        if digest_day is not None:
            subject = f"Twofold daily alerts: {len(views)} on {digest_day:%d %b %Y}"
            opening = f"What happened to members of {practice} on {digest_day:%A %d %B %Y}:"
        elif len(views) == 1:
            subject = f"Twofold alert: {views[0].subject_name} - {views[0].label.lower()}"
            opening = f"Something happened to a member of {practice} that you asked to hear about:"
        else:
            subject = f"Twofold alerts: {views[0].subject_name}"
            opening = f"Things happened to a member of {practice} that you asked to hear about:"
        items = [
            {
                "when": f"{local(view.at, time_zone):%d %b %Y, %H:%M %Z}",
                "name": view.subject_name,
                "email": view.subject_email,
                "summary": view.summary,
                "link": f"{base}/admin/members/{view.subject_id}",
            }
            for view in views
        ]
        values = {
            "subject": subject,
            "name": name,
            "opening": opening,
            "items": items,
            "practice": practice,
            "settings_url": f"{base}/admin/alerts",
        }
        return Message(
            to=to,
            subject=subject,
            text=_TEMPLATES.get_template("alert.txt").render(values),
            html=_TEMPLATES.get_template("alert.html").render(values),
            tags=("admin_alert_digest" if digest_day else "admin_alert",),
        )

    # -- helpers -------------------------------------------------------------------------------

    def _emailed_at_once(self, s: Session, practice_id: int, kind: str) -> list[User]:
        """The practice's active admins who get ``kind`` as it happens (chosen, or by default)."""
        chosen = select(AlertPreference.delivery).where(
            AlertPreference.user_id == User.id, AlertPreference.kind == kind
        )
        wanted = or_(chosen.scalar_subquery() == IMMEDIATE, ~chosen.exists())
        return list(
            s.scalars(
                select(User).where(User.practice_id == practice_id, User.role == "admin", User.active.is_(True), wanted)
            ).all()
        )


@dataclass(kw_only=True, slots=True)
class AdminAlerts:
    """The admins' side: the recent alerts, dismissing one, each admin's choices, the daily digest."""

    db: Database
    clock: Clock
    audit: AuditLog
    recorder: AlertRecorder

    # -- reading and acknowledging -------------------------------------------------------------

    def recent(self, *, practice_id: int) -> list[AlertView]:
        """The practice's alerts of the last 7 days and any older ones not yet dismissed, newest first."""
        since = self.clock.now() - RECENT
        with self.db.reading() as s:
            rows = s.scalars(
                select(Alert)
                .where(Alert.practice_id == practice_id, or_(Alert.at >= since, Alert.acknowledged_at.is_(None)))
                .order_by(Alert.at.desc(), Alert.id.desc())
                .limit(MAX_SHOWN)
            ).all()
            people = _people(s, {r.subject_id for r in rows} | {r.actor_id for r in rows if r.actor_id})
        return [_view(r, people[r.subject_id], people.get(r.actor_id) if r.actor_id else None) for r in rows]

    def acknowledge(self, *, practice_id: int, actor_id: int, alert_id: int, context: RequestContext) -> None:
        """Dismiss an alert for every admin of the practice. Another practice's alert is ``NotFound``;
        dismissing one again changes nothing."""
        with self.db.transaction() as s:
            alert = s.execute(
                select(Alert).where(Alert.id == alert_id, Alert.practice_id == practice_id)
            ).scalar_one_or_none()
            if alert is None:
                raise AlertNotFound()
            if alert.acknowledged_at is not None:
                return
            alert.acknowledged_at, alert.acknowledged_by_id = self.clock.now(), actor_id
            self.audit.record(
                s,
                EventTag.ALERT_ACKNOWLEDGED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                subject_id=alert.subject_id,
                details={"alert": alert.kind},
            )

    # -- each admin's choices ------------------------------------------------------------------

    def preferences(self, *, user_id: int) -> dict[str, str]:
        """How this admin gets each kind of alert (every kind named; the default where unchosen)."""
        with self.db.reading() as s:
            chosen = dict(
                s.execute(
                    select(AlertPreference.kind, AlertPreference.delivery).where(AlertPreference.user_id == user_id)
                ).all()
            )
        return {kind: chosen.get(kind, DEFAULT_DELIVERY) for kind in KINDS}

    def set_preferences(
        self, *, practice_id: int, user_id: int, changes: Mapping[str, str], context: RequestContext
    ) -> dict[str, str]:
        """Set how this admin gets the kinds in ``changes`` (others keep theirs); every kind's choice after.

        Raises ``AlertKindUnknown`` or ``AlertDeliveryUnknown`` (422) and changes nothing on bad input.
        """
        for kind, delivery in changes.items():
            if kind not in KINDS:
                raise AlertKindUnknown(f"{kind!r} is not a kind of alert (use {', '.join(KINDS)}).")
            if delivery not in DELIVERIES:
                raise AlertDeliveryUnknown(
                    f"{kind}: {delivery!r} is not a way to get alerts (use {', '.join(DELIVERIES)})."
                )
        now = self.clock.now()
        with self.db.transaction() as s:
            rows = {
                row.kind: row
                for row in s.scalars(select(AlertPreference).where(AlertPreference.user_id == user_id)).all()
            }
            changed = {}
            for kind, delivery in changes.items():
                row = rows.get(kind)
                if (row.delivery if row else DEFAULT_DELIVERY) == delivery:
                    continue
                if row is None:
                    s.add(AlertPreference(user_id=user_id, kind=kind, delivery=delivery, updated_at=now))
                else:
                    row.delivery, row.updated_at = delivery, now
                changed[kind] = delivery
            if changed:
                self.audit.record(
                    s,
                    EventTag.ALERT_PREFERENCES_CHANGED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=user_id,
                    subject_id=user_id,
                    details={"changed": changed},
                )
        return self.preferences(user_id=user_id)

    # -- the daily digest ----------------------------------------------------------------------

    def send_digests(self) -> int:
        """Email each admin who chose a digest for any kind the previous day's alerts of those kinds,
        that day being the practice's calendar day; the number of emails queued.

        Each admin and day is claimed by one row (unique per admin and day) in the same transaction
        that reads the alerts: a second run the same day, or another process at the same moment,
        sends nothing again. A day without alerts is claimed and sends nothing.
        """
        now = self.clock.now()
        with self.db.reading() as s:
            admins = s.scalars(
                select(User)
                .where(
                    User.role == "admin",
                    User.active.is_(True),
                    User.id.in_(select(AlertPreference.user_id).where(AlertPreference.delivery == DIGEST)),
                )
                .order_by(User.id)
            ).all()
            wanted = [(admin.id, admin.practice_id, admin.practice.time_zone or "UTC") for admin in admins]
        sent = 0
        for user_id, practice_id, time_zone in wanted:
            day = local(now, time_zone).date() - timedelta(days=1)
            try:
                sent += self._send_digest(user_id=user_id, practice_id=practice_id, time_zone=time_zone, day=day)
            except IntegrityError:
                log.info("alert digest already sent by another process")
        if sent:
            log.info("alert digests sent: %d", sent)
        return sent

    def _send_digest(self, *, user_id: int, practice_id: int, time_zone: str, day: date) -> int:
        start = datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(time_zone)).astimezone(UTC)
        message = None
        with self.db.transaction() as s:
            claimed = s.execute(
                select(AlertDigest.id).where(AlertDigest.user_id == user_id, AlertDigest.day == day.isoformat())
            ).first()
            if claimed is not None:
                return 0
            admin = s.get(User, user_id)
            if admin is None:
                return 0
            kinds = s.scalars(
                select(AlertPreference.kind).where(
                    AlertPreference.user_id == user_id, AlertPreference.delivery == DIGEST
                )
            ).all()
            rows = s.scalars(
                select(Alert)
                .where(
                    Alert.practice_id == practice_id,
                    Alert.kind.in_(kinds),
                    Alert.at >= start,
                    Alert.at < end,
                    Alert.subject_id != user_id,
                    or_(Alert.actor_id.is_(None), Alert.actor_id != user_id),
                )
                .order_by(Alert.at, Alert.id)
            ).all()
            s.add(AlertDigest(user_id=user_id, day=day.isoformat(), alerts=len(rows), sent_at=self.clock.now()))
            s.flush()  # the unique (admin, day) claim is taken here, before any email is built
            if rows:
                people = _people(s, {r.subject_id for r in rows} | {r.actor_id for r in rows if r.actor_id})
                views = [_view(r, people[r.subject_id], people.get(r.actor_id) if r.actor_id else None) for r in rows]
                message = self.recorder.message(
                    to=admin.email,
                    name=admin.name,
                    practice=admin.practice.name,
                    time_zone=time_zone,
                    views=views,
                    digest_day=day,
                )
        if message is None:
            return 0
        self.recorder.notifier.send(message)
        return 1


def _people(s: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {user.id: user for user in s.scalars(select(User).where(User.id.in_(ids))).all()}


def _view(alert: Alert, subject: User, actor: User | None, *, at: datetime | None = None, alert_id: int | None = None):
    return AlertView(
        id=alert.id if alert_id is None else alert_id,
        kind=alert.kind,
        subject_id=subject.id,
        subject_name=subject.name,
        subject_email=subject.email,
        actor_name=actor.name if actor else None,
        at=at or alert.at,
        details=dict(alert.details or {}),
        acknowledged_at=alert.acknowledged_at,
    )


__all__ = [
    "DELIVERIES",
    "KINDS",
    "KIND_LABELS",
    "LOW_BACKUP_CODES",
    "PURGE_RULES",
    "AdminAlerts",
    "AlertDeliveryUnknown",
    "AlertKindUnknown",
    "AlertNotFound",
    "AlertRecorder",
    "AlertView",
]
