"""Migration 0018_backchannel_logout matches the models, and goes down and up again."""

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


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def _differences(engine) -> list:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    return [
        d
        for d in diff
        if any(name in repr(d) for name in ("oidc_logout_notices", "backchannel_logout_uri", "oidc_tokens"))
    ]


def _has(engine) -> tuple[bool, bool]:
    found = inspect(engine)
    columns = {c["name"] for c in found.get_columns("oidc_clients")}
    indexed = {tuple(i["column_names"]) for i in found.get_indexes("oidc_tokens")}
    made = "oidc_logout_notices" in found.get_table_names(), "backchannel_logout_uri" in columns
    assert made[0] == (("session_id",) in indexed)
    return made


def test_the_migrated_tables_match_the_models(database_url):
    database = Database(database_url, pool_size=1)
    try:
        assert _has(database.engine) == (True, True)
        assert _differences(database.engine) == []
    finally:
        database.dispose()


def test_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'm.db'}", pool_size=1)
    try:
        config = alembic_config(database.url)
        command.upgrade(config, "0018_backchannel_logout")  # needs only the OpenID Connect tables
        assert _has(database.engine) == (True, True)
        command.downgrade(config, "0018_backchannel_logout@-1")
        assert _has(database.engine) == (False, False)
        upgrade(database.engine)
        assert _has(database.engine) == (True, True)
    finally:
        database.dispose()
