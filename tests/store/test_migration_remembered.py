"""Migration 0002_remembered_browsers matches the model, and goes down and up again."""

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

TABLE = "remembered_browsers"


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def _differences(engine) -> list:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    return [d for d in diff if TABLE in repr(d)]


def test_the_migrated_table_matches_the_model(database_url):
    database = Database(database_url, pool_size=1)
    try:
        assert TABLE in inspect(database.engine).get_table_names()
        assert _differences(database.engine) == []
        indexes = {tuple(i["column_names"]) for i in inspect(database.engine).get_indexes(TABLE)}
        uniques = {tuple(u["column_names"]) for u in inspect(database.engine).get_unique_constraints(TABLE)}
        assert ("user_id",) in indexes and ("token_hash",) in uniques
    finally:
        database.dispose()


def test_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0002_remembered_browsers")  # this branch only: others migrate independently
        assert TABLE in inspect(database.engine).get_table_names()
        command.downgrade(config, "0001_foundation")
        assert TABLE not in inspect(database.engine).get_table_names()
        upgrade(database.engine)
        assert TABLE in inspect(database.engine).get_table_names()
    finally:
        database.dispose()
