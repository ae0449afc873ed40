"""recovery codes, email codes, email method, undelivered mail

Revision ID: 0003_recovery_and_email
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0003_recovery_and_email"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_email_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_codes")),
    )
    with op.batch_alter_table("email_codes", schema=None) as batch_op:
        batch_op.create_index("ix_email_codes_user_id_purpose", ["user_id", "purpose"], unique=False)

    op.create_table(
        "email_methods",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("confirmed_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_email_methods_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_email_methods")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_id_code_hash"),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "undelivered_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("failed_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_undelivered_mail_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_undelivered_mail")),
    )
    with op.batch_alter_table("undelivered_mail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_undelivered_mail_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("undelivered_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_undelivered_mail_user_id"))

    op.drop_table("undelivered_mail")
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))

    op.drop_table("recovery_codes")
    op.drop_table("email_methods")
    with op.batch_alter_table("email_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_email_codes_user_id_purpose")

    op.drop_table("email_codes")
