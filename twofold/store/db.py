"""The engine and transactions, tuned per backend.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writing
transactions: a deferred transaction that reads and then writes can fail at once
with SQLITE_BUSY when another writer committed in between, while an immediate one
waits its turn. PostgreSQL needs none of this.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import create_engine, event, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from twofold.errors import DatabaseUnavailable, InvalidInput
from twofold.store.checkpoint import WalCheckpointer
from twofold.store.models import User
from twofold.store.prepared import QuickReads

WAL_AUTOCHECKPOINT_PAGES = 8000
CLI_RESERVE = 5
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


@dataclass(frozen=True, kw_only=True)
class Limits:
    """How long the database may take before a request gives up and answers 503 (see Settings)."""

    connect_timeout: float = 5.0
    statement_timeout: float = 10.0
    pool_timeout: float = 10.0


def create_db_engine(url: str, *, pool_size: int = 32, limits: Limits | None = None) -> Engine:
    """The engine for ``url``.

    ``hide_parameters``: a failing statement's error (and the 500 log it becomes), and SQLAlchemy's
    statement log when someone turns it on to debug, name the SQL but not its values, which can be
    a sign-in flow id, an enrolment id or a member's email.
    """
    limits = limits or Limits()
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
            parsed,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=limits.pool_timeout,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
        _sqlite_tuning(engine)
        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    statement_ms = max(1, round(limits.statement_timeout * 1000))
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=limits.pool_timeout,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={
            # libpq counts whole seconds; psycopg gives up on the whole connection attempt after it.
            "connect_timeout": max(1, round(limits.connect_timeout)),
            # Server side: a statement, or a wait for a lock (a migration, a VACUUM FULL), ends with
            # an error the request turns into 503, instead of holding a thread and a connection.
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
            # A server that vanished (a failed host, a dropped route) is noticed by the kernel.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
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


def connection_budget_problem(engine: Engine, *, processes: int, per_process: int) -> str | None:
    """Why ``processes`` processes of ``per_process`` connections each may not fit PostgreSQL; None when they do.

    PostgreSQL refuses every connection past ``max_connections`` (less the ones kept for
    superusers), and then it refuses everyone: this process, the other workers and the
    command line alike. ``CLI_RESERVE`` connections are left for ``twofold`` commands
    and a ``psql`` session.
    """
    if engine.dialect.name != "postgresql":
        return None
    with _outage_is_unavailable(), engine.connect() as connection:
        limit = int(connection.exec_driver_sql("SHOW max_connections").scalar_one())
        reserved = int(connection.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
    available = limit - reserved - CLI_RESERVE
    wanted = processes * per_process
    if wanted <= available:
        return None
    return (
        f"{processes} process(es) x {per_process} database connections = {wanted}, but PostgreSQL allows "
        f"{limit} (max_connections) less {reserved} kept for superusers and {CLI_RESERVE} for the command line: "
        f"{available}. Under load PostgreSQL will refuse connections to every process. Lower "
        f"TWOFOLD_DB_MAX_CONNECTIONS to {max(1, available // processes)} or less, run fewer workers, or raise "
        "max_connections. Count the workers of every machine that uses this database."
    )


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


log = logging.getLogger("twofold.store")

# What "the database is not there" looks like through SQLAlchemy: a refused, dropped or timed-out
# connection or statement (OperationalError: PostgreSQL's statement_timeout and connect_timeout,
# SQLite's "database is locked" after its busy timeout, a full disk), a connection that died
# under a statement (InterfaceError), and no free connection in the pool in time (TimeoutError).
OUTAGES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


@contextmanager
def _outage_is_unavailable() -> Iterator[None]:
    """Turn a database outage into ``DatabaseUnavailable`` (503 with Retry-After), logged without its SQL.

    Only the exception's class and the driver's first line are logged: a statement's
    parameters can hold a token hash or an email address.
    """
    try:
        yield
    except OUTAGES as exc:
        origin = getattr(exc, "orig", None) or exc
        first_line = (str(origin).strip().splitlines() or [""])[0][:200]
        log.warning("database unavailable: %s: %s", type(origin).__name__, first_line)
        raise DatabaseUnavailable() from exc


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

    def __init__(self, url: str, *, pool_size: int = 32, limits: Limits | None = None) -> None:
        self.url = url
        self.engine = create_db_engine(url, pool_size=pool_size, limits=limits)
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
        with _outage_is_unavailable(), self._writer() as session:
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
        """One reading transaction; a database outage raises ``DatabaseUnavailable``."""
        with _outage_is_unavailable(), self._reader() as session, session.begin():
            yield session

    @contextmanager
    def quick_reads(self) -> Iterator[QuickReads]:
        """A pooled connection for a few single-statement prepared reads, without an ORM session.

        For the checks a proxy asks before every request: each SELECT sees committed data on its own
        (no transaction spans them on SQLite; on PostgreSQL the pool rolls back on return).
        """
        with _outage_is_unavailable():
            connection = self.engine.raw_connection()
            try:
                yield QuickReads(self.engine.dialect, connection.driver_connection)
            finally:
                connection.close()

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
