"""The audit log is tamper-evident: `verify` names the first changed, deleted or reordered event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from tests.conftest import backends
from twofold.context import RequestContext
from twofold.store.models import AuditEvent


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def chain(services, practice, make_practice, clock):
    """Practice 1 with ten more events, and a second practice with its own chain."""
    for number in range(10):
        clock.advance(seconds=1)
        with services.db.transaction() as s:
            services.audit.record(
                s, "test:event", context=RequestContext(ip="10.0.0.1"), practice_id=practice.id, details={"n": number}
            )
    other = make_practice("Lakeside Clinic")
    return practice.id, other.id


def report(services, practice_id):
    [found] = services.audit_trail.verify(practice_id=practice_id)
    return found


def row(services, practice_id, seq) -> AuditEvent:
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == seq)).scalar_one()


def tamper(services, statement) -> None:
    with services.db.transaction() as s:
        s.execute(statement)


def test_an_untouched_log_verifies(services, chain):
    reports = services.audit_trail.verify()
    assert [r.chain for r in reports] == [0, chain[0], chain[1]]
    assert all(r.ok for r in reports)
    assert report(services, chain[0]).events == 11


CHANGES = [
    {"details": {"n": 99}},
    {"event": "practice:member:added"},
    {"ip": "192.0.2.66"},
    {"actor_id": 42},
    {"user_agent": "forged"},
]


def test_a_changed_event_is_named(services, chain):
    practice_id, other_id = chain
    for seq, values in enumerate(CHANGES, start=2):
        target = row(services, practice_id, seq)
        original = {name: getattr(target, name) for name in values}
        tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(**values))
        bad = report(services, practice_id).first_break
        assert (bad.seq, bad.event_id) == (seq, target.id) and "changed" in bad.problem, values
        tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(**original))
        assert report(services, practice_id).ok  # put back, the chain holds again
    tamper(
        services, update(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == 6).values(ip="192.0.2.1")
    )
    assert report(services, other_id).ok  # chains are verified on their own


def test_a_changed_time_is_named(services, chain):
    target = row(services, chain[0], 4)
    tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(at=target.at - timedelta(hours=1)))
    assert report(services, chain[0]).first_break.seq == 4


def test_a_deleted_event_is_named(services, chain):
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == chain[0], AuditEvent.seq == 5))
    bad = report(services, chain[0]).first_break
    assert bad.seq == 6 and "5 to 5 are missing" in bad.problem


def test_events_deleted_from_the_end_are_noticed(services, chain):
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == chain[0], AuditEvent.seq >= 10))
    bad = report(services, chain[0]).first_break
    assert bad.seq == 10 and bad.event_id is None and "deleted from the end" in bad.problem


def test_reordered_events_are_named(services, chain):
    practice_id = chain[0]
    first, second = row(services, practice_id, 3), row(services, practice_id, 4)
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=-1))
    tamper(services, update(AuditEvent).where(AuditEvent.id == second.id).values(seq=3))
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=4))
    bad = report(services, practice_id).first_break
    assert (bad.seq, bad.event_id) == (3, second.id) and "does not link" in bad.problem


def test_a_rewritten_hash_does_not_hide_a_change(services, chain):
    """Changing an event and its own hash still breaks the next event's link."""
    from twofold.audit import event_hash

    target = row(services, chain[0], 7)
    target.details = {"n": -1}
    forged = event_hash(target.prev_hash, target)
    tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(details={"n": -1}, hash=forged))
    bad = report(services, chain[0]).first_break
    assert bad.seq == 8 and "does not link" in bad.problem
