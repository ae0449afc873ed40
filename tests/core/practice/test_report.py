"""The compliance report's figures, against a practice built with a known mix: members with an
authenticator app, email codes, a security key, nothing at all; members past their deadline and
inside their grace period; resets and lockouts inside and outside the period; a tampered chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import backends, sign_in
from tests.support.authenticator import SoftwareKey
from tests.support.practice_admin import events
from tests.support.recovery import add_email_method
from tests.web.factors.test_webauthn import add_key
from twofold.audit import EventTag
from twofold.context import RequestContext
from twofold.core.practice.report import MAX_DAYS, ReportDateInvalid, ReportPeriod, csv_rows
from twofold.store.models import AuditEvent, User


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@dataclass
class Built:
    admin: object
    by_app: object
    by_email: object
    by_key: object
    reset_early: object
    reset_late: object
    without: list
    newcomer: object
    first_day: date  # the day the practice was built (practice time)
    today: date


def lock_out(services, member) -> None:
    """A lockout as the sign-in throttle records it (core/lockouts.py writes this event)."""
    with services.db.transaction() as s:
        services.audit.record(
            s,
            EventTag.LOCKED_OUT,
            context=RequestContext(),
            practice_id=member.practice_id,
            subject_id=member.id,
            details={"step": "password", "retry_after": 60},
        )


def reset(services, admin, member, clock) -> None:
    with services.db.reading() as s:
        admin_row = s.get_one(User, admin.id)
    services.resets.reset_member_two_factor(
        practice_id=admin.practice_id,
        admin=admin_row,
        member_id=member.id,
        password=admin.password,
        code=admin.code(clock),
        reason="lost phone",
        context=RequestContext(),
    )
    clock.advance(seconds=30)  # the admin's code is spent


@pytest.fixture
def built(app, services, practice, make_user, mailbox, clock) -> Built:
    """Europe/London practice requiring 2FA of everyone with 7 days' grace; then 40 days pass."""
    services.policies.update(
        practice_id=practice.id,
        actor_id=None,
        changes={"require_two_factor": True, "grace_days": 7, "time_zone": "Europe/London"},
        context=RequestContext(),
    )
    first_day = clock.now().date()
    admin = make_user(role="admin", email="admin@riverside.example")
    by_app = make_user(role="provider", with_totp=True, email="app@riverside.example")
    reset_early = make_user(role="provider", with_totp=True, email="early@riverside.example")
    reset_late = make_user(role="staff", with_totp=True, email="late@riverside.example")
    by_email = make_user(role="staff", email="mail@riverside.example")
    by_key = make_user(role="provider", email="key@riverside.example")
    without = [make_user(role="staff", email=f"none{i}@riverside.example") for i in range(2)]
    gone = make_user(role="staff", email="gone@riverside.example")
    services.members.update_member(
        practice_id=practice.id, actor_id=None, member_id=gone.id, active=False, context=RequestContext()
    )
    with TestClient(app, base_url="http://127.0.0.1") as browser:
        assert sign_in(browser, by_email).json()["status"] == "signed_in"
        add_email_method(browser, mailbox, by_email, clock)
    with TestClient(app, base_url="http://127.0.0.1") as browser:
        assert sign_in(browser, by_key).json()["status"] == "signed_in"
        add_key(browser, SoftwareKey())
    reset(services, admin, reset_early, clock)  # outside the default period
    lock_out(services, without[0])  # outside too
    clock.advance(days=40)
    reset(services, admin, reset_late, clock)
    lock_out(services, without[0])
    lock_out(services, without[1])
    newcomer = make_user(role="staff", email="new@riverside.example")  # joined today: 7 days' grace
    return Built(
        admin, by_app, by_email, by_key, reset_early, reset_late, without, newcomer, first_day, clock.now().date()
    )


def by_role(report) -> dict:
    return {line.role: (line.members, line.enrolled, line.percent) for line in [*report.roles, report.overall]}


def test_enrolment_by_role_counts_active_members_with_any_method(services, practice, built):
    report = services.reports.report(practice_id=practice.id)
    # admin: 1 of 1; providers: app, key (early was reset) = 2 of 3; staff: email = 1 of 5 (late reset, 2 none,
    # newcomer); the deactivated member is not counted.
    assert by_role(report) == {
        "admin": (1, 1, 100.0),
        "provider": (3, 2, 66.6),
        "staff": (5, 1, 20.0),
        "all": (9, 4, 44.4),
    }


def test_method_mix_follows_the_factor_registry(services, practice, built):
    report = services.reports.report(practice_id=practice.id)
    assert [m.kind for m in report.methods] == services.factors.kinds()
    assert [m.label for m in report.methods] == list(services.factors.labels().values())
    counts = {m.kind: m.members for m in report.methods}
    assert counts["totp"] == 2  # the admin and by_app
    assert counts["email"] == 1
    assert counts["webauthn"] == 1


