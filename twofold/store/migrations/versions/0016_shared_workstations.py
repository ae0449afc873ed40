"""shared workstations: marked browsers, their sessions, and the policy's shorter idle timeout

Revision ID: 0016_shared_workstations
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0016_shared_workstations"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workstations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("last_used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_workstations_practice_id_practices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workstations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_workstations_token_hash")),
    )
    with op.batch_alter_table("workstations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workstations_practice_id"), ["practice_id"], unique=False)
    # Plain ADD COLUMNs: neither table is rebuilt on SQLite.
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workstation_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shared_workstation_idle_minutes", sa.Integer(), server_default="2", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("shared_workstation_idle_minutes")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("workstation_id")
    with op.batch_alter_table("workstations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workstations_practice_id"))
    op.drop_table("workstations")
