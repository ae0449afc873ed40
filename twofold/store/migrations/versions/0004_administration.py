"""practice administration: set-up links and enrolment demands

Revision ID: 0004_administration
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0004_administration"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setup_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_setup_links_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_setup_links_token_hash")),
    )
    with op.batch_alter_table("setup_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_setup_links_user_id"), ["user_id"], unique=False)

    op.create_table(
        "enrolment_demands",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("due_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrolment_demands_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_enrolment_demands")),
    )


def downgrade() -> None:
    op.drop_table("enrolment_demands")
    with op.batch_alter_table("setup_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_setup_links_user_id"))

    op.drop_table("setup_links")
