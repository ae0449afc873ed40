"""accounts, factors, sign-in, sessions, audit, throttle

Revision ID: 0001_foundation
Revises:
"""

import sqlalchemy as sa
from alembic import op

import twofold.store.models.base

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    heads = op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )
    op.create_table(
        "practices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("require_two_factor", sa.Boolean(), nullable=False),
        sa.Column("required_roles", sa.JSON(), nullable=False),
        sa.Column("grace_days", sa.Integer(), nullable=False),
        sa.Column("two_factor_required_since", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("allowed_methods", sa.JSON(), nullable=False),
        sa.Column("remember_browser_days", sa.Integer(), nullable=False),
        sa.Column("remember_browser_idle_days", sa.Integer(), nullable=False),
        sa.Column("idle_timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("session_max_hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practices")),
        sa.UniqueConstraint("name", name=op.f("uq_practices_name")),
    )
    op.create_table(
        "throttle_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_failures")),
    )
    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.create_index("ix_throttle_failures_key_at", ["key", "at"], unique=False)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=True),
        sa.Column("at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=80), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], name=op.f("fk_audit_events_practice_id_practices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index("ix_audit_events_chain_seq", ["chain", "seq"], unique=True)
        batch_op.create_index(batch_op.f("ix_audit_events_event"), ["event"], unique=False)
        batch_op.create_index("ix_audit_events_practice_at", ["practice_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_subject_id"), ["subject_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("password_changed_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'provider', 'staff')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(["practice_id"], ["practices.id"], name=op.f("fk_users_practice_id_practices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_practice_id"), ["practice_id"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("revoked_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sign_in_flows",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("return_to", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_flows_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_flows")),
    )
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_flows_user_id"), ["user_id"], unique=False)

    op.create_table(
        "totp_credentials",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_sealed", sa.String(length=255), nullable=False),
        sa.Column("created_at", twofold.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", twofold.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_totp_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_credentials")),
    )
    with op.batch_alter_table("totp_credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_totp_credentials_user_id"), ["user_id"], unique=False)
    # Chain 0 holds events of no practice (for example a sign-in for an unknown email).
    op.bulk_insert(heads, [{"chain": 0, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    with op.batch_alter_table("totp_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_totp_credentials_user_id"))

    op.drop_table("totp_credentials")
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_flows_user_id"))

    op.drop_table("sign_in_flows")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))

    op.drop_table("sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_practice_id"))

    op.drop_table("users")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_subject_id"))
        batch_op.drop_index("ix_audit_events_practice_at")
        batch_op.drop_index(batch_op.f("ix_audit_events_event"))
        batch_op.drop_index("ix_audit_events_chain_seq")
        batch_op.drop_index(batch_op.f("ix_audit_events_actor_id"))

    op.drop_table("audit_events")
    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_throttle_failures_key_at")

    op.drop_table("throttle_failures")
    op.drop_table("practices")
    op.drop_table("audit_chain_heads")
