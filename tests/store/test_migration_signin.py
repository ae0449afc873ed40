"""Migration 0010_signin_hardening matches the models, and goes down and up again."""

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

TABLES = ("sign_in_flows", "throttle_windows")


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def test_the_migrated_tables_match_the_models(database_url):
    database = Database(database_url, pool_size=1)
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert [d for d in diff if any(table in repr(d) for table in TABLES)] == []
        columns = {c["name"]: c for c in inspect(database.engine).get_columns("sign_in_flows")}
        assert columns["id"]["type"].length == 64 and "binding_hash" in columns
    finally:
        database.dispose()


def test_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0010_signin_hardening")  # this branch only: others migrate independently
        assert "throttle_windows" in inspect(database.engine).get_table_names()
        command.downgrade(config, "0001_foundation")
        assert "throttle_windows" not in inspect(database.engine).get_table_names()
        assert "binding_hash" not in {c["name"] for c in inspect(database.engine).get_columns("sign_in_flows")}
        upgrade(database.engine)
        assert "throttle_windows" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()


def test_longer_return_addresses_go_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)

        def return_to_length() -> int:
            columns = {c["name"]: c for c in inspect(database.engine).get_columns("sign_in_flows")}
            return columns["return_to"]["type"].length

        command.upgrade(config, "0001_foundation")
        assert return_to_length() == 512
        command.upgrade(config, "0017_longer_return_urls")
        assert return_to_length() == 2048
        command.downgrade(config, "0001_foundation")
        assert return_to_length() == 512
        upgrade(database.engine)
        assert return_to_length() == 2048
    finally:
        database.dispose()