def test_overdue_members_are_past_the_deadline_without_a_method(services, practice, built):
    report = services.reports.report(practice_id=practice.id)
    overdue = {m.email: m for m in report.overdue}
    assert set(overdue) == {
        "early@riverside.example",
        "late@riverside.example",
        "none0@riverside.example",
        "none1@riverside.example",
    }
    # the policy's grace ran out 7 days after the members joined; a reset's demand is due at once,
    # and the earlier of the two counts (as at the gate)
    due = {email: m.due_at.date() for email, m in overdue.items()}
    grace_end = built.first_day + timedelta(days=7)
    assert due == {
        "early@riverside.example": built.first_day,
        "late@riverside.example": grace_end,
        "none0@riverside.example": grace_end,
        "none1@riverside.example": grace_end,
    }
    assert report.in_grace == 1  # the newcomer
    for member in report.overdue:  # the report agrees with the gate itself
        assert services.enforcement.requirement_for(member.id).blocks(services.clock.now())


def test_a_phishing_resistant_role_is_overdue_with_only_an_app(services, practice, built):
    services.policies.update(
        practice_id=practice.id,
        actor_id=None,
        changes={"phishing_resistant_roles": ["provider"], "allowed_methods": ["totp", "email", "webauthn"]},
        context=RequestContext(),
    )
    services.clock.advance(days=8)
    overdue = {m.email: m for m in services.reports.report(practice_id=practice.id).overdue}
    assert overdue["app@riverside.example"].phishing_resistant
    assert "key@riverside.example" not in overdue


def counted(report) -> dict:
    return {event.event: event.count for event in report.events}


def test_events_are_counted_in_the_period_only(services, practice, built):
    last_30_days = counted(services.reports.report(practice_id=practice.id))
    assert last_30_days[EventTag.TWO_FACTOR_RESET] == 1
    assert last_30_days[EventTag.LOCKED_OUT] == 2
    whole = counted(
        services.reports.report(
            practice_id=practice.id, first=built.first_day.isoformat(), last=built.today.isoformat()
        )
    )
    assert whole[EventTag.TWO_FACTOR_RESET] == 2
    assert whole[EventTag.LOCKED_OUT] == 3
    # enrolments: admin, by_app, early, late (apps), by_email, by_key
    assert whole[EventTag.TWO_FACTOR_ENABLED] >= 4
    before = counted(
        services.reports.report(
            practice_id=practice.id,
            first=(built.first_day - timedelta(days=5)).isoformat(),
            last=(built.first_day - timedelta(days=1)).isoformat(),
        )
    )
    assert set(before.values()) == {0}


def test_the_period_is_in_the_practice_time_zone(services, practice, built):
    report = services.reports.report(practice_id=practice.id, first="2026-07-01", last="2026-07-01")
    # British Summer Time: the day starts at 23:00 UTC the day before
    assert report.period.start.isoformat() == "2026-06-30T23:00:00+00:00"
    assert report.period.end.isoformat() == "2026-07-01T23:00:00+00:00"
    default = services.reports.report(practice_id=practice.id).period
    assert (default.days, default.last) == (30, built.today)


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        ("2026-02-30", "", "from"),
        ("yesterday", "", "from"),
        ("20261102", "", "from"),
        ("", "2026-13-01", "to"),
        ("1999-12-31", "2000-01-01", "from"),
        ("2026-11-02", "2026-11-01", "from"),
        ("2025-01-01", "2026-01-02", "from"),
    ],
)
def test_a_bad_period_is_refused_naming_the_field(services, practice, first, last, field):
    with pytest.raises(ReportDateInvalid) as refused:
        services.reports.report(practice_id=practice.id, first=first, last=last)
    assert refused.value.field == field


def test_the_longest_period_is_allowed():
    period = ReportPeriod.of("2026-01-01", None, now=datetime(2027, 1, 1, 12, tzinfo=UTC), time_zone="UTC")
    assert (period.days, period.last) == (MAX_DAYS, date(2027, 1, 1))


def test_a_tampered_chain_shows_the_first_bad_event(services, practice, built):
    assert services.reports.report(practice_id=practice.id).chain.ok
    with services.db.transaction() as s:
        s.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == practice.id, AuditEvent.seq == 3)
            .values(details={"edited": True})
        )
    report = services.reports.report(practice_id=practice.id)
    assert not report.chain.ok
    assert report.chain.first_break.seq == 3
    assert "event 3" in report.chain_problem
    assert tuple(csv_rows(report)[-1][:2]) == ("audit_chain", "failed")


def test_the_csv_export_is_audited_and_defuses_formulas(services, practice, built):
    services.accounts.add_member(
        practice_id=practice.id,
        email="formula@riverside.example",
        name='=HYPERLINK("http://evil.example","x")',
        role="staff",
        password="correct horse battery staple",
        context=RequestContext(),
    )
    services.clock.advance(days=8)  # past the grace period: listed as overdue, name and all
    lines = list(
        services.reports.export_csv(practice_id=practice.id, actor_id=built.admin.id, context=RequestContext())
    )
    assert lines[0] == "section,item,count,of,percent,detail\r\n"
    row = next(line for line in lines if "formula@" in line)
    assert "'=HYPERLINK" in row and ",=HYPERLINK" not in row
    assert services.reports.report(practice_id=practice.id).chain.ok
    assert len(events(services, EventTag.REPORT_EXPORTED, practice.id)) == 1
