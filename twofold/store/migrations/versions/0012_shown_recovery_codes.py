"""shown recovery codes: the batch just shown to a session, sealed, for its download and "saved" pages

Revision ID: 0012_shown_recovery_codes
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0012_shown_recovery_codes"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shown_recovery_codes",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sealed_codes", sa.Text(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_shown_recovery_codes_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_shown_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_shown_recovery_codes")),
    )
    with op.batch_alter_table("shown_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shown_recovery_codes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shown_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shown_recovery_codes_user_id"))
    op.drop_table("shown_recovery_codes")
