"""The server's background WAL checkpoints: they copy the log back without waiting for anyone."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import backends
from twofold.store.db import Database
from twofold.store.models import AuditChainHead
from twofold.web.app import create_app


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def database(tmp_path, sqlite_template):
    path = tmp_path / "twofold.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}", pool_size=4)
    yield db
    db.dispose()


def write(db: Database, times: int) -> None:
    for seq in range(times):
        with db.transaction() as s:
            s.execute(update(AuditChainHead).where(AuditChainHead.chain == 0).values(seq=seq + 1))


def test_a_checkpoint_copies_the_whole_log_when_nobody_reads(database):
    checkpointer = database.wal_checkpointer()
    try:
        checkpointer.checkpoint()
        write(database, 5)
        done = checkpointer.checkpoint()
        assert not done.busy and done.log_frames >= 5 and done.checkpointed_frames == done.log_frames
    finally:
        checkpointer.stop()


def test_a_checkpoint_does_not_wait_for_a_reader_and_leaves_it_its_snapshot(database):
    checkpointer = database.wal_checkpointer()
    try:
        write(database, 1)
        with database.reading() as reader:
            assert reader.execute(select(AuditChainHead.seq).where(AuditChainHead.chain == 0)).scalar_one() == 1
            write(database, 3)  # newer than the reader's snapshot
            done = checkpointer.checkpoint()
            assert done.checkpointed_frames < done.log_frames  # what the reader may still need stays in the log
            assert reader.execute(select(AuditChainHead.seq).where(AuditChainHead.chain == 0)).scalar_one() == 1
        done = checkpointer.checkpoint()
        assert done.checkpointed_frames == done.log_frames
    finally:
        checkpointer.stop()


def test_the_server_checkpoints_while_it_runs_and_stops_with_it(services):
    """On SQLite; PostgreSQL has no such log to copy."""
    app = create_app(services)
    expected = services.db.is_sqlite
    with TestClient(app):
        checkpointer = app.state.wal_checkpointer
        assert (checkpointer is not None and checkpointer.running) == expected
    assert checkpointer is None or not checkpointer.running
