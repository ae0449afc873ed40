"""Migration 0014_emails_per_practice: an address is unique per practice and among claimed accounts.

SQLite rebuilds the users table for it; with foreign keys on, a careless rebuild would delete
every session and factor of every member (ON DELETE CASCADE). This runs the migration on data,
with foreign keys on, on both databases, and checks nothing else was touched.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from tests.conftest import POSTGRES_URL, backends, skip_or_fail
from twofold.store.db import Database
from twofold.store.migrate import alembic_config, upgrade
from twofold.store.models import Base

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@contextmanager
def _throwaway(backend: str, tmp_path):
    """A database of its own: this test migrates only part of the way, which the shared one must never be."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'emails.db'}"
        return
    if not POSTGRES_URL:
        skip_or_fail("PostgreSQL is not available")
    admin = create_engine(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    name = f"twofold_emails_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(database: Database, target: str, *, down: bool = False) -> None:
    """Through the application's own engine (foreign keys on, as ``twofold db upgrade`` runs it)."""
    config = alembic_config(database.url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)


def test_the_migrated_users_table_matches_the_model(database_url):
    database = Database(database_url, pool_size=1)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert [d for d in diff if "'users'" in repr(d) or "uq_users" in repr(d)] == []
        names = {c["name"] for c in inspect(database.engine).get_unique_constraints("users")}
        assert names == {"uq_users_practice_id_email"}
        assert "uq_users_claimed_email" in {i["name"] for i in inspect(database.engine).get_indexes("users")}
    finally:
        database.dispose()


def test_the_rebuild_keeps_every_member_and_everything_that_refers_to_them(backend, tmp_path):
    with _throwaway(backend, tmp_path) as url:
        database = Database(url, pool_size=1)
        try:
            _migrate(database, "0001_foundation")
            tables = MetaData()
            tables.reflect(bind=database.engine)
            practices, users, sessions = tables.tables["practices"], tables.tables["users"], tables.tables["sessions"]
            with database.engine.begin() as connection:
                for practice_id in (1, 2):
                    connection.execute(
                        insert(practices).values(
                            id=practice_id,
                            name=f"Practice {practice_id}",
                            created_at=START.replace(tzinfo=None),
                            require_two_factor=False,
                            required_roles=[],
                            grace_days=7,
                            allowed_methods=["totp"],
                            remember_browser_days=30,
                            remember_browser_idle_days=14,
                            idle_timeout_minutes=15,
                            session_max_hours=12,
                        )
                    )
                for user_id, practice_id, email, claimed in (
                    (1, 1, "a@one.example", True),
                    (2, 1, "b@one.example", False),
                    (3, 2, "c@two.example", True),
                ):
                    connection.execute(
                        insert(users).values(
                            id=user_id,
                            practice_id=practice_id,
                            email=email,
                            name=email,
                            role="staff",
                            password_hash="x",
                            active=True,
                            created_at=START.replace(tzinfo=None),
                            password_changed_at=START.replace(tzinfo=None) if claimed else None,
                        )
                    )
                    connection.execute(
                        insert(sessions).values(
                            token_hash=f"{user_id:064d}",
                            user_id=user_id,
                            created_at=START.replace(tzinfo=None),
                            last_seen_at=START.replace(tzinfo=None),
                            expires_at=(START + timedelta(hours=1)).replace(tzinfo=None),
                        )
                    )

            _migrate(database, "0014_emails_per_practice")

            with database.engine.begin() as connection:
                assert connection.execute(select(func.count()).select_from(users)).scalar_one() == 3
                assert connection.execute(select(func.count()).select_from(sessions)).scalar_one() == 3
                # A pending row of practice 2 may share an address with practice 1's claimed account.
                connection.execute(
                    insert(users).values(
                        id=4,
                        practice_id=2,
                        email="a@one.example",
                        name="invited",
                        role="staff",
                        password_hash="x",
                        active=True,
                        created_at=START.replace(tzinfo=None),
                    )
                )

            def refused(values: dict) -> None:
                row = {
                    "practice_id": 1,
                    "name": "x",
                    "role": "staff",
                    "password_hash": "x",
                    "active": True,
                    "created_at": START.replace(tzinfo=None),
                }
                with database.engine.begin() as connection, pytest.raises(IntegrityError):
                    connection.execute(insert(users).values({**row, **values}))

            refused({"email": "b@one.example"})  # the same practice: never twice
            refused({"practice_id": 2, "email": "a@one.example", "password_changed_at": START.replace(tzinfo=None)})
            if backend == "sqlite":  # the references still hold, and still cascade
                with database.engine.connect() as connection:
                    assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
                    assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

            # An upgrade stopped after SQLite's rebuild committed, before alembic recorded 0014: it runs again.
            command.stamp(alembic_config(database.url), "0001_foundation")
            _migrate(database, "0014_emails_per_practice")
            assert {c["name"] for c in inspect(database.engine).get_unique_constraints("users")} == {
                "uq_users_practice_id_email"
            }

            with database.engine.begin() as connection:  # back down needs one row per address
                connection.execute(users.delete().where(users.c.id == 4))
            _migrate(database, "0001_foundation", down=True)
            assert {c["name"] for c in inspect(database.engine).get_unique_constraints("users")} == {"uq_users_email"}
            with database.engine.begin() as connection:
                assert connection.execute(select(func.count()).select_from(sessions)).scalar_one() == 3
            upgrade(database.engine)
            assert "uq_users_claimed_email" in {i["name"] for i in inspect(database.engine).get_indexes("users")}
        finally:
            database.dispose()
