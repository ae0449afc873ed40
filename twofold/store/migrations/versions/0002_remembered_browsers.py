"""remembered browsers

Revision ID: 0002_remembered_browsers
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0002_remembered_browsers"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remembered_browsers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("revoked_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_remembered_browsers_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remembered_browsers")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_remembered_browsers_token_hash")),
    )
    with op.batch_alter_table("remembered_browsers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_remembered_browsers_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("remembered_browsers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remembered_browsers_user_id"))

    op.drop_table("remembered_browsers")
