"""Migration 0013_audit_keyed_chain re-keys the audit chains written before links were keyed.

An intact legacy chain verifies afterwards under the keyed hash; a chain already tampered
with before the upgrade still fails at the same event (the upgrade does not launder it); and
without the secret key the upgrade refuses to run rather than guess.
"""

from __future__ import annotations

import hashlib
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import column, create_engine, insert, select, table, text, update
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, SECRET_KEY, backends, skip_or_fail
from twofold.context import RequestContext
from twofold.crypto.chain import GENESIS, canonical
from twofold.settings import Settings
from twofold.store.db import Database
from twofold.store.migrate import alembic_config, upgrade
from twofold.store.models import AuditChainHead, AuditEvent
from twofold.wiring import build_services

START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def legacy_chain(connection, chain: int, count: int) -> list[str]:
    """``count`` events of practice ``chain`` linked as before: unkeyed SHA-256, as 0001 wrote them."""
    # The table as 0001 made it: the model's later columns (and their defaults) do not exist yet.
    practices_0001 = table(
        "practices",
        *(column(name) for name in ("id", "name", "created_at", "require_two_factor", "required_roles")),
        *(column(name) for name in ("grace_days", "allowed_methods", "remember_browser_days")),
        *(column(name) for name in ("remember_browser_idle_days", "idle_timeout_minutes", "session_max_hours")),
    )
    connection.execute(
        insert(practices_0001).values(
            id=chain,
            name=f"Practice {chain}",
            created_at=START,
            require_two_factor=False,
            required_roles="[]",
            grace_days=0,
            allowed_methods='["totp"]',
            remember_browser_days=30,
            remember_browser_idle_days=30,
            idle_timeout_minutes=30,
            session_max_hours=12,
        )
    )
    prev, digests = GENESIS, []
    for seq in range(1, count + 1):
        fields = {
            "chain": chain,
            "seq": seq,
            "practice_id": chain,
            "at": START + timedelta(minutes=seq),
            "event": "practice:created" if seq == 1 else "account:sign_in:succeeded",
            "actor_id": None,
            "subject_id": seq,
            "ip": "10.0.0.1",
            "user_agent": None,
            "details": {"n": seq},
        }
        digest = hashlib.sha256(f"{prev}\n{canonical({**fields, 'at': fields['at'].isoformat()})}".encode()).hexdigest()
        connection.execute(insert(AuditEvent.__table__).values(**fields, prev_hash=prev, hash=digest))
        prev = digest
        digests.append(digest)
    connection.execute(insert(AuditChainHead.__table__).values(chain=chain, seq=count, hash=prev))
    return digests


@pytest.fixture
def legacy_database(backend, tmp_path, request):
    """A database at 0001_foundation with two legacy chains, the second edited (without relinking) at event 3."""
    with _throwaway(backend, tmp_path) as url:
        database = Database(url, pool_size=1)
        command.upgrade(alembic_config(url), "0001_foundation")
        with database.engine.begin() as connection:
            digests = legacy_chain(connection, 1, 6)
            legacy_chain(connection, 2, 6)
            connection.execute(
                update(AuditEvent.__table__)
                .where(AuditEvent.__table__.c.chain == 2, AuditEvent.__table__.c.seq == 3)
                .values(details={"n": 99})
            )
        database.legacy_digests = digests
        yield database
        database.dispose()


@contextmanager
def _throwaway(backend: str, tmp_path):
    """A database of its own: this test migrates only part of the way, which the shared one must never be."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'legacy.db'}"
        return
    if not POSTGRES_URL:
        skip_or_fail("PostgreSQL is not available")
    admin = create_engine(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    name = f"twofold_legacy_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_legacy_chains_are_re_keyed_and_a_tampered_one_still_fails_where_it_did(legacy_database, tmp_path, clock):
    services = build_services(
        Settings(
            _env_file=None, var_dir=tmp_path / "var", database_url=str(legacy_database.url), secret_key=SECRET_KEY
        ),
        clock=clock,
    )
    try:  # before the upgrade, the keyed check does not accept the legacy links
        assert services.audit_trail.verify(practice_id=1)[0].first_break.seq == 1
    finally:
        services.close()
    upgrade(legacy_database.engine, secret_key=SECRET_KEY)
    services = build_services(
        Settings(
            _env_file=None, var_dir=tmp_path / "var", database_url=str(legacy_database.url), secret_key=SECRET_KEY
        ),
        clock=clock,
    )
    try:
        reports = {r.chain: r for r in services.audit_trail.verify()}
        assert reports[1].ok and reports[1].events == 6
        assert reports[2].first_break.seq == 3
        with services.db.transaction() as s:  # the re-keyed chain goes on under the key
            services.audit.record(s, "test:event", context=RequestContext(), practice_id=1)
        assert services.audit_trail.verify(practice_id=1)[0].ok
        # Every link was rewritten: the unkeyed hashes an attacker could recompute are gone.
        with services.db.reading() as s:
            rekeyed = s.execute(select(AuditEvent.hash).where(AuditEvent.chain == 1).order_by(AuditEvent.seq)).scalars()
            assert not set(rekeyed.all()) & set(legacy_database.legacy_digests)
    finally:
        services.close()


def test_the_upgrade_refuses_to_re_key_without_the_secret_key(legacy_database):
    with pytest.raises(RuntimeError, match="twofold db upgrade"):
        upgrade(legacy_database.engine)
