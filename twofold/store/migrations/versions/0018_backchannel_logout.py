"""back-channel logout: an app's logout URI, and the logouts owed to apps

Revision ID: 0018_backchannel_logout
Revises: 0007_oidc

A plain ADD COLUMN on ``oidc_clients`` (SQLite does not rebuild the table), a new table, and an
index on ``oidc_tokens.session_id``: a session's end looks up the apps it gave tokens to.
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0018_backchannel_logout"
down_revision = "0007_oidc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backchannel_logout_uri", sa.String(length=2000), nullable=True))
    op.create_table(
        "oidc_logout_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("next_try_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.String(length=200), nullable=True),
        sa.Column("delivered_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("given_up_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["oidc_clients.id"],
            name=op.f("fk_oidc_logout_notices_client_pk_oidc_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_logout_notices")),
    )
    with op.batch_alter_table("oidc_logout_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_logout_notices_client_pk"), ["client_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_logout_notices_next_try_at"), ["next_try_at"], unique=False)
    op.create_index(op.f("ix_oidc_tokens_session_id"), "oidc_tokens", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_oidc_tokens_session_id"), table_name="oidc_tokens")
    with op.batch_alter_table("oidc_logout_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_logout_notices_next_try_at"))
        batch_op.drop_index(batch_op.f("ix_oidc_logout_notices_client_pk"))
    op.drop_table("oidc_logout_notices")
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.drop_column("backchannel_logout_uri")
