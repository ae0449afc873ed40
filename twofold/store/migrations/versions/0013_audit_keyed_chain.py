"""audit chain: re-key every chain from SHA-256 to HMAC-SHA256 under a key derived from the secret key

Each chain is first checked under the old, unkeyed hash, then rewritten link by link under
the keyed one, head included. A chain that no longer verified before the upgrade is re-keyed
only up to its first bad event; that event and the ones after it keep their old hashes, so
``twofold audit verify`` still names the same first bad event afterwards instead of the
upgrade laundering it. See docs/audit-events.md.

The key comes from ``twofold.store.migrate.upgrade(engine, secret_key=...)`` (``twofold db
upgrade`` and ``twofold serve`` pass it); a database with audit events cannot be upgraded
without it.

Revision ID: 0013_audit_keyed_chain
Revises: 0001_foundation
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from twofold.crypto.chain import GENESIS, canonical, link_hash
from twofold.store.models.base import UTCDateTime

revision = "0013_audit_keyed_chain"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# The tables as this migration knows them (not the models, which may change later).
events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("chain", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("practice_id", sa.Integer),
    sa.column("at", UTCDateTime()),
    sa.column("event", sa.String),
    sa.column("actor_id", sa.Integer),
    sa.column("subject_id", sa.Integer),
    sa.column("ip", sa.String),
    sa.column("user_agent", sa.String),
    sa.column("details", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
heads = sa.table(
    "audit_chain_heads", sa.column("chain", sa.Integer), sa.column("seq", sa.Integer), sa.column("hash", sa.String)
)
HASHED = ("chain", "seq", "practice_id", "at", "event", "actor_id", "subject_id", "ip", "user_agent", "details")
BATCH = 1000

Digest = Callable[[str, dict[str, Any]], str]


def unkeyed(prev_hash: str, fields: dict[str, Any]) -> str:
    """The link before this migration: SHA-256 of the previous link and the canonical record."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(fields)}".encode()).hexdigest()


def _fields(row: Any) -> dict[str, Any]:
    fields = {name: getattr(row, name) for name in HASHED}
    fields["at"] = fields["at"].isoformat()
    fields["details"] = fields["details"] or {}
    return fields


def _rewrite(connection: sa.Connection, *, old: Digest, new: Digest) -> None:
    """Re-link every chain that holds under ``old`` with ``new``, up to its first bad event."""
    chains = connection.execute(sa.select(events.c.chain).distinct().order_by(events.c.chain)).scalars().all()
    for chain in chains:
        expected, old_prev, new_prev, pending = 1, GENESIS, GENESIS, []
        rows = connection.execute(
            sa.select(*(getattr(events.c, name) for name in ("id", *HASHED, "prev_hash", "hash")))
            .where(events.c.chain == chain)
            .order_by(events.c.seq)
        ).all()
        for row in rows:
            fields = _fields(row)
            if row.seq != expected or row.prev_hash != old_prev or old(old_prev, fields) != row.hash:
                log.warning(
                    "audit chain %s: event %s did not verify before this upgrade; it and the events after it "
                    "keep their old hashes, so `twofold audit verify` still names it",
                    chain,
                    row.seq,
                )
                break
            link = new(new_prev, fields)
            pending.append({"row_id": row.id, "new_prev": new_prev, "new_hash": link})
            old_prev, new_prev, expected = row.hash, link, expected + 1
        for start in range(0, len(pending), BATCH):
            connection.execute(
                events.update()
                .where(events.c.id == sa.bindparam("row_id"))
                .values(prev_hash=sa.bindparam("new_prev"), hash=sa.bindparam("new_hash")),
                pending[start : start + BATCH],
            )
        if pending:
            # The head moves with its chain only when it pointed at the last re-keyed event.
            connection.execute(
                heads.update()
                .where(heads.c.chain == chain, heads.c.seq == expected - 1, heads.c.hash == old_prev)
                .values(hash=new_prev)
            )


def _key(connection: sa.Connection) -> bytes | None:
    """The link key, or None when there is nothing to re-key; refuses to guess when there is."""
    if connection.execute(sa.select(events.c.id).limit(1)).first() is None:
        return None
    key = context.config.attributes.get("audit_link_key")
    if not key:
        raise RuntimeError(
            "This upgrade re-keys the audit log with a key derived from TWOFOLD_SECRET_KEY: "
            "run it with `twofold db upgrade`, which passes the key."
        )
    return key


def upgrade() -> None:
    connection = op.get_bind()
    key = _key(connection)
    if key is not None:
        _rewrite(connection, old=unkeyed, new=lambda prev, fields: link_hash(key, prev, fields))


def downgrade() -> None:
    connection = op.get_bind()
    key = _key(connection)
    if key is not None:
        _rewrite(connection, old=lambda prev, fields: link_hash(key, prev, fields), new=unkeyed)
