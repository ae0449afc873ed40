"""The compliance report: how far a practice's members use 2FA, and what happened in a period.

For an auditor or the practice's own review. It shows, for the active members: how many of
each role have 2FA on (any method of the factor registry), the members per method, who is
past their deadline without it (the same rule as the gate in enforcement.py), how often 2FA
was reset, turned off or locked out in the period (counted from the audit log), and whether
the practice's audit chain verifies (audit_log.py's ``verify``).

A period is two calendar days in the practice's time zone, both included. Every figure is
one aggregate query (the overdue list reads only the members a requirement covers and who
lack a method), so the report costs the same for ten members as for ten thousand, apart
from the chain walk, which reads every event once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import String, and_, case, false, func, literal, or_, select, union, union_all

from twofold.audit import AuditLog, EventTag, event_label
from twofold.clock import Clock, local, zone
from twofold.context import RequestContext
from twofold.core.csv_stream import csv_line
from twofold.core.policy import Policy
from twofold.core.practice.audit_log import AuditTrail, ChainReport, describe_break
from twofold.core.practice.enforcement import enrolment_due_at
from twofold.errors import InvalidInput, NotFound
from twofold.factors.base import FactorRegistry
from twofold.store.db import Database
from twofold.store.models import ROLES, AuditEvent, EnrolmentDemand, Practice, User

DEFAULT_DAYS = 30
# A year (a leap one too): an annual review fits, and one request never counts a decade of events.
MAX_DAYS = 366
_FIRST_DAY, _LAST_DAY = date(2000, 1, 1), date(9998, 12, 31)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# The events the report counts in its period, in the order it shows them.
COUNTED_EVENTS = (
    EventTag.TWO_FACTOR_ENABLED,
    EventTag.TWO_FACTOR_DISABLED,
    EventTag.TWO_FACTOR_RESET,
    EventTag.LOCKED_OUT,
    EventTag.MEMBER_UNLOCKED,
    EventTag.TWO_FACTOR_ENROLMENT_SKIPPED,
)

CSV_COLUMNS = ("section", "item", "count", "of", "percent", "detail")


class ReportDateInvalid(InvalidInput):
    """A period's date that cannot be used; ``field`` is ``from`` or ``to`` (the page marks that field)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """Calendar days ``first`` to ``last`` (both included) in ``time_zone``; ``start``/``end`` in UTC (end excluded)."""

    first: date
    last: date
    time_zone: str
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @classmethod
    def of(cls, first_text: str | None, last_text: str | None, *, now: datetime, time_zone: str) -> ReportPeriod:
        """The period from two ``YYYY-MM-DD`` texts (either may be empty); the last 30 days to today by default.

        Raises ``ReportDateInvalid`` for a date that is not one, ``from`` after ``to``, or a span over ``MAX_DAYS``.
        """
        today = local(now, time_zone).date()
        last = _day("to", last_text) or today
        first = _day("from", first_text) or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise ReportDateInvalid("from", "The first day must not be after the last day.")
        if (last - first).days + 1 > MAX_DAYS:
            raise ReportDateInvalid("from", f"A report covers at most {MAX_DAYS} days: choose a shorter period.")
        return cls(first, last, time_zone, _midnight(first, time_zone), _midnight(last + timedelta(days=1), time_zone))


def _day(field: str, text: str | None) -> date | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise ReportDateInvalid(field, f"Enter the {field} date as YYYY-MM-DD, for example 2026-11-02.") from None
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise ReportDateInvalid(
            field, f"Enter a {field} date from {_FIRST_DAY.isoformat()} to {_LAST_DAY.isoformat()}."
        )
    return day


def _midnight(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone(time_zone)).astimezone(UTC)


