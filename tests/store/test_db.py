"""SQLite writers take turns: in a process on a lock, between processes on flock(2)."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading

import pytest
from sqlalchemy import select, update

from twofold.store.db import Database
from twofold.store.models import AuditChainHead


@pytest.fixture
def sqlite_file(tmp_path, sqlite_template):
    path = tmp_path / "twofold.db"
    shutil.copy(sqlite_template, path)
    return path


def other_process_can_take_the_writer_lock(path) -> bool:
    """What another process would see: a new open file description of the lock file."""
    fd = os.open(f"{path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_writing_transaction_holds_the_writer_lock_until_it_ends(sqlite_file):
    database = Database(f"sqlite:///{sqlite_file}", pool_size=4)
    try:
        with database.transaction() as s:
            s.execute(select(AuditChainHead)).all()
            assert not other_process_can_take_the_writer_lock(sqlite_file)
        assert other_process_can_take_the_writer_lock(sqlite_file)
    finally:
        database.dispose()


def test_a_failed_writing_transaction_changes_nothing_and_gives_up_its_turn(sqlite_file):
    database = Database(f"sqlite:///{sqlite_file}", pool_size=4)
    try:

        def write_then_abandon() -> None:
            with database.transaction() as s:
                s.execute(update(AuditChainHead).where(AuditChainHead.chain == 0).values(seq=9))
                assert not other_process_can_take_the_writer_lock(sqlite_file)
                raise RuntimeError("abandon")

        with pytest.raises(RuntimeError):
            write_then_abandon()
        assert other_process_can_take_the_writer_lock(sqlite_file)
        with database.reading() as r:
            assert r.get(AuditChainHead, 0).seq == 0
        with database.transaction() as s:  # the pooled connection is clean for the next writer
            s.execute(update(AuditChainHead).where(AuditChainHead.chain == 0).values(seq=3))
        with database.reading() as r:
            assert r.get(AuditChainHead, 0).seq == 3
    finally:
        database.dispose()


def test_the_turn_is_taken_only_to_write(sqlite_file):
    """The session and its connection are ready before the turn is taken: a writer that
    waits for its turn already holds a pooled connection, and begins only once it is its turn."""
    database = Database(f"sqlite:///{sqlite_file}", pool_size=4)
    try:
        with database.transaction() as s:
            raw = s.connection().connection.driver_connection
            assert raw.in_transaction  # BEGIN IMMEDIATE ran inside the turn
            assert not other_process_can_take_the_writer_lock(sqlite_file)
        assert not raw.in_transaction
        assert other_process_can_take_the_writer_lock(sqlite_file)
    finally:
        database.dispose()


def test_reading_does_not_wait_for_a_writer(sqlite_file):
    database = Database(f"sqlite:///{sqlite_file}", pool_size=4)
    try:
        with database.transaction() as s:
            s.execute(update(AuditChainHead).where(AuditChainHead.chain == 0).values(seq=7))
            with database.reading() as r:  # WAL: the reader sees the last commit, and is not blocked
                assert r.get(AuditChainHead, 0).seq == 0
        with database.reading() as r:
            assert r.get(AuditChainHead, 0).seq == 7
    finally:
        database.dispose()


def test_concurrent_writers_of_two_processes_lose_no_update(sqlite_file):
    # Two Database objects open the lock file separately, as two worker processes do.
    databases = [Database(f"sqlite:///{sqlite_file}", pool_size=4) for _ in range(2)]
    errors: list[BaseException] = []

    def increment(database: Database) -> None:
        try:
            for _ in range(25):
                with database.transaction() as s:
                    head = s.get(AuditChainHead, 0)
                    head.seq += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=increment, args=(databases[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        with databases[0].reading() as r:
            assert r.get(AuditChainHead, 0).seq == 8 * 25
    finally:
        for database in databases:
            database.dispose()
