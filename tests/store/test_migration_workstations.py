"""Migration 0016_shared_workstations matches the models, keeps existing practices and sessions, and goes
down and up again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.conftest import backends
from twofold.store.db import Database
from twofold.store.migrate import alembic_config, upgrade
from twofold.store.models import Base

TABLES = ("workstations", "sessions", "practices")


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def test_the_migrated_tables_match_the_models(database_url):
    database = Database(database_url, pool_size=1)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert [d for d in diff if any(f"'{table}'" in repr(d) for table in TABLES)] == []
        indexes = {index["name"] for index in inspect(database.engine).get_indexes("workstations")}
        assert "ix_workstations_practice_id" in indexes
    finally:
        database.dispose()


def test_existing_practices_get_the_default_and_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0001_foundation")
        with database.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO practices (name, created_at, require_two_factor, required_roles, grace_days, "
                     "allowed_methods, remember_browser_days, remember_browser_idle_days, idle_timeout_minutes, "
                     "session_max_hours) VALUES ('Old Practice', :now, 0, '[]', 7, '[]', 30, 14, 15, 12)"),
                {"now": datetime(2026, 1, 1, tzinfo=UTC)},
            )  # fmt: skip
        command.upgrade(config, "0016_shared_workstations")  # this branch only: others migrate independently
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT shared_workstation_idle_minutes FROM practices")).scalar_one() == 2
        assert "workstation_id" in {c["name"] for c in inspect(database.engine).get_columns("sessions")}
        command.downgrade(config, "0001_foundation")
        assert "workstations" not in inspect(database.engine).get_table_names()
        assert "workstation_id" not in {c["name"] for c in inspect(database.engine).get_columns("sessions")}
        upgrade(database.engine)
        assert "workstations" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()
