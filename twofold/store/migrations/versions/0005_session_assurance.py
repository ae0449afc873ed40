"""session assurance: when and how the member last proved who they are

Revision ID: 0005_session_assurance
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0005_session_assurance"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authenticated_at", twofold.store.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("authenticated_at")
