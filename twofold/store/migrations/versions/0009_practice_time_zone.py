"""practice time zone: pages and emails show the practice's local time

Revision ID: 0009_practice_time_zone
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_practice_time_zone"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
