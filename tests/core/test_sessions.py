"""Sessions end after inactivity and at an absolute limit, whatever the activity."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD
from tests.support.base import backends
from twofold.context import RequestContext
from twofold.core.policy import PRACTICE_POLICY_FIELDS, Policy
from twofold.crypto import otp
from twofold.store.models import AuditEvent, Practice, User, UserSession


def start(services, member):
    result = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=RequestContext())
    assert result.status == "signed_in"
    return result.session_token


def expired_events(services):
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == "account:session:expired")).scalars().all()


@pytest.mark.parametrize(
    ("policy_minutes", "idle", "alive"),
    [
        (15, timedelta(minutes=14, seconds=59), True),
        (15, timedelta(minutes=15), False),
        (15, timedelta(minutes=31), False),
        (30, timedelta(minutes=29, seconds=59), True),
        (30, timedelta(minutes=31), False),
        (90, timedelta(minutes=59), True),  # a policy above HIPAA's hour is held to 60 minutes
        (90, timedelta(minutes=61), False),
    ],
)
def test_idle_minutes_end_the_session(services, make_user, clock, practice, policy_minutes, idle, alive):
    with services.db.transaction() as s:
        s.execute(update(Practice).where(Practice.id == practice.id).values(idle_timeout_minutes=policy_minutes))
    token = start(services, make_user())
    clock.advance(idle)
    assert (services.sessions.resolve(token) is not None) is alive
    if not alive:
        assert expired_events(services)[-1].details["reason"] == "idle"
        assert services.sessions.resolve(token) is None  # ended for good, not revived by the clock


def test_activity_keeps_the_session_and_moves_its_end(services, make_user, clock):
    token = start(services, make_user())
    for _ in range(6):
        clock.advance(minutes=14)
        active = services.sessions.resolve(token)
        assert active is not None and active.expires_at == clock.now() + timedelta(minutes=15)


def test_the_twelve_hour_limit_ends_the_session_even_with_activity(services, make_user, clock):
    token = start(services, make_user())
    started = clock.now()
    while clock.now() < started + timedelta(hours=11, minutes=50):
        clock.advance(minutes=10)
        assert services.sessions.resolve(token) is not None
    clock.set(started + timedelta(hours=11, minutes=59, seconds=59))
    assert services.sessions.resolve(token).expires_at == started + timedelta(hours=12)
    clock.set(started + timedelta(hours=12))
    assert services.sessions.resolve(token) is None
    assert expired_events(services)[-1].details["reason"] == "absolute_limit"


def test_asking_how_long_is_left_is_not_activity(services, make_user, clock):
    token = start(services, make_user())
    for _ in range(3):
        clock.advance(minutes=4)
        assert services.sessions.resolve(token, touch=False) is not None
    with services.db.reading() as s:
        record = s.execute(select(UserSession)).scalar_one()
    assert record.last_seen_at == record.created_at
    clock.advance(minutes=3)
    assert services.sessions.resolve(token, touch=False) is None  # 15 minutes without activity


def test_a_session_ended_elsewhere_is_gone_on_the_next_lookup(services, make_user):
    member = make_user()
    token = start(services, member)
    assert services.sessions.resolve(token) is not None
    with services.db.transaction() as s:
        assert services.sessions.end_all_for(s, user_id=member.id, reason="test") == 1
    assert services.sessions.resolve(token) is None


def test_a_session_records_when_and_how_the_member_proved_who_they_are(services, make_user, clock):
    password_only = services.sessions.resolve(start(services, make_user()))
    assert password_only is not None
    assert password_only.amr == ("pwd",) and password_only.authenticated_at == clock.now()

    member = make_user(with_totp=True)
    flow = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=RequestContext())
    assert flow.status == "second_factor_required"
    clock.advance(seconds=5)
    signed_in = services.sign_in.verify_second_factor(
        flow_id=flow.flow_id,
        method="totp",
        code=otp.totp(member.totp_key, clock.now().timestamp()),
        context=RequestContext(flow_binding=flow.flow_cookie.value),
    )
    proved_at = clock.now()
    clock.advance(minutes=3)
    active = services.sessions.resolve(signed_in.session_token)
    assert active is not None
    assert active.amr == ("pwd", "otp", "mfa") and active.authenticated_at == proved_at  # activity does not move it


def identify(services, token, *, touch=True):
    with services.db.quick_reads() as reads:
        found = services.sessions.read(reads, token)
    return services.sessions.identify(found, touch=touch)


@pytest.mark.parametrize("backend", backends(), indirect=True)
def test_the_plain_read_of_a_session_agrees_with_the_full_one(services, make_user, clock, practice):
    member = make_user(role="staff")
    token = start(services, member)
    clock.advance(minutes=5)
    full, plain = services.sessions.resolve(token, touch=False), identify(services, token, touch=False)
    assert full is not None and plain is not None
    assert (plain.session_id, plain.policy, plain.expires_at, plain.authenticated_at, plain.amr) == (
        full.session_id,
        full.policy,
        full.expires_at,
        full.authenticated_at,
        full.amr,
    )
    assert (plain.member.id, plain.member.email, plain.member.role, plain.member.practice_name) == (
        member.id,
        member.email,
        "staff",
        "Riverside Family Practice",
    )
    assert identify(services, token + "x") is None and identify(services, None) is None
    assert identify(services, "x" * 129) is None


def test_the_plain_read_counts_activity_and_ends_an_idle_session_once(services, make_user, clock):
    token = start(services, make_user())
    clock.advance(minutes=14)
    assert identify(services, token).expires_at == clock.now() + timedelta(minutes=15)  # touched: activity
    clock.advance(minutes=14)
    assert services.sessions.resolve(token, touch=False) is not None
    clock.advance(minutes=2)
    assert identify(services, token) is None
    assert [event.details["reason"] for event in expired_events(services)] == ["idle"]
    assert identify(services, token) is None and len(expired_events(services)) == 1


def test_the_plain_read_refuses_a_session_of_a_deactivated_member(services, make_user):
    member = make_user()
    token = start(services, member)
    with services.db.transaction() as s:
        s.execute(update(User).where(User.id == member.id).values(active=False))
    assert identify(services, token) is None


def test_the_policy_read_from_columns_is_the_policy_of_the_practice_row(services, practice):
    with services.db.reading() as s:
        row = s.get_one(Practice, practice.id)
        record = SimpleNamespace(**{name: getattr(row, name) for name in PRACTICE_POLICY_FIELDS})
        assert Policy.of(record) == Policy.of(row)  # a field Policy.of reads but the list lacks fails here
