"""Migration 0011_purge_indexes: the expiry columns a purge searches are indexed as the models say,
after the migrations that make their tables, and the migration goes down and up again."""

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

INDEXED = [
    ("sign_in_flows", "expires_at"),
    ("sessions", "expires_at"),
    ("email_codes", "expires_at"),
    ("remembered_browsers", "expires_at"),
    ("setup_links", "expires_at"),
    ("throttle_failures", "at"),
]


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def indexed_columns(engine, table: str) -> set[tuple[str, ...]]:
    return {tuple(i["column_names"]) for i in inspect(engine).get_indexes(table)}


def test_the_expiry_columns_are_indexed_as_the_models_say(database_url):
    database = Database(database_url, pool_size=1)
    try:
        for table, column in INDEXED:
            assert (column,) in indexed_columns(database.engine, table), table
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in diff if any(f"ix_{t}_{c}" in repr(d) for t, c in INDEXED)] == []
    finally:
        database.dispose()


def test_the_migration_runs_after_the_tables_it_indexes_and_goes_down_and_up(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0011_purge_indexes")  # only this branch and what it depends on
        assert ("expires_at",) in indexed_columns(database.engine, "setup_links")
        command.downgrade(config, "0004_administration")
        assert ("expires_at",) not in indexed_columns(database.engine, "setup_links")
        upgrade(database.engine)
        assert ("expires_at",) in indexed_columns(database.engine, "remembered_browsers")
    finally:
        database.dispose()
