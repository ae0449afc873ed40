"""Backup codes: shape, normalisation, storage only as keyed hashes, single use under a race."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import backends
from twofold.context import RequestContext
from twofold.errors import InvalidCode, Throttled
from twofold.factors.recovery_codes.factor import ALPHABET, CODE_LENGTH, display, new_code, normalize_recovery_code
from twofold.store.models import RecoveryCode, User


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def test_the_alphabet_has_no_look_alikes():
    assert not set(ALPHABET) & set("01ilo" + "ILO")
    assert len(set(ALPHABET)) == len(ALPHABET) == 31


@given(st.integers(min_value=0, max_value=200))
def test_new_codes_are_eight_characters_of_the_alphabet(n):
    del n  # only repeats the test
    code = new_code()
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert normalize_recovery_code(display(code)) == code


@given(
    st.text(alphabet=ALPHABET, min_size=8, max_size=8), st.sampled_from(["-", " ", "", "\u00a0", " - "]), st.booleans()
)
def test_a_code_typed_with_separators_or_capitals_normalises_to_itself(code, separator, upper):
    typed = f"{code[:4]}{separator}{code[4:]}"
    assert normalize_recovery_code(typed.upper() if upper else typed) == code


@given(st.text(max_size=40))
def test_normalising_never_raises_and_accepts_only_alphabet_codes(raw):
    result = normalize_recovery_code(raw)
    assert result is None or (len(result) == CODE_LENGTH and set(result) <= set(ALPHABET))


@pytest.mark.parametrize(
    "raw", ["", "abcd-234", "abcd-23456", "abcd-2340", "abcd-1234", "oooo-llll", "abcd_2345", "x" * 100]
)
def test_malformed_codes_are_refused_before_any_lookup(raw):
    assert normalize_recovery_code(raw) is None


def test_codes_are_bound_to_their_account(services, make_user):
    first = make_user(with_totp=True)
    second = make_user(with_totp=True)
    with services.db.transaction() as s:
        verification = services.recovery_codes.verify(s, user=s.get(User, second.id), response=first.recovery_codes[0])
    assert not verification.accepted


def test_two_concurrent_uses_of_one_backup_code_give_one_success(services, make_user, client):
    """Eight sign-ins race with one code: exactly one gets a session (SQLite and PostgreSQL)."""
    member = make_user(with_totp=True)
    flows = [
        services.sign_in.start_sign_in(email=member.email, password=member.password, context=RequestContext())
        for _ in range(8)
    ]
    code = member.recovery_codes[0]
    barrier = threading.Barrier(len(flows))
    results: list[object] = []

    def attempt(flow) -> None:
        barrier.wait()
        try:
            results.append(
                services.sign_in.verify_second_factor(
                    flow_id=flow.flow_id,
                    method="recovery_code",
                    code=code,
                    context=RequestContext(flow_binding=flow.flow_cookie.value),
                )
            )
        except (InvalidCode, Throttled) as exc:
            results.append(exc)

    threads = [threading.Thread(target=attempt, args=(flow,)) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    successes = [r for r in results if not isinstance(r, Exception)]
    assert len(results) == 8 and len(successes) == 1
    with services.db.reading() as s:
        used = s.execute(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).scalars().all()
    assert len(used) == 1


def test_a_database_copy_holds_no_usable_code(services, make_user):
    member = make_user(with_totp=True)
    with services.db.reading() as s:
        hashes = s.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert all(len(h) == 64 for h in hashes)
    joined = " ".join(hashes)
    for code in member.recovery_codes:
        assert code not in joined and code.replace("-", "") not in joined
