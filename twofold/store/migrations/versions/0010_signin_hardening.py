"""sign-in hardening: flow ids stored hashed and bound to a browser; throttle lock windows

Revision ID: 0010_signin_hardening
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0010_signin_hardening"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Open flows were stored by their plain id; they live ten minutes, so they are ended
    # rather than converted (their sign-ins start again from the password).
    op.execute("DELETE FROM sign_in_flows")
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.String(length=32), type_=sa.String(length=64))
        batch_op.add_column(sa.Column("binding_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "throttle_windows",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("started_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("until", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("last_refused_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_windows")),
    )
    with op.batch_alter_table("throttle_windows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_throttle_windows_until"), ["until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("throttle_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_throttle_windows_until"))
    op.drop_table("throttle_windows")
    op.execute("DELETE FROM sign_in_flows")
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.drop_column("binding_hash")
        batch_op.alter_column("id", existing_type=sa.String(length=64), type_=sa.String(length=32))
