"""Remembered browsers: when trust skips the code, when it ends, and what is refused and audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import PASSWORD
from twofold.context import RequestContext
from twofold.core.remembered import COOKIE_PREFIX, Rejection
from twofold.store.models import AuditEvent, Practice, RememberedBrowser

CHROME = RequestContext(
    ip="192.0.2.10", user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"
)


def events(services, name=None, subject_id=None):
    with services.db.reading() as s:
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    return [
        row
        for row in rows
        if (name is None or row.event == name) and (subject_id is None or row.subject_id == subject_id)
    ]


def bound(context: RequestContext, flow) -> RequestContext:
    """``context`` carrying the flow cookie of the browser that passed the password step."""
    return replace(context, flow_binding=flow.flow_cookie.value)


def remember(services, member, clock) -> dict[str, str]:
    """Sign in with the code and "remember this browser"; return the browser's cookies."""
    flow = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=CHROME)
    assert flow.status == "second_factor_required"
    done = services.sign_in.verify_second_factor(
        flow_id=flow.flow_id, method="totp", code=member.code(clock), context=bound(CHROME, flow), remember_browser=True
    )
    assert done.status == "signed_in" and done.browser_cookie is not None
    clock.advance(seconds=30)  # the next code is a fresh step
    return {done.browser_cookie.name: done.browser_cookie.value}


def sign_in(services, member, cookies):
    return services.sign_in.start_sign_in(
        email=member.email, password=PASSWORD, context=CHROME, remembered_cookies=cookies
    )


def set_policy(services, practice_id, **values):
    with services.db.transaction() as s:
        s.execute(update(Practice).where(Practice.id == practice_id).values(**values))


def test_the_token_is_256_random_bits_stored_only_as_a_keyed_hash(services, make_user, clock):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    ((name, token),) = cookies.items()
    assert name.startswith(COOKIE_PREFIX) and len(name) == len(COOKIE_PREFIX) + 16
    assert len(token) == 43  # 32 bytes, URL-safe base64 without padding
    with services.db.reading() as s:
        row = s.execute(select(RememberedBrowser)).scalar_one()
    assert row.user_id == member.id and token not in row.token_hash and len(row.token_hash) == 64
    assert row.ip == "192.0.2.10" and row.user_agent == CHROME.user_agent
    assert (row.expires_at - row.created_at) == timedelta(days=30)
    assert name == services.remembered.cookie_name(member.id) != services.remembered.cookie_name(member.id + 1)


def test_each_user_of_a_shared_browser_has_their_own_cookie(services, make_user, clock):
    first, second = make_user(with_totp=True), make_user(with_totp=True)
    jar = remember(services, first, clock)
    jar |= remember(services, second, clock)
    assert len(jar) == 2
    assert sign_in(services, first, jar).status == "signed_in"
    assert sign_in(services, second, jar).status == "signed_in"


@pytest.mark.parametrize(
    ("days_later", "skips_code"),
    [(1, True), (10, True), (20, True), (29, True), (30, False), (31, False)],
)
def test_trust_lasts_thirty_days_from_when_it_was_given(services, make_user, clock, days_later, skips_code):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    given = clock.now()
    # Used every 10 days, so idleness never ends it: only the 30 days can.
    for day in (d for d in (10, 20, 29) if d < days_later):
        clock.set(given + timedelta(days=day))
        assert sign_in(services, member, cookies).status == "signed_in"
    clock.set(given + timedelta(days=days_later))
    result = sign_in(services, member, cookies)
    assert (result.status == "signed_in") is skips_code
    if not skips_code:
        assert result.browser_cookie is not None and result.browser_cookie.value is None  # told to drop it
        expired = events(services, "account:remembered_browser:expired", member.id)
        assert expired and expired[-1].details["reason"] == "expired"


@pytest.mark.parametrize(("idle", "skips_code"), [(timedelta(days=13, hours=23), True), (timedelta(days=15), False)])
def test_fourteen_idle_days_end_the_trust(services, make_user, clock, idle, skips_code):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    clock.advance(idle)
    assert (sign_in(services, member, cookies).status == "signed_in") is skips_code
    if not skips_code:
        assert events(services, "account:remembered_browser:expired", member.id)[-1].details["reason"] == "idle"


def test_a_use_restarts_the_idle_days(services, make_user, clock):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    clock.advance(days=13)
    assert sign_in(services, member, cookies).status == "signed_in"
    clock.advance(days=13)
    assert sign_in(services, member, cookies).status == "signed_in"
    used = events(services, "account:remembered_browser:used", member.id)
    assert len(used) == 2 and used[-1].ip == "192.0.2.10"


def test_a_shorter_policy_shortens_trust_already_given(services, make_user, clock, practice):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    set_policy(services, practice.id, remember_browser_days=7)
    clock.advance(days=6)
    assert sign_in(services, member, cookies).status == "signed_in"
    clock.advance(days=1, seconds=1)
    assert sign_in(services, member, cookies).status == "second_factor_required"


def test_policy_days_are_capped_at_thirty(services, make_user, clock, practice):
    set_policy(services, practice.id, remember_browser_days=90, remember_browser_idle_days=90)
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    clock.advance(days=29)
    assert sign_in(services, member, cookies).status == "signed_in"
    clock.advance(days=2)
    assert sign_in(services, member, cookies).status == "second_factor_required"


def test_a_policy_of_zero_days_remembers_nothing(services, make_user, clock, practice):
    set_policy(services, practice.id, remember_browser_days=0)
    member = make_user(with_totp=True)
    flow = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=CHROME)
    done = services.sign_in.verify_second_factor(
        flow_id=flow.flow_id, method="totp", code=member.code(clock), context=bound(CHROME, flow), remember_browser=True
    )
    assert done.status == "signed_in" and done.browser_cookie is None
    with services.db.reading() as s:
        assert s.execute(select(RememberedBrowser)).first() is None
    assert not events(services, "account:remembered_browser:granted")


