"""Sessions end after inactivity and at an absolute limit, whatever the activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD
from twofold.context import RequestContext
from twofold.crypto import otp
from twofold.store.models import AuditEvent, Practice, UserSession


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
