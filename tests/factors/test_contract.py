"""The contract every second factor passes: a factor is registered (twofold/wiring.py) only once it does.

Parametrised over every factor ``build_services`` registers, so a new factor is
tested here the moment it is wired; it needs one ``Arrangement`` below (how to
give a member the factor and a right response), and the test fails until it has one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.support import authenticator
from tests.support.base import SECRET_KEY
from twofold.context import RequestContext
from twofold.crypto import otp
from twofold.factors.base import FactorResponse, Outcome
from twofold.factors.email_code.factor import CHALLENGE
from twofold.settings import Settings
from twofold.store.models import Base, User
from twofold.wiring import Services, build_services


def registered_kinds() -> list[str]:
    """The kinds the real wiring registers (a throwaway build: no database is touched)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None,
            env="development",
            var_dir=Path(folder),
            database_url=f"sqlite:///{folder}/kinds.db",
            secret_key=SECRET_KEY,
        )
        built = build_services(settings)
        try:
            return built.factors.kinds()
        finally:
            built.close()


KINDS = registered_kinds()

GARBAGE: list[FactorResponse] = [
    "",
    " ",
    "not a code",
    "\x00\x00\x00\x00\x00\x00",
    "１２３４５６",
    "9" * 200,
    "🙂" * 8,
    "----",
    {},
    {"id": "x", "type": "public-key", "response": {}},
    {"code": "123456"},
]


@dataclass
class Arrangement:
    """A member who has the factor, and how to make responses for them."""

    user_id: int
    right: Callable[[], FactorResponse]  # a fresh right response (each call may issue a new one)
    wrong: FactorResponse  # well formed, but not right
    malformed: FactorResponse  # a string of the wrong shape for this factor


def _app_user(services: Services, make_user, clock) -> Arrangement:
    member = make_user(with_totp=True)
    right = member.code(clock)
    return Arrangement(member.id, lambda: right, f"{(int(right) + 500_000) % 1_000_000:06d}", "12ab56")


def _email_user(services: Services, make_user, clock) -> Arrangement:
    member = make_user(role="staff")

    def right() -> str:
        clock.advance(seconds=3600)  # past the send limit, so a new code may be issued
        with services.db.transaction() as s:
            return services.email_codes.issue(s, user=s.get(User, member.id), purpose=CHALLENGE)

    with services.db.transaction() as s:
        services.email_codes.add_method(s, user=s.get(User, member.id))
    return Arrangement(member.id, right, "00000000", "1234")


def _backup_code_user(services: Services, make_user, clock) -> Arrangement:
    member = make_user(role="staff")
    with services.db.transaction() as s:
        codes = services.recovery_codes.generate(s, user=s.get(User, member.id))
    return Arrangement(member.id, lambda: codes[0], "zzzz-zzzz", "abc")


def _key_user(services: Services, make_user, clock) -> Arrangement:
    member = make_user(role="staff")
    origin = "http://127.0.0.1"
    with services.db.reading() as s:
        user = s.get(User, member.id)
    key = authenticator.SoftwareKey()
    registration = services.webauthn_keys.start_registration(user=user, served_origin=origin)
    services.webauthn_keys.finish_registration(
        user=user,
        registration_id=registration.registration_id,
        credential=authenticator.register(registration.options, key, origin=origin),
        name="Test key",
        context=RequestContext(),
    )

    def right() -> FactorResponse:
        options = services.webauthn_keys.reauth_options(user=user, served_origin=origin)
        return authenticator.sign_in_with(options, key, origin=origin)

    # Signed by another private key under the same credential id, for a live challenge.
    impostor = authenticator.SoftwareKey(credential_id=key.credential_id, user_handle=key.user_handle)
    wrong = authenticator.sign_in_with(
        services.webauthn_keys.reauth_options(user=user, served_origin=origin), impostor, origin=origin
    )
    return Arrangement(member.id, right, wrong, "123456")


ARRANGEMENTS: dict[str, Callable[..., Arrangement]] = {
    "webauthn": _key_user,
    "totp": _app_user,
    "email": _email_user,
    "recovery_code": _backup_code_user,
}


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def factor(services, kind):
    return services.factors.get(kind)


@pytest.fixture
def arranged(services, make_user, clock, kind) -> Arrangement:
    if kind not in ARRANGEMENTS:
        pytest.fail(f"the factor {kind!r} is registered but has no Arrangement in the contract test")
    return ARRANGEMENTS[kind](services, make_user, clock)


def snapshot(services: Services) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a refusal changed nothing."""
    with services.db.reading() as s:
        return {
            table.name: sorted(map(tuple, s.execute(select(table)).all()), key=repr)
            for table in Base.metadata.sorted_tables
        }


def verify(services: Services, factor, user_id: int, response: FactorResponse):
    with services.db.transaction() as s:
        return factor.verify(s, user=s.get(User, user_id), response=response)


def enabled(services: Services, factor, user_id: int) -> tuple[bool, bool]:
    """(is_enabled_for, listed by enabled_user_ids) for one user."""
    with services.db.reading() as s:
        listed = user_id in set(s.execute(factor.enabled_user_ids()).scalars())
        return factor.is_enabled_for(s, s.get(User, user_id)), listed


def test_every_factor_has_a_kind_and_a_label_of_its_own(services):
    labels = services.factors.labels()
    assert list(labels) == services.factors.kinds() == KINDS
    assert all(kind and label and label.strip() == label for kind, label in labels.items())
    assert len(set(labels.values())) == len(labels)
    assert all(services.factors.label(kind) == label for kind, label in labels.items())


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_garbage_never_normalises(factor, garbage):
    assert factor.normalize(garbage) is None


def test_a_wrong_response_is_refused_and_changes_nothing(services, factor, arranged):
    before = snapshot(services)
    assert verify(services, factor, arranged.user_id, arranged.wrong).outcome is Outcome.WRONG
    assert snapshot(services) == before


@pytest.mark.parametrize("structured", [False, True], ids=["malformed-code", "structured-garbage"])
def test_a_malformed_response_is_refused_as_malformed_and_changes_nothing(services, factor, arranged, structured):
    response = (
        {"id": "x", "type": "public-key", "response": {"clientDataJSON": ""}} if structured else arranged.malformed
    )
    before = snapshot(services)
    assert verify(services, factor, arranged.user_id, response).outcome is Outcome.MALFORMED
    assert snapshot(services) == before


def test_a_right_response_is_accepted_once_and_never_twice(services, factor, arranged):
    response = arranged.right()
    assert verify(services, factor, arranged.user_id, response).accepted
    again = verify(services, factor, arranged.user_id, response)
    assert not again.accepted and again.outcome is not Outcome.MALFORMED


def test_remove_leaves_the_factor_off_and_the_lists_agree(services, factor, arranged, make_user):
    bystander = make_user(role="staff")
    assert enabled(services, factor, arranged.user_id) == (True, True)
    assert enabled(services, factor, bystander.id) == (False, False)
    with services.db.transaction() as s:
        factor.remove(s, user=s.get(User, arranged.user_id))
    assert enabled(services, factor, arranged.user_id) == (False, False)


def test_registered_factors_are_exactly_those_the_wiring_builds(services):
    assert services.factors.kinds() == KINDS and all(services.factors.get(kind) is not None for kind in KINDS)
    assert otp.PERIOD == 30  # the app arrangement's codes are one step apart (RFC 6238 §4)
