"""purge indexes: find what has ended without reading whole tables

Revision ID: 0011_purge_indexes
Revises: 0002_remembered_browsers, 0003_recovery_and_email, 0004_administration
"""

from alembic import op

revision = "0011_purge_indexes"
# It indexes tables those three make, so it follows (and joins) them; the foundation's tables too.
# (``depends_on`` would say the same without joining, but Alembic then fails to upgrade "heads"
# when the revisions share the foundation as their parent.)
down_revision = ("0002_remembered_browsers", "0003_recovery_and_email", "0004_administration")
branch_labels = None
depends_on = None

# (table, column): the column a purge looks rows up by (twofold/core/retention.py).
INDEXED = [
    ("sign_in_flows", "expires_at"),
    ("sessions", "expires_at"),
    ("email_codes", "expires_at"),
    ("remembered_browsers", "expires_at"),
    ("setup_links", "expires_at"),
    ("throttle_failures", "at"),
]


def upgrade() -> None:
    for table, column in INDEXED:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXED):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
