"""apps: a practice's web apps behind Twofold, and each session's first use of one

Revision ID: 0006_apps
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0006_apps"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("host", sa.String(length=262), nullable=True),
        sa.Column("allowed_roles", sa.JSON(), nullable=False),
        sa.Column("bypass_paths", sa.JSON(), nullable=False),
        sa.Column("reauth_minutes", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_apps_practice_id_practices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
        sa.UniqueConstraint("host", name=op.f("uq_apps_host")),
    )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_apps_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "app_accesses",
        sa.Column("session_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("app_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_app_accesses_app_id_apps"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_app_accesses_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("session_id", "app_id", name=op.f("pk_app_accesses")),
    )
    with op.batch_alter_table("app_accesses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_accesses_app_id"), ["app_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("app_accesses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_accesses_app_id"))
    op.drop_table("app_accesses")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_apps_practice_id"))
    op.drop_table("apps")
