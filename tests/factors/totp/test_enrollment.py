"""The one TOTP enrolment API: every door (the member's settings, a set-up link, the admin's
screen) counts a wrong first code on the same per-account throttle and audits it the same way."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.base import PASSWORD
from twofold.audit import EventTag
from twofold.context import RequestContext
from twofold.crypto import otp
from twofold.errors import ClockOutOfSync, InvalidCode, Throttled
from twofold.factors.base import EnrollmentNotFound
from twofold.store.models import AuditEvent, User

CONTEXT = RequestContext(ip="198.51.100.7", user_agent="pytest")


def failures(services, user_id: int) -> list[AuditEvent]:
    with services.db.reading() as s:
        return list(
            s.execute(
                select(AuditEvent).where(
                    AuditEvent.event == EventTag.TOTP_ENROLLMENT_FAILED, AuditEvent.subject_id == user_id
                )
            ).scalars()
        )


def wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def member_door(services, make_user, clock):
    member = make_user()
    enrollment = services.totp_enrollment.start_totp_enrollment(user=_user(services, member.id), context=CONTEXT)

    def confirm(code: str):
        return services.totp_enrollment.confirm_totp(
            user=_user(services, member.id), enrollment_id=enrollment.enrollment_id, code=code, context=CONTEXT
        )

    return member, enrollment, confirm


def admin_screen_door(services, make_user, clock):
    admin = make_user(role="admin")
    member = make_user(practice_id=admin.practice_id)
    enrollment = services.setup.start_on_admin_screen(
        practice_id=member.practice_id, admin_id=admin.id, member_id=member.id, context=CONTEXT
    )

    def confirm(code: str):
        return services.setup.confirm_on_admin_screen(
            practice_id=member.practice_id,
            admin_id=admin.id,
            member_id=member.id,
            enrollment_id=enrollment.enrollment_id,
            code=code,
            context=CONTEXT,
        )

    return member, enrollment, confirm


def setup_link_door(services, make_user, clock):
    member = make_user()
    with services.db.transaction() as s:
        token = services.setup.issue(s, member=s.get(User, member.id), created_by_id=None, context=CONTEXT)
    enrollment = services.setup.verify_password(token=token, password=PASSWORD, context=CONTEXT).enrollment

    def confirm(code: str):
        return services.setup.confirm(token=token, enrollment_id=enrollment.enrollment_id, code=code, context=CONTEXT)

    return member, enrollment, confirm


def _user(services, user_id: int) -> User:
    with services.db.reading() as s:
        user = s.get(User, user_id)
        _ = user.practice
        return user


DOORS = [member_door, admin_screen_door, setup_link_door]


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
def test_every_door_counts_and_audits_a_wrong_first_code_the_same_way_and_warns_before_the_wait(
    services, make_user, clock, door
):
    member, enrollment, confirm = door(services, make_user, clock)
    key = otp.from_b32(enrollment.secret)
    right = otp.totp(key, clock.now().timestamp())
    for attempt in range(1, 5):
        with pytest.raises(InvalidCode) as refused:
            confirm(wrong(right))
        assert type(refused.value) is InvalidCode
        assert ("1 try left" in refused.value.message) is (attempt == 4)  # said before the lockout, not after
    with pytest.raises(Throttled) as locked:  # the fifth wrong code starts the wait, and says so
        confirm(wrong(right))
    assert locked.value.retry_after == 300
    assert [e.details["reason"] for e in failures(services, member.id)] == ["wrong"] * 5
    with pytest.raises(Throttled):  # the sixth guess is not judged, even a right one
        confirm(right)


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
def test_every_door_tells_a_phone_clock_out_of_sync(services, make_user, clock, door):
    _member, enrollment, confirm = door(services, make_user, clock)
    late = otp.totp(otp.from_b32(enrollment.secret), clock.now().timestamp() - 5 * otp.PERIOD)
    with pytest.raises(ClockOutOfSync):
        confirm(late)


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
def test_every_door_refuses_an_expired_set_up(services, make_user, clock, door):
    _member, enrollment, confirm = door(services, make_user, clock)
    clock.advance(seconds=16 * 60)
    with pytest.raises(EnrollmentNotFound):
        confirm(otp.totp(otp.from_b32(enrollment.secret), clock.now().timestamp()))


@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
def test_every_door_turns_the_app_on_with_its_first_code(services, make_user, clock, door):
    member, enrollment, confirm = door(services, make_user, clock)
    confirm(otp.totp(otp.from_b32(enrollment.secret), clock.now().timestamp()))
    with services.db.reading() as s:
        assert services.totp.is_enabled_for(s, s.get(User, member.id))


def test_the_start_is_audited_with_who_started_it(services, make_user, clock):
    member, _enrollment, _confirm = admin_screen_door(services, make_user, clock)
    with services.db.reading() as s:
        started = s.execute(
            select(AuditEvent).where(
                AuditEvent.event == EventTag.TOTP_ENROLLMENT_STARTED, AuditEvent.subject_id == member.id
            )
        ).scalar_one()
    assert started.actor_id != member.id and started.details == {"on_admin_screen": True}
