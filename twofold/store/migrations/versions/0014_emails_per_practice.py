"""emails per practice: an address is unique within a practice and among claimed accounts

Revision ID: 0014_emails_per_practice
Revises: 0001_foundation

A practice may add an address that has an account in another practice: the new row is
pending (no password chosen) and its owner may accept the invitation. So ``users.email``
is no longer unique on its own: it is unique per practice, and unique among accounts that
have a password (a partial unique index), so one person still has one account.

SQLite cannot drop a table's UNIQUE constraint, so there the table is rebuilt. A rebuild
drops the old table, and with foreign keys on that would delete every row that refers to
a member (sessions, factors, ...) through ON DELETE CASCADE. Foreign keys can only be
switched off outside a transaction, so the rebuild commits what ran before it, runs with
them off in a transaction of its own, checks every reference, and turns them back on.
"""

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0014_emails_per_practice"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

CLAIMED = sa.text("password_changed_at IS NOT NULL")


def upgrade() -> None:
    def change(batch_op: Any) -> None:
        batch_op.drop_constraint("uq_users_email", type_="unique")
        batch_op.create_unique_constraint("uq_users_practice_id_email", ["practice_id", "email"])

    # Each step only if not done yet: on SQLite the rebuild commits on its own, so an upgrade
    # stopped after it (before alembic records this revision) must be able to run again.
    inspector = sa.inspect(op.get_bind())
    if "uq_users_email" in {c["name"] for c in inspector.get_unique_constraints("users")}:
        _alter_users(change)
    if "uq_users_claimed_email" not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("users")}:
        op.create_index(
            "uq_users_claimed_email", "users", ["email"], unique=True, sqlite_where=CLAIMED, postgresql_where=CLAIMED
        )


def downgrade() -> None:
    """Fails while an address is in more than one practice (a pending invitation): remove those rows first."""
    op.drop_index("uq_users_claimed_email", table_name="users")

    def change(batch_op: Any) -> None:
        batch_op.drop_constraint("uq_users_practice_id_email", type_="unique")
        batch_op.create_unique_constraint("uq_users_email", ["email"])

    _alter_users(change)


def _alter_users(change: Callable[[Any], None]) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        with op.batch_alter_table("users") as batch_op:
            change(batch_op)
        return
    driver: Any = bind.connection.driver_connection
    was_in_transaction = driver.in_transaction
    if was_in_transaction:
        driver.execute("COMMIT")
    foreign_keys = driver.execute("PRAGMA foreign_keys").fetchone()[0]
    driver.execute("PRAGMA foreign_keys=OFF")
    driver.execute("BEGIN IMMEDIATE")
    try:
        with op.batch_alter_table("users", recreate="always") as batch_op:
            change(batch_op)
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"rebuilding users broke {len(broken)} references")
        driver.execute("COMMIT")
    except BaseException:
        driver.execute("ROLLBACK")
        raise
    finally:
        driver.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if was_in_transaction:
            driver.execute("BEGIN")
