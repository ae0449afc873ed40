"""Shared workstations: marking, renaming, unmarking (audited); on a marked browser the shorter idle
timeout, no remembered browser, and only the practice's members."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD
from twofold.context import RequestContext
from twofold.core.workstations import (
    AlreadyAWorkstation,
    RememberRefusedOnWorkstation,
    WorkstationNameInvalid,
    WorkstationNotFound,
    WorkstationOfAnotherPractice,
)
from twofold.errors import InvalidCredentials
from twofold.store.models import AuditEvent, Practice, User, UserSession, Workstation

DESK = RequestContext(ip="192.0.2.20", user_agent="Mozilla/5.0 (Windows NT 10.0) Chrome/130.0")


def events(services, name):
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)).scalars().all()


def user_row(services, member) -> User:
    with services.db.reading() as s:
        user = s.get(User, member.id)
        assert user is not None
        return user


def mark(services, admin, name="Front desk 1", context=DESK) -> RequestContext:
    """Mark the browser of ``context``; return that context carrying its new workstation cookie."""
    marked = services.workstations.mark(admin=user_row(services, admin), name=name, context=context)
    return replace(context, workstation=marked.cookie.value)


def sign_in_with_code(services, member, clock, context, remember=False):
    flow = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=context)
    assert flow.status == "second_factor_required"
    bound = replace(context, flow_binding=flow.flow_cookie.value)
    done = services.sign_in.verify_second_factor(
        flow_id=flow.flow_id, method="totp", code=member.code(clock), context=bound, remember_browser=remember
    )
    clock.advance(seconds=30)
    return done


def test_marking_stores_only_a_keyed_hash_of_a_random_token_and_is_audited(services, make_user):
    admin = make_user(role="admin")
    marked = services.workstations.mark(admin=user_row(services, admin), name="  Front   desk 1 ", context=DESK)
    assert marked.cookie.name == "twofold_workstation" and len(marked.cookie.value) >= 43
    assert marked.cookie.max_age == 400 * 24 * 3600
    assert marked.view.name == "Front desk 1" and marked.view.current
    with services.db.reading() as s:
        row = s.execute(select(Workstation)).scalar_one()
    assert row.token_hash != marked.cookie.value and marked.cookie.value not in row.token_hash
    assert row.practice_id == admin.practice_id and row.created_by_id == admin.id
    (event,) = events(services, "practice:workstation:marked")
    assert event.actor_id == admin.id and event.details == {"workstation_id": row.id, "name": "Front desk 1"}
    assert marked.cookie.value not in str(event.details)


def test_a_browser_is_marked_once(services, make_user):
    admin = make_user(role="admin")
    desk = mark(services, admin)
    with pytest.raises(AlreadyAWorkstation):
        mark(services, admin, name="Again", context=desk)
    assert len(events(services, "practice:workstation:marked")) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 81, "Front\x00desk", "Desk\u200b\x07"])
def test_a_bad_name_is_refused_and_changes_nothing(services, make_user, name):
    admin = make_user(role="admin")
    with pytest.raises(WorkstationNameInvalid):
        mark(services, admin, name=name)
    with services.db.reading() as s:
        assert s.execute(select(Workstation)).first() is None
    assert not events(services, "practice:workstation:marked")


def test_rename_and_unmark_work_from_any_browser_of_the_practice_only(services, make_user, make_practice):
    admin = make_user(role="admin")
    desk = mark(services, admin)
    (view,) = services.workstations.list_workstations(practice_id=admin.practice_id, context=desk)
    assert view.current
    elsewhere = RequestContext(ip="192.0.2.99")
    assert not services.workstations.list_workstations(practice_id=admin.practice_id, context=elsewhere)[0].current
    renamed = services.workstations.rename(
        practice_id=admin.practice_id, workstation_id=view.id, name="Reception", actor_id=admin.id, context=elsewhere
    )
    assert renamed.name == "Reception" and not renamed.current
    assert events(services, "practice:workstation:renamed")[0].details["name"] == ["Front desk 1", "Reception"]
    other = make_practice("Lakeside Clinic")
    with pytest.raises(WorkstationNotFound):  # another practice's admin finds nothing
        services.workstations.unmark(practice_id=other.id, workstation_id=view.id, actor_id=admin.id, context=elsewhere)
    assert services.workstations.here(context=desk).name == "Reception"
    was_here = services.workstations.unmark(
        practice_id=admin.practice_id, workstation_id=view.id, actor_id=admin.id, context=elsewhere
    )
    assert was_here is False  # unmarked from another browser: that one's cookie is not this answer's to delete
    assert services.workstations.here(context=desk) is None  # the cookie no longer counts, server-side
    assert events(services, "practice:workstation:unmarked")[0].details == {
        "workstation_id": view.id,
        "name": "Reception",
    }
    with pytest.raises(WorkstationNotFound):
        services.workstations.unmark(
            practice_id=admin.practice_id, workstation_id=view.id, actor_id=admin.id, context=elsewhere
        )


@pytest.mark.parametrize(("idle", "alive"), [(timedelta(minutes=1, seconds=59), True), (timedelta(minutes=2), False)])
def test_a_session_started_on_a_workstation_uses_the_shorter_idle_timeout(services, make_user, clock, idle, alive):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=True)
    desk = mark(services, admin)
    token = sign_in_with_code(services, staff, clock, desk).session_token
    active = services.sessions.resolve(token)
    assert active.workstation_id is not None and active.policy.idle_timeout == timedelta(minutes=2)
    assert active.expires_at == clock.now() + timedelta(minutes=2)
    clock.advance(idle)
    assert (services.sessions.resolve(token) is not None) is alive
    # The same member elsewhere keeps the practice's 15 minutes.
    token_elsewhere = sign_in_with_code(services, staff, clock, RequestContext(ip="192.0.2.30")).session_token
    clock.advance(minutes=14)
    elsewhere = services.sessions.resolve(token_elsewhere)
    assert elsewhere is not None and elsewhere.workstation_id is None


def test_the_shorter_timeout_follows_the_policy_and_never_exceeds_the_normal_one(services, make_user, clock):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=True)
    desk = mark(services, admin)
    with services.db.transaction() as s:
        s.execute(update(Practice).values(shared_workstation_idle_minutes=5))
    token = sign_in_with_code(services, staff, clock, desk).session_token
    assert services.sessions.resolve(token).policy.idle_timeout == timedelta(minutes=5)
    with services.db.transaction() as s:  # written around the policy check: still held to the normal timeout
        s.execute(update(Practice).values(idle_timeout_minutes=3, shared_workstation_idle_minutes=10))
    assert services.sessions.resolve(token).policy.idle_timeout == timedelta(minutes=3)


def test_any_path_to_a_session_on_a_workstation_is_marked(services, make_user, clock):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=False)  # password only: no second factor
    desk = mark(services, admin)
    result = services.sign_in.start_sign_in(email=staff.email, password=PASSWORD, context=desk)
    assert result.status == "signed_in"
    with services.db.reading() as s:
        record = s.execute(select(UserSession).where(UserSession.user_id == staff.id)).scalar_one()
        workstation = s.execute(select(Workstation)).scalar_one()
    assert record.workstation_id == workstation.id and workstation.last_used_at == clock.now()


def test_the_admins_own_session_follows_the_workstation_once_marked(services, make_user, clock):
    admin = make_user(role="admin")
    token = sign_in_with_code(services, admin, clock, DESK).session_token
    active = services.sessions.resolve(token)
    assert active.workstation_id is None
    services.workstations.mark(admin=user_row(services, admin), name="Desk", context=DESK, session_id=active.session_id)
    assert services.sessions.resolve(token).policy.idle_timeout == timedelta(minutes=2)


def test_remember_this_browser_is_refused_there_before_the_code_is_used(services, make_user, clock):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=True)
    desk = mark(services, admin)
    flow = services.sign_in.start_sign_in(email=staff.email, password=PASSWORD, context=desk)
    bound = replace(desk, flow_binding=flow.flow_cookie.value)
    code = staff.code(clock)
    with pytest.raises(RememberRefusedOnWorkstation):
        services.sign_in.verify_second_factor(
            flow_id=flow.flow_id, method="totp", code=code, context=bound, remember_browser=True
        )
    with services.db.reading() as s:
        assert s.execute(select(UserSession)).first() is None
    assert not events(services, "account:remembered_browser:granted")
    # The same code still works without the option: nothing was used up.
    done = services.sign_in.verify_second_factor(flow_id=flow.flow_id, method="totp", code=code, context=bound)
    assert done.status == "signed_in" and done.browser_cookie is None


def test_a_remembered_browser_cookie_is_ignored_there(services, make_user, clock):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=True)
    remembered = sign_in_with_code(services, staff, clock, DESK, remember=True).browser_cookie
    assert remembered is not None
    cookies = {remembered.name: remembered.value}
    before = services.sign_in.start_sign_in(
        email=staff.email, password=PASSWORD, context=DESK, remembered_cookies=cookies
    )
    assert before.status == "signed_in"  # the cookie skips the code on an ordinary browser
    desk = mark(services, admin)
    after = services.sign_in.start_sign_in(
        email=staff.email, password=PASSWORD, context=desk, remembered_cookies=cookies
    )
    assert after.status == "second_factor_required"  # always asks for the code there
    assert not events(services, "account:remembered_browser:rejected")  # not even looked at


def test_only_the_practices_members_sign_in_there(services, make_user, make_practice, clock):
    admin = make_user(role="admin")
    desk = mark(services, admin)
    other = make_practice("Lakeside Clinic")
    stranger = make_user(role="staff", practice_id=other.id, email="sam@lakeside.example")
    with pytest.raises(InvalidCredentials):  # the one answer for any refused password
        services.sign_in.start_sign_in(email=stranger.email, password=PASSWORD, context=desk)
    (refused,) = events(services, "account:sign_in:workstation_refused")
    assert refused.subject_id == stranger.id
    with services.db.reading() as s:
        assert s.execute(select(UserSession)).first() is None
    # Elsewhere the same member signs in as always.
    assert services.sign_in.start_sign_in(email=stranger.email, password=PASSWORD, context=DESK).status == "signed_in"


def test_no_session_starts_there_for_another_practice_by_any_path(services, make_user, make_practice):
    admin = make_user(role="admin")
    desk = mark(services, admin)
    other = make_practice("Lakeside Clinic")
    stranger = make_user(role="staff", practice_id=other.id, email="sam@lakeside.example")
    with services.db.transaction() as s, pytest.raises(WorkstationOfAnotherPractice):
        services.sessions.start(s, user=s.get(User, stranger.id), context=desk)


def test_an_unmarked_workstation_is_an_ordinary_browser_again(services, make_user, clock):
    admin = make_user(role="admin")
    staff = make_user(role="staff", with_totp=True)
    desk = mark(services, admin)
    (view,) = services.workstations.list_workstations(practice_id=admin.practice_id, context=desk)
    services.workstations.unmark(practice_id=admin.practice_id, workstation_id=view.id, actor_id=admin.id, context=desk)
    done = sign_in_with_code(services, staff, clock, desk, remember=True)
    assert done.browser_cookie is not None
    assert services.sessions.resolve(done.session_token).workstation_id is None
