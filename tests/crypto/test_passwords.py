"""Passwords: argon2id at or above OWASP's minimum, rehashed when the settings change,
a bounded number hashed at once, and one verification whether or not the account exists.
"""

from __future__ import annotations

import re
import threading

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from tests.conftest import PASSWORD
from twofold.context import RequestContext
from twofold.crypto.passwords import PasswordHasher
from twofold.errors import InvalidCredentials
from twofold.settings import Settings
from twofold.store.models import AuditEvent, User
from twofold.wiring import build_services

ARGON2ID = re.compile(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+")


def parameters(stored_hash: str) -> tuple[int, int, int]:
    match = ARGON2ID.fullmatch(stored_hash)
    assert match, stored_hash
    return tuple(int(part) for part in match.groups())


def stored_hash(services, user_id: int) -> str:
    with services.db.reading() as s:
        return s.get(User, user_id).password_hash


def events(services, name: str) -> list[AuditEvent]:
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.event == name)).scalars().all()


class CountingArgon2:
    """Wraps argon2-cffi's hasher: counts calls and how many run at the same moment."""

    def __init__(self, real, gate: threading.Event | None = None) -> None:
        self._real = real
        self._gate = gate
        self._lock = threading.Condition()
        self.calls = {"hash": 0, "verify": 0}
        self.active = 0
        self.most_active = 0

    def _enter(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self._lock.notify_all()

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1
            self._lock.notify_all()

    def wait_for(self, predicate, timeout: float = 10) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: predicate(self), timeout=timeout)

    def hash(self, password, *args, **kwargs):
        self._enter("hash")
        try:
            if self._gate is not None:
                self._gate.wait(timeout=10)
            return self._real.hash(password, *args, **kwargs)
        finally:
            self._leave()

    def verify(self, stored, password):
        self._enter("verify")
        try:
            if self._gate is not None:
                self._gate.wait(timeout=10)
            return self._real.verify(stored, password)
        finally:
            self._leave()

    def __getattr__(self, name):
        return getattr(self._real, name)


# -- the stored hash ----------------------------------------------------------------


def test_stored_hashes_are_argon2id_at_owasp_minimum_or_above(services, make_user):
    member = make_user()
    memory, time_cost, parallelism = parameters(stored_hash(services, member.id))
    assert memory >= 19456 and time_cost >= 2 and parallelism == 1


def test_the_default_settings_are_owasps_minimum():
    settings = Settings(_env_file=None)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (19456, 2, 1)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TWOFOLD_ARGON2_MEMORY_KIB", "19455"),
        ("TWOFOLD_ARGON2_MEMORY_KIB", "1024"),
        ("TWOFOLD_ARGON2_TIME_COST", "1"),
        ("TWOFOLD_ARGON2_PARALLELISM", "0"),
    ],
)
def test_settings_refuse_argon2_parameters_below_the_minimum(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


@pytest.mark.parametrize("fields", [{"argon2_memory_kib": 4096}, {"argon2_time_cost": 1}, {"argon2_parallelism": 0}])
def test_settings_refuse_argon2_parameters_below_the_minimum_in_code(fields):
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **fields)


def test_a_password_verifies_and_a_wrong_one_does_not():
    hasher = PasswordHasher(time_cost=2, memory_kib=19456, parallelism=1, concurrency=1)
    stored = hasher.hash("a long enough password")
    assert hasher.verify(stored, "a long enough password")
    assert not hasher.verify(stored, "a long enough passworD")
    assert not hasher.verify("not a hash at all", "a long enough password")
    assert not hasher.verify(None, "twofold-timing-equaliser")  # no account: never true, whatever is typed


# -- rehash when the settings change ---------------------------------------------------


def test_changed_parameters_rehash_the_password_at_the_next_sign_in(services, settings, clock, notifier, make_user):
    member = make_user()
    before = stored_hash(services, member.id)
    stronger = build_services(settings.model_copy(update={"argon2_time_cost": 3}), clock=clock, notifier=notifier)
    try:
        with pytest.raises(InvalidCredentials):  # a failed sign-in changes nothing
            stronger.sign_in.start_sign_in(email=member.email, password="wrong password", context=RequestContext())
        assert stored_hash(services, member.id) == before

        stronger.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=RequestContext())
        after = stored_hash(services, member.id)
        assert after != before and parameters(after) == (19456, 3, 1)
        assert [e.subject_id for e in events(services, "account:password:rehashed")] == [member.id]

        stronger.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=RequestContext())
        assert len(events(services, "account:password:rehashed")) == 1  # once, not at every sign-in
        assert stronger.passwords.verify(after, PASSWORD)
    finally:
        stronger.close()


def test_unchanged_parameters_never_rehash(services, make_user):
    member = make_user()
    before = stored_hash(services, member.id)
    services.sign_in.start_sign_in(email=member.email, password=PASSWORD, context=RequestContext())
    assert stored_hash(services, member.id) == before
    assert events(services, "account:password:rehashed") == []


# -- bounded concurrency -------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_the_number_of_hashes_at_once_is_bounded(concurrency):
    hasher = PasswordHasher(time_cost=2, memory_kib=19456, parallelism=1, concurrency=concurrency)
    stored = hasher.hash("a long enough password")
    gate = threading.Event()
    counting = CountingArgon2(hasher._argon2, gate)
    hasher._argon2 = counting
    callers = 3 * concurrency + 2
    started = threading.Barrier(callers + 1)

    def sign_in(index: int) -> None:
        started.wait(timeout=10)
        if index % 2:
            hasher.verify(stored, "a long enough password")
        else:
            hasher.hash("another long password")

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    started.wait(timeout=10)
    # Every slot is taken and held by the gate; the other callers queue on the semaphore.
    assert counting.wait_for(lambda c: c.active == concurrency)
    assert counting.active == concurrency
    gate.set()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(counting.calls.values()) == callers
    assert counting.most_active == concurrency


def test_sign_ins_share_the_services_bound(services, make_user):
    assert services.passwords._slots._initial_value == services.settings.password_hash_concurrency


# -- one verification whether or not the account exists ---------------------------------------


@pytest.mark.parametrize("case", ["unknown_email", "wrong_password", "right_password", "inactive_account"])
def test_every_sign_in_answer_costs_exactly_one_verification(services, make_user, case):
    member = make_user()
    if case == "inactive_account":
        with services.db.transaction() as s:
            s.get(User, member.id).active = False
    counting = CountingArgon2(services.passwords._argon2)
    services.passwords._argon2 = counting
    email = "nobody@riverside.example" if case == "unknown_email" else member.email
    password = PASSWORD if case in ("right_password", "inactive_account") else "wrong password"
    try:
        services.sign_in.start_sign_in(email=email, password=password, context=RequestContext())
    except InvalidCredentials:
        assert case != "right_password"
    assert counting.calls == {"hash": 0, "verify": 1}


def test_a_throttled_sign_in_costs_no_verification_for_anyone(services, make_user, clock):
    from twofold.errors import Throttled

    member = make_user()
    counting = CountingArgon2(services.passwords._argon2)
    services.passwords._argon2 = counting
    for email in (member.email, "nobody@riverside.example"):
        for _ in range(5):
            with pytest.raises(InvalidCredentials):
                services.sign_in.start_sign_in(email=email, password="wrong password", context=RequestContext())
        with pytest.raises(Throttled):
            services.sign_in.start_sign_in(email=email, password=PASSWORD, context=RequestContext())
    assert counting.calls == {"hash": 0, "verify": 10}
