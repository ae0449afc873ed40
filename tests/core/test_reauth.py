"""Re-authentication: the one password gate, and the admin reset judged like every other
re-authentication (a code only of the methods the practice allows)."""

from __future__ import annotations

import pytest

from tests.support.base import PASSWORD
from twofold.context import RequestContext
from twofold.errors import InvalidCode, InvalidCredentials, InvalidInput, Throttled
from twofold.factors.email_code.factor import CHALLENGE
from twofold.store.models import User
from twofold.throttle import code_throttle_key, password_checks

CONTEXT = RequestContext(ip="198.51.100.9", user_agent="pytest")


def emailed_code(services, user_id: int, clock) -> str:
    clock.advance(seconds=3600)  # past the send limit
    with services.db.transaction() as s:
        user = s.get(User, user_id)
        services.email_codes.add_method(s, user=user)
        return services.email_codes.issue(s, user=user, purpose=CHALLENGE)


def reset(services, admin, member, code: str, password: str = PASSWORD) -> None:
    with services.db.reading() as s:
        fresh = s.get(User, admin.id)
        _ = fresh.practice
    services.resets.reset_member_two_factor(
        practice_id=admin.practice_id,
        admin=fresh,
        member_id=member.id,
        password=password,
        code=code,
        reason="lost phone",
        context=CONTEXT,
    )


def test_the_admin_reset_accepts_only_codes_of_methods_the_practice_allows(services, make_user, clock):
    admin = make_user(role="admin", with_totp=True)
    member = make_user(with_totp=True)
    services.policies.update(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        changes={"allowed_methods": ["totp", "recovery_code"]},
        context=CONTEXT,
    )
    # An emailed code is no code of an allowed method: malformed for the app, or (digits 2-9
    # only, about one time in six) a wrong backup code; either way nothing is reset.
    with pytest.raises((InvalidInput, InvalidCode)):
        reset(services, admin, member, emailed_code(services, admin.id, clock))
    assert services.members.get_member(practice_id=member.practice_id, member_id=member.id).two_factor_enabled
    services.policies.update(
        practice_id=admin.practice_id,
        actor_id=admin.id,
        changes={"allowed_methods": ["totp", "email", "recovery_code"]},
        context=CONTEXT,
    )
    reset(services, admin, member, emailed_code(services, admin.id, clock))
    assert not services.members.get_member(practice_id=member.practice_id, member_id=member.id).two_factor_enabled


def test_a_wrong_password_at_the_reset_counts_like_one_at_sign_in(services, make_user, clock):
    admin = make_user(role="admin", with_totp=True)
    member = make_user(with_totp=True)
    for _ in range(5):
        with pytest.raises(InvalidCredentials, match="Your password is not right"):
            reset(services, admin, member, admin.code(clock), password="not the password")
    with pytest.raises(Throttled):
        reset(services, admin, member, admin.code(clock))


def test_the_gate_counts_only_its_own_keys_but_waits_for_every_key(services, make_user):
    member = make_user()
    counted = password_checks(member.email)[:1]
    blocking = [code_throttle_key(member.id)]
    with services.sign_in.gate.guess(
        email=member.email, password="wrong", counted=counted, also_blocked_by=blocking
    ) as check:
        assert not check.ok and check.user.id == member.id
        with services.db.transaction() as s:
            check.count_failure(s)
    with services.db.reading() as s:
        assert services.throttle.store.failures(s, counted[0][1], 0) and not services.throttle.store.failures(
            s, blocking[0][1], 0
        )
    with services.db.transaction() as s:
        for _ in range(5):
            services.throttle.hit(s, blocking)
    with (
        pytest.raises(Throttled),
        services.sign_in.gate.guess(email=member.email, password=PASSWORD, counted=counted, also_blocked_by=blocking),
    ):
        pass
