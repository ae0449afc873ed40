"""longer return addresses: a sign-in flow keeps the page asked for up to 2,048 characters

Revision ID: 0017_longer_return_urls
Revises: 0001_foundation

An app's address with its query (an imaging viewer's study ids, say) can be longer than the 512
characters ``sign_in_flows.return_to`` held, and a longer one was dropped for the home page. No
table refers to ``sign_in_flows``, so SQLite's rebuild of it (batch mode) removes nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_longer_return_urls"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.alter_column(
            "return_to", existing_type=sa.String(length=512), type_=sa.String(length=2048), existing_nullable=True
        )


def downgrade() -> None:
    op.execute(sa.text("UPDATE sign_in_flows SET return_to = NULL WHERE length(return_to) > 512"))
    with op.batch_alter_table("sign_in_flows", schema=None) as batch_op:
        batch_op.alter_column(
            "return_to", existing_type=sa.String(length=2048), type_=sa.String(length=512), existing_nullable=True
        )
