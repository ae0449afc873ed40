"""oidc: OpenID Connect clients (of apps), signing keys, subjects, pending authorisations, codes and tokens

Revision ID: 0007_oidc
Revises: 0001_foundation
Depends on: 0006_apps (a client belongs to an app)
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0007_oidc"
down_revision = "0001_foundation"
branch_labels = None
depends_on = "0006_apps"


def upgrade() -> None:
    op.create_table(
        "oidc_signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_jwk_sealed", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("retired_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_signing_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_oidc_signing_keys_kid")),
    )
    op.create_table(
        "oidc_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], name=op.f("fk_oidc_clients_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_clients")),
        sa.UniqueConstraint("app_id", name=op.f("uq_oidc_clients_app_id")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oidc_clients_client_id")),
    )
    op.create_table(
        "oidc_subjects",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_subjects_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_oidc_subjects")),
        sa.UniqueConstraint("subject", name=op.f("uq_oidc_subjects_subject")),
    )
    op.create_table(
        "oidc_authorization_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("nonce", sa.String(length=500), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("auth_time", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("amr", sa.String(length=64), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["oidc_clients.id"],
            name=op.f("fk_oidc_authorization_codes_client_pk_oidc_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_oidc_authorization_codes_session_id_sessions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_authorization_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oidc_authorization_codes_code_hash")),
    )
    op.create_index(
        op.f("ix_oidc_authorization_codes_client_pk"), "oidc_authorization_codes", ["client_pk"], unique=False
    )
    op.create_index(op.f("ix_oidc_authorization_codes_user_id"), "oidc_authorization_codes", ["user_id"], unique=False)
    op.create_table(
        "oidc_authorization_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("login_after", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"],
            ["oidc_clients.id"],
            name=op.f("fk_oidc_authorization_requests_client_pk_oidc_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_authorization_requests")),
    )
    op.create_index(
        op.f("ix_oidc_authorization_requests_client_pk"), "oidc_authorization_requests", ["client_pk"], unique=False
    )
    op.create_table(
        "oidc_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=False),
        sa.Column("refresh_token_hash", sa.String(length=64), nullable=True),
        sa.Column("issued_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("access_expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("refresh_expires_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("refresh_used_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("auth_time", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("amr", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["oidc_clients.id"], name=op.f("fk_oidc_tokens_client_pk_oidc_clients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["oidc_authorization_codes.id"],
            name=op.f("fk_oidc_tokens_code_id_oidc_authorization_codes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_oidc_tokens_session_id_sessions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oidc_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_tokens")),
        sa.UniqueConstraint("access_token_hash", name=op.f("uq_oidc_tokens_access_token_hash")),
        sa.UniqueConstraint("refresh_token_hash", name=op.f("uq_oidc_tokens_refresh_token_hash")),
    )
    op.create_index(op.f("ix_oidc_tokens_client_pk"), "oidc_tokens", ["client_pk"], unique=False)
    op.create_index(op.f("ix_oidc_tokens_code_id"), "oidc_tokens", ["code_id"], unique=False)
    op.create_index(op.f("ix_oidc_tokens_family"), "oidc_tokens", ["family"], unique=False)
    op.create_index(op.f("ix_oidc_tokens_user_id"), "oidc_tokens", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_oidc_tokens_user_id"), table_name="oidc_tokens")
    op.drop_index(op.f("ix_oidc_tokens_family"), table_name="oidc_tokens")
    op.drop_index(op.f("ix_oidc_tokens_code_id"), table_name="oidc_tokens")
    op.drop_index(op.f("ix_oidc_tokens_client_pk"), table_name="oidc_tokens")
    op.drop_table("oidc_tokens")
    op.drop_index(op.f("ix_oidc_authorization_requests_client_pk"), table_name="oidc_authorization_requests")
    op.drop_table("oidc_authorization_requests")
    op.drop_index(op.f("ix_oidc_authorization_codes_user_id"), table_name="oidc_authorization_codes")
    op.drop_index(op.f("ix_oidc_authorization_codes_client_pk"), table_name="oidc_authorization_codes")
    op.drop_table("oidc_authorization_codes")
    op.drop_table("oidc_subjects")
    op.drop_table("oidc_clients")
    op.drop_table("oidc_signing_keys")