def share(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent, one decimal, rounded down: 199 of 200 is 99.5, never 100."""
    return math.floor(1000 * part / whole) / 10 if whole else 0.0


@dataclass(frozen=True, slots=True)
class RoleEnrolment:
    role: str
    members: int
    enrolled: int

    @property
    def percent(self) -> float:
        return share(self.enrolled, self.members)


@dataclass(frozen=True, slots=True)
class MethodCount:
    kind: str
    label: str
    members: int


@dataclass(frozen=True, slots=True)
class OverdueMember:
    id: int
    name: str
    email: str
    role: str
    due_at: datetime
    # True: only a security key or passkey meets the requirement, and the member has none.
    phishing_resistant: bool


@dataclass(frozen=True, slots=True)
class EventCount:
    event: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    practice: str
    period: ReportPeriod
    generated_at: datetime
    roles: list[RoleEnrolment]
    methods: list[MethodCount]
    overdue: list[OverdueMember]
    # Members a requirement covers who have no method yet but are still inside their grace period.
    in_grace: int
    events: list[EventCount]
    chain: ChainReport

    @property
    def overall(self) -> RoleEnrolment:
        return RoleEnrolment("all", sum(r.members for r in self.roles), sum(r.enrolled for r in self.roles))

    @property
    def chain_problem(self) -> str | None:
        return describe_break(self.chain.first_break) if self.chain.first_break else None


@dataclass(kw_only=True, slots=True)
class ComplianceReports:
    db: Database
    clock: Clock
    audit: AuditLog
    factors: FactorRegistry
    audit_trail: AuditTrail

    def report(self, *, practice_id: int, first: str | None = None, last: str | None = None) -> ComplianceReport:
        """The report of ``practice_id`` for the days ``first`` to ``last`` (``YYYY-MM-DD``, the practice's zone).

        Raises ``ReportDateInvalid`` (a 4xx) for a bad period, ``NotFound`` for no such practice.
        """
        now = self.clock.now()
        with self.db.reading() as s:
            practice = s.get(Practice, practice_id)
            if practice is None:
                raise NotFound("No such practice.")
            policy = Policy.of(practice)
            period = ReportPeriod.of(first, last, now=now, time_zone=policy.time_zone)
            name = practice.name
            members = select(User.id).where(User.practice_id == practice_id, User.active.is_(True))
            enrolled = User.id.in_(self.factors.enabled_user_ids())

            by_role = {
                role: (int(count), int(on or 0))
                for role, count, on in s.execute(
                    select(User.role, func.count(), func.sum(case((enrolled, 1), else_=0)))
                    .where(User.practice_id == practice_id, User.active.is_(True))
                    .group_by(User.role)
                )
            }
            roles = [RoleEnrolment(role, *by_role.get(role, (0, 0))) for role in ROLES]

            per_kind = []
            for factor in self.factors:
                ids = factor.enabled_user_ids()
                column = ids.selected_columns[0]
                users = ids.where(column.in_(members)).subquery()
                per_kind.append(
                    select(literal(factor.kind, String).label("kind"), func.count(func.distinct(users.c[0])))
                )
            counted = dict(s.execute(union_all(*per_kind)).all()) if per_kind else {}
            methods = [
                MethodCount(kind, label, int(counted.get(kind, 0))) for kind, label in self.factors.labels().items()
            ]

            overdue, in_grace = self._overdue(s, practice_id=practice_id, policy=policy, enrolled=enrolled, now=now)

            happened = dict(
                s.execute(
                    select(AuditEvent.event, func.count())
                    .where(
                        AuditEvent.chain == practice_id,
                        AuditEvent.practice_id == practice_id,
                        AuditEvent.at >= period.start,
                        AuditEvent.at < period.end,
                        AuditEvent.event.in_([str(tag) for tag in COUNTED_EVENTS]),
                    )
                    .group_by(AuditEvent.event)
                ).all()
            )
        events = [EventCount(str(tag), event_label(tag), int(happened.get(str(tag), 0))) for tag in COUNTED_EVENTS]
        chain = self.audit_trail.verify(practice_id=practice_id)[0]
        return ComplianceReport(
            practice=name,
            period=period,
            generated_at=now,
            roles=roles,
            methods=methods,
            overdue=overdue,
            in_grace=in_grace,
            events=events,
            chain=chain,
        )

    def _overdue(
        self, s, *, practice_id: int, policy: Policy, enrolled, now: datetime
    ) -> tuple[list[OverdueMember], int]:
        """Members past their deadline without a method that meets it, and how many are still inside their grace.

        Reads only the members something requires 2FA of and who lack a method (or, where the policy wants a
        phishing-resistant one, lack that); the deadline is enforcement.py's, so the report and the gate agree.
        """
        covered = [role for role in ROLES if policy.requires_two_factor_for(role)]
        strict_roles = list(policy.phishing_resistant_roles)
        strong_kinds = self.factors.phishing_resistant_kinds()
        strong = (
            User.id.in_(union(*(self.factors[kind].enabled_user_ids() for kind in strong_kinds)))
            if strong_kinds
            else false()
        )
        rows = s.execute(
            select(User, EnrolmentDemand.due_at, enrolled.label("enrolled"), strong.label("strong"))
            .outerjoin(EnrolmentDemand, EnrolmentDemand.user_id == User.id)
            .where(
                User.practice_id == practice_id,
                User.active.is_(True),
                or_(User.role.in_(covered), User.role.in_(strict_roles), EnrolmentDemand.user_id.is_not(None)),
                or_(~enrolled, and_(User.role.in_(strict_roles), ~strong)),
            )
            .order_by(func.lower(User.name), User.id)
        ).all()
        overdue: list[OverdueMember] = []
        in_grace = 0
        for user, demanded_by, has_any, has_strong in rows:
            due, strict = enrolment_due_at(policy, user, demanded_by)
            met = bool(has_strong) if strict else bool(has_any)
            if due is None or met:
                continue
            if now >= due:
                overdue.append(OverdueMember(user.id, user.name, user.email, user.role, due, strict))
            else:
                in_grace += 1
        return overdue, in_grace

    def export_csv(
        self,
        *,
        practice_id: int,
        first: str | None = None,
        last: str | None = None,
        actor_id: int | None,
        context: RequestContext,
    ) -> Iterator[str]:
        """The report as CSV lines (header first), every cell defused; the download is audited first.

        A bad period raises before anything is written or audited.
        """
        report = self.report(practice_id=practice_id, first=first, last=last)
        with self.db.transaction() as s:
            self.audit.record(
                s,
                EventTag.REPORT_EXPORTED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"from": report.period.first.isoformat(), "to": report.period.last.isoformat()},
            )
        return iter([csv_line(row) for row in csv_rows(report)])


def csv_rows(report: ComplianceReport) -> Sequence[Sequence[object]]:
    """The report as rows under ``CSV_COLUMNS``: one section a block, times in UTC (ISO 8601)."""
    period = report.period
    rows: list[Sequence[object]] = [
        CSV_COLUMNS,
        ("report", "practice", "", "", "", report.practice),
        ("report", "from", "", "", "", period.first.isoformat()),
        ("report", "to", "", "", "", period.last.isoformat()),
        ("report", "time_zone", "", "", "", period.time_zone),
        ("report", "generated_at", "", "", "", report.generated_at.isoformat()),
    ]
    for line in [*report.roles, report.overall]:
        rows.append(("enrolment", line.role, line.enrolled, line.members, f"{line.percent:.1f}", ""))
    total = report.overall.members
    for method in report.methods:
        rows.append(("method", method.kind, method.members, total, f"{share(method.members, total):.1f}", method.label))
    rows.append(("overdue", "members", len(report.overdue), "", "", ""))
    rows.append(("overdue", "in_grace_period", report.in_grace, "", "", ""))
    for member in report.overdue:
        needs = "security key or passkey" if member.phishing_resistant else "any method"
        rows.append(
            (
                "overdue_member",
                member.email,
                "",
                "",
                "",
                f"{member.name}; {member.role}; due {member.due_at.isoformat()}; {needs}",
            )
        )
    for event in report.events:
        rows.append(("event", event.event, event.count, "", "", event.label))
    chain = report.chain
    rows.append(("audit_chain", "verified" if chain.ok else "failed", chain.events, "", "", report.chain_problem or ""))
    return rows
