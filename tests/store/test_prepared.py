"""Prepared statements give what Session.execute() gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, update

from tests.conftest import backends
from twofold.store.db import Database
from twofold.store.models import Practice, ThrottleFailure
from twofold.store.prepared import Prepared

PRACTICES = Practice.__table__
FAILURES = ThrottleFailure.__table__


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def db(database_url):
    database = Database(database_url, pool_size=4)
    yield database
    database.dispose()


def add_practice(s, name: str, **policy) -> int:
    practice = Practice(name=name, created_at=datetime.now(UTC), **policy)
    s.add(practice)
    s.flush()
    return practice.id


BY_ID = Prepared(select(PRACTICES).where(PRACTICES.c.id == bindparam("practice_id")))
NAMES = Prepared(select(PRACTICES.c.name).order_by(PRACTICES.c.id))


def test_a_select_converts_each_column_as_the_orm_would(db):
    since = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    with db.transaction() as s:
        practice_id = add_practice(
            s,
            "Elm Street Clinic",
            require_two_factor=True,
            required_roles=["provider", "staff"],
            two_factor_required_since=since,
            allowed_methods=["totp"],
        )
    with db.reading() as s:
        row = BY_ID.execute(s, {"practice_id": practice_id}).one_or_none()
        orm = s.get(Practice, practice_id)
    fields = dict(zip(PRACTICES.columns.keys(), row, strict=True))
    assert fields["name"] == "Elm Street Clinic"
    assert fields["require_two_factor"] is True
    assert fields["required_roles"] == ["provider", "staff"] and fields["allowed_methods"] == ["totp"]
    assert fields["two_factor_required_since"] == since and fields["two_factor_required_since"].tzinfo is not None
    assert fields == {column.key: getattr(orm, column.key) for column in PRACTICES.columns}


def test_no_row_and_several_rows(db):
    with db.reading() as s:
        assert BY_ID.execute(s, {"practice_id": 987654}).one_or_none() is None
    with db.transaction() as s:
        add_practice(s, "A")
        add_practice(s, "B")
    with db.reading() as s:
        assert NAMES.execute(s).scalars() == ["A", "B"]
        with pytest.raises(ValueError, match="more than one row"):
            NAMES.execute(s).one_or_none()


def test_insert_and_update_bind_datetimes_and_report_rowcount(db):
    at = datetime(2026, 11, 28, 9, 0, 0, 1, tzinfo=UTC)
    add = Prepared(insert(FAILURES))
    bump = Prepared(
        update(FAILURES)
        .where(FAILURES.c.key == bindparam("k"), FAILURES.c.at < bindparam("before"))
        .values(at=FAILURES.c.at)  # a no-op change, to count the rows the WHERE matches
    )
    with db.transaction() as s:
        add.execute(s, {"key": "code:user:1", "at": at})
        add.execute(s, {"key": "code:user:1", "at": at + timedelta(seconds=5)})
        assert bump.execute(s, {"k": "code:user:1", "before": at + timedelta(seconds=1)}).rowcount == 1
        assert bump.execute(s, {"k": "code:user:2", "before": at + timedelta(seconds=10)}).rowcount == 0
    with db.reading() as s:
        stored = s.execute(select(ThrottleFailure.at).order_by(ThrottleFailure.at)).scalars().all()
    assert stored == [at, at + timedelta(seconds=5)]


def test_a_value_bound_in_the_statement_itself_is_used(db):
    with db.transaction() as s:
        practice_id = add_practice(s, "Grace", grace_days=7)
    longer = Prepared(
        update(PRACTICES)
        .where(PRACTICES.c.id == bindparam("practice_id"))
        .values(grace_days=PRACTICES.c.grace_days + 3)
    )
    with db.transaction() as s:
        assert longer.execute(s, {"practice_id": practice_id}).rowcount == 1
    with db.reading() as s:
        assert s.get(Practice, practice_id).grace_days == 10


def test_it_sees_the_orm_changes_pending_in_its_transaction(db):
    with db.transaction() as s:
        s.add(Practice(name="Pending", created_at=datetime.now(UTC)))  # not flushed yet
        assert NAMES.execute(s).scalars() == ["Pending"]


def test_a_failed_transaction_takes_its_prepared_changes_with_it(db):
    add = Prepared(insert(FAILURES))

    def add_then_abandon() -> None:
        with db.transaction() as s:
            add.execute(s, {"key": "k", "at": datetime.now(UTC)})
            raise RuntimeError("abandon")

    with pytest.raises(RuntimeError):
        add_then_abandon()
    with db.reading() as s:
        assert s.execute(select(ThrottleFailure)).first() is None


def test_an_in_list_is_refused_when_compiled(db):
    ids = Prepared(select(PRACTICES.c.id).where(PRACTICES.c.id.in_(bindparam("ids", expanding=True))))
    with db.reading() as s, pytest.raises(ValueError, match="IN lists"):
        ids.execute(s, {"ids": [1, 2]})
