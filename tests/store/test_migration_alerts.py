"""Migration 0015_admin_alerts matches the models, and goes down and up again."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tests.conftest import backends
from twofold.store.db import Database
from twofold.store.migrate import alembic_config, upgrade
from twofold.store.models import Base

TABLES = ("alerts", "alert_preferences", "alert_digests")


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def _differences(engine) -> list:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    return [d for d in diff if any(table in repr(d) for table in TABLES)]


def test_the_migrated_tables_match_the_models(database_url):
    database = Database(database_url, pool_size=1)
    try:
        assert set(TABLES) <= set(inspect(database.engine).get_table_names())
        assert _differences(database.engine) == []
        uniques = {tuple(u["column_names"]) for u in inspect(database.engine).get_unique_constraints("alert_digests")}
        assert ("user_id", "day") in uniques  # one digest per admin and day
    finally:
        database.dispose()


def test_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0001_foundation")
        command.upgrade(config, "0015_admin_alerts")  # needs only the foundation's practices and users
        assert set(TABLES) <= set(inspect(database.engine).get_table_names())
        command.downgrade(config, "0015_admin_alerts@-1")
        assert not set(TABLES) & set(inspect(database.engine).get_table_names())
        upgrade(database.engine)
        assert set(TABLES) <= set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
