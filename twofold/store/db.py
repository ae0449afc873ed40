"""The engine and transactions, tuned per backend.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writing
transactions: a deferred transaction that reads and then writes can fail at once
with SQLITE_BUSY when another writer committed in between, while an immediate one
waits its turn. PostgreSQL needs none of this.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from twofold.errors import InvalidInput
from twofold.store.checkpoint import WalCheckpointer
from twofold.store.models import User

WAL_AUTOCHECKPOINT_PAGES = 8000
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # A server process checkpoints the WAL from a background thread (store/checkpoint.py).
        # A connection does it inside a COMMIT only past 8,000 pages (32 MiB), not SQLite's
        # 1,000: a sign-in rewrites the same hot pages (index tails, the audit chain head)
        # and a checkpoint copies each once however often it changed, with two fsyncs
        # (benchmarks/README.md). The file is cut back to 64 MiB after a checkpoint.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "LATER":
            return  # Database.transaction() begins once its turn to write has come
        # On the driver itself: every transaction begins here, and exec_driver_sql()
        # would add SQLAlchemy's whole execution path to each of them.
        connection.connection.driver_connection.execute(_BEGIN[mode])


class Refusal(Exception):
    """Raised inside ``Database.transaction()`` to refuse a request but keep its record.

    The block's writes (the audit event of the refusal, the throttle's failure count)
    are committed, then ``error`` is raised to the caller. A failed guess must count
    even though the change it asked for is refused (OWASP ASVS 2.2.1, NIST SP
    800-63B-4 §3.2.2 rate limiting), so a plain rollback would be wrong here::

        with db.transaction() as s:
            if not code_ok:
                throttle.hit(s, keys)
                audit.record(s, ...)
                raise Refusal(InvalidCode())
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def lock_account(s: Session, user_id: int) -> None:
    """Serialise guesses about one account until the transaction ends.

    Without it, concurrent guesses on PostgreSQL all read the throttle before any
    of them records its failure, and a burst gets more than the allowed tries.
    SQLite's writing transactions (BEGIN IMMEDIATE) are serialised already, so
    there the row lock would be one more query for nothing.
    """
    if s.get_bind().dialect.name == "sqlite":
        return
    s.execute(select(User.id).where(User.id == user_id).with_for_update())


def create_db_engine(url: str, *, pool_size: int = 32) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            path = Path(database)
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created here, not by SQLite, so that it is the owner's alone (SQLite gives its
            # -wal and -shm files the database file's permissions).
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        engine = create_engine(
            parsed, pool_size=pool_size, max_overflow=0, pool_timeout=30, connect_args={"check_same_thread": False}
        )
        _sqlite_tuning(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_size=pool_size, max_overflow=0, pool_timeout=30, pool_pre_ping=True)
    _refuse_nul_text(engine)
    return engine


def _refuse_nul_text(engine: Engine) -> None:
    """PostgreSQL text cannot hold NUL (U+0000): a search or a field with one would fail inside the
    driver as a server error. Such input is refused as ``InvalidInput`` (422) before it is sent."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(_connection, _cursor, _statement, parameters, _context, executemany) -> None:
        for row in parameters if executemany else (parameters,):
            values = row.values() if isinstance(row, dict) else row or ()
            if any(isinstance(value, str) and "\x00" in value for value in values):
                raise InvalidInput("The request contains a NUL character, which no text field may hold.")


fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not POSIX: writers of one process still queue, processes rely on busy_timeout
    fcntl = None


class SqliteWriterQueue:
    """Writers of one SQLite file take turns in a queue instead of polling for the lock.

    SQLite lets one transaction write at a time. The others wait in its busy
    handler, which sleeps and retries (after 1, 2, 5, 10 ... 100 ms) rather than
    waking when the lock is freed: under load the file then sits idle between
    writers while the unlucky ones wait for seconds (measured: the code step's p99
    went over 2 s at 32 clients). So a writer first queues on a lock in its
    process, then on ``flock(2)`` of a file beside the database, which the kernel
    hands to the next process as soon as it is released. Programs that write the
    file without this (a migration, sqlite3) still meet the busy timeout as before.
    """

    def __init__(self, database: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0  # nested transaction() calls of the thread holding the turn
        self._path = f"{database}.writer-lock" if database and database != ":memory:" and fcntl else None
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._threads:
            if self._depth or self._path is None:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            if fcntl is None:
                raise RuntimeError("a writer lock file without fcntl")  # _path is set only where fcntl imported
            lock = fcntl
            fd = self._lock_file()
            lock.flock(fd, lock.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                lock.flock(fd, lock.LOCK_UN)

    def close(self) -> None:
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def _lock_file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            if self._path is None:
                raise RuntimeError("no writer lock file to open")  # __call__ locks a file only when there is a path
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            self._pid = os.getpid()
        return self._fd


@contextmanager
def _settled(session: Session) -> Iterator[None]:
    """End the block's transaction: commit, roll back on error, or commit and then raise a ``Refusal``'s error."""
    try:
        yield
    except Refusal as refusal:
        session.commit()
        raise refusal.error from None
    except BaseException:
        session.rollback()
        raise
    session.commit()


class Database:
    """Hands out sessions: ``transaction()`` for changes, ``reading()`` for reads."""

    def __init__(self, url: str, *, pool_size: int = 32) -> None:
        self.url = url
        self.engine = create_db_engine(url, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.engine.execution_options(sqlite_begin="LATER"), expire_on_commit=False)
        self._write_turn = SqliteWriterQueue(self.engine.url.database) if self.is_sqlite else None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One writing transaction: committed when the block ends, rolled back on error.

        A ``Refusal`` raised in the block commits it, then raises the refusal's error.

        On SQLite the turn to write is held from ``BEGIN IMMEDIATE`` to ``COMMIT``
        and no longer: the session and its pooled connection are set up before the
        turn is taken and put back after it is given up, since every other writer
        of the file waits while it is held.
        """
        with self._writer() as session:
            if self._write_turn is None:
                session.begin()
                with _settled(session):
                    yield session
                return
            driver = session.connection().connection.driver_connection  # no BEGIN yet: sqlite_begin="LATER"
            if driver is None:
                raise RuntimeError("a checked-out connection without its driver connection")
            with self._write_turn():
                driver.execute(_BEGIN["IMMEDIATE"])
                with _settled(session):
                    yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def wal_checkpointer(self) -> WalCheckpointer | None:
        """A background checkpointer for this database's write-ahead log (SQLite files only)."""
        database = self.engine.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return WalCheckpointer(database)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_turn is not None:
            self._write_turn.close()
