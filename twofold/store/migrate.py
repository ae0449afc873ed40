"""Alembic, run from code: ``twofold serve`` and ``twofold db upgrade`` call ``upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from twofold.crypto.chain import ChainKeys

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, *, secret_key: str | None = None) -> None:
    """Apply every migration not yet applied (all heads: features migrate independently).

    ``secret_key`` is needed when a migration rewrites keyed data: re-keying an existing
    audit log (0013) refuses to run without it.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    if secret_key:
        config.attributes["audit_link_key"] = ChainKeys(secret_key).link_key
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def current_heads(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())
