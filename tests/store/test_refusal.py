"""``Refusal``: a refused block keeps what it wrote (the audit event, the throttle's count),
then its error reaches the caller; any other error rolls the block back. On every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from twofold.errors import InvalidCode
from twofold.store.db import Database, Refusal
from twofold.store.models import ThrottleFailure


@pytest.fixture
def db(database_url):
    database = Database(database_url, pool_size=4)
    yield database
    database.dispose()


def count(db: Database, key: str) -> int:
    with db.reading() as s:
        return s.execute(
            select(func.count()).select_from(ThrottleFailure).where(ThrottleFailure.key == key)
        ).scalar_one()


def test_a_refusal_commits_the_block_then_raises_its_error(db):

    def block_then_refuse() -> None:
        with db.transaction() as s:
            s.add(ThrottleFailure(key="refused", at=datetime.now(UTC)))
            raise Refusal(InvalidCode("not right"))

    with pytest.raises(InvalidCode) as raised:
        block_then_refuse()
    assert raised.value.message == "not right" and raised.value.__cause__ is None
    assert count(db, "refused") == 1


def test_any_other_error_rolls_the_block_back(db):

    def write_then_fail() -> None:
        with db.transaction() as s:
            s.add(ThrottleFailure(key="failed", at=datetime.now(UTC)))
            s.flush()
            raise InvalidCode()

    with pytest.raises(InvalidCode):
        write_then_fail()
    assert count(db, "failed") == 0