def test_the_code_is_asked_without_a_cookie_and_nothing_is_audited_for_it(services, make_user, clock):
    member = make_user(with_totp=True)
    remember(services, member, clock)
    assert sign_in(services, member, {}).status == "second_factor_required"
    assert not events(services, "account:remembered_browser:rejected")


def test_a_wrong_password_never_reaches_the_remembered_browser(services, make_user, clock):
    from twofold.errors import InvalidCredentials

    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    with pytest.raises(InvalidCredentials):
        services.sign_in.start_sign_in(
            email=member.email, password="not the password", context=CHROME, remembered_cookies=cookies
        )
    assert not events(services, "account:remembered_browser:used")


# -- stolen cookies ----------------------------------------------------------------


def test_another_users_token_is_refused_audited_and_revoked(services, make_user, clock):
    victim, thief = make_user(with_totp=True), make_user(with_totp=True)
    stolen = next(iter(remember(services, victim, clock).values()))
    # The thief knows their own password and plants the victim's token under their own cookie name.
    planted = {services.remembered.cookie_name(thief.id): stolen}
    result = sign_in(services, thief, planted)
    assert result.status == "second_factor_required"
    assert result.browser_cookie.value is None
    rejected = events(services, "account:remembered_browser:rejected", thief.id)[-1]
    assert rejected.details["reason"] == Rejection.OTHER_USER
    revoked = events(services, "account:remembered_browser:revoked", victim.id)[-1]
    assert revoked.details["reason"] == "presented_for_other_account"
    # The victim's own browser must now prove the code again: the token was shown to be loose.
    assert (
        sign_in(services, victim, {services.remembered.cookie_name(victim.id): stolen}).status
        == "second_factor_required"
    )


def test_a_token_after_a_password_change_is_refused_and_audited(services, make_user, clock):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    active = _active_session(services, member, clock)
    services.account_security.change_password(
        active=active, current_password=PASSWORD, new_password="a brand new passphrase", context=CHROME
    )
    result = services.sign_in.start_sign_in(
        email=member.email, password="a brand new passphrase", context=CHROME, remembered_cookies=cookies
    )
    assert result.status == "second_factor_required"
    rejected = events(services, "account:remembered_browser:rejected", member.id)[-1]
    assert rejected.details == {
        "reason": "revoked",
        "browser_id": rejected.details["browser_id"],
        "revoked_reason": "password_changed",
    }


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token[:20],
        lambda token: token + "x",
        lambda token: "",
        lambda token: "x" * 4000,
        lambda token: "not even base64 !@#$%",
    ],
    ids=["one-character", "truncated", "extended", "empty", "huge", "garbage"],
)
def test_a_modified_token_is_refused_and_audited(services, make_user, clock, tamper):
    member = make_user(with_totp=True)
    ((name, token),) = remember(services, member, clock).items()
    result = sign_in(services, member, {name: tamper(token)})
    assert result.status == "second_factor_required"
    assert events(services, "account:remembered_browser:rejected", member.id)[-1].details["reason"] == "unknown"


def test_turning_two_factor_off_forgets_every_browser(services, make_user, clock):
    member = make_user(with_totp=True)
    cookies = remember(services, member, clock)
    user = _active_session(services, member, clock).user
    services.accounts.disable_two_factor(user=user, password=PASSWORD, code=member.code(clock), context=CHROME)
    revoked = events(services, "account:remembered_browser:revoked", member.id)[-1]
    assert revoked.details["reason"] == "two_factor_disabled" and revoked.details["count"] == 1
    with services.db.reading() as s:
        assert s.execute(select(RememberedBrowser.revoked_reason)).scalar_one() == "two_factor_disabled"
    assert cookies


def test_revoke_all_for_is_there_for_an_admin_reset(services, make_user, clock):
    member, admin = make_user(with_totp=True), make_user(role="admin")
    cookies = remember(services, member, clock)
    remember(services, member, clock)
    with services.db.transaction() as s:
        count = services.remembered.revoke_all_for(s, member.id, "admin_reset", actor_id=admin.id, context=CHROME)
    assert count == 2
    event = events(services, "account:remembered_browser:revoked", member.id)[-1]
    assert event.actor_id == admin.id and event.details["reason"] == "admin_reset" and event.details["count"] == 2
    assert sign_in(services, member, cookies).status == "second_factor_required"
    with services.db.transaction() as s:
        assert services.remembered.revoke_all_for(s, member.id, "admin_reset") == 0


def test_grant_and_use_are_audited_without_the_token(services, make_user, clock):
    member = make_user(with_totp=True)
    ((name, token),) = remember(services, member, clock).items()
    sign_in(services, member, {name: token})
    granted = events(services, "account:remembered_browser:granted", member.id)[-1]
    assert granted.details["days"] == 30 and granted.details["label"] == "Chrome on Windows"
    succeeded = events(services, "account:sign_in:succeeded", member.id)[-1]
    assert succeeded.details["method"] == "remembered_browser"
    for event in events(services):
        assert token not in str(event.details) and name not in str(event.details)


def _active_session(services, member, clock):
    flow = services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=CHROME)
    done = services.sign_in.verify_second_factor(
        flow_id=flow.flow_id, method="totp", code=member.code(clock), context=bound(CHROME, flow)
    )
    clock.advance(seconds=30)
    return services.sessions.resolve(done.session_token)
