"""passkeys and security keys: WebAuthn credentials and challenges, and the practice's passkey policy

Revision ID: 0008_passkeys
Revises: 0001_foundation

Practices that exist already get ``webauthn`` in their allowed methods, as a new
practice does (every registered method is allowed until an admin says otherwise).
"""

import json

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0008_passkeys"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("user_handle", sa.String(length=128), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("device_bound", sa.Boolean(), nullable=True),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("discoverable", sa.Boolean(), nullable=True),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_webauthn_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_credentials")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_webauthn_credentials_credential_id")),
    )
    with op.batch_alter_table("webauthn_credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webauthn_credentials_user_id"), ["user_id"], unique=False)
    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("flow_id", sa.String(length=64), nullable=True),
        sa.Column("rp_id", sa.String(length=255), nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("user_verification", sa.String(length=16), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_webauthn_challenges_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_challenges")),
        sa.UniqueConstraint("challenge_hash", name=op.f("uq_webauthn_challenges_challenge_hash")),
    )
    with op.batch_alter_table("webauthn_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webauthn_challenges_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_webauthn_challenges_expires_at"), ["expires_at"], unique=False)
    with op.batch_alter_table("practices", schema=None) as batch_op:
        # A plain "1" (true on both databases): an expression default would make SQLite rebuild the table.
        batch_op.add_column(sa.Column("passkey_sign_in", sa.Boolean(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("phishing_resistant_roles", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(
            sa.Column("phishing_resistant_since", twofold.store.models.base.UTCDateTime(), nullable=True)
        )
    practices = sa.table("practices", sa.column("id", sa.Integer()), sa.column("allowed_methods", sa.JSON()))
    connection = op.get_bind()
    for practice_id, methods in connection.execute(sa.select(practices.c.id, practices.c.allowed_methods)).all():
        methods = json.loads(methods) if isinstance(methods, str) else list(methods or [])
        if "webauthn" not in methods:
            connection.execute(
                practices.update().where(practices.c.id == practice_id).values(allowed_methods=[*methods, "webauthn"])
            )


def downgrade() -> None:
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("phishing_resistant_since")
        batch_op.drop_column("phishing_resistant_roles")
        batch_op.drop_column("passkey_sign_in")
    with op.batch_alter_table("webauthn_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webauthn_challenges_expires_at"))
        batch_op.drop_index(batch_op.f("ix_webauthn_challenges_user_id"))
    op.drop_table("webauthn_challenges")
    with op.batch_alter_table("webauthn_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webauthn_credentials_user_id"))
    op.drop_table("webauthn_credentials")
