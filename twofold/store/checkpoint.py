"""Copy SQLite's write-ahead log back into the database file from a background thread.

Left to itself, SQLite checkpoints inside the COMMIT that takes the log past its
threshold: that one sign-in, holding the only turn to write, copies thousands of
pages and waits for two fsyncs while every other writer of the file waits for it
(the code step's p99 at 32 clients was five times its p50). A server process runs
a ``WalCheckpointer`` instead: every tenth of a second it checkpoints PASSIVE on
its own connection, which waits for no reader or writer and, with the sqlite3
module releasing the GIL around SQLite's work, runs beside the requests. The
per-connection threshold (``WAL_AUTOCHECKPOINT_PAGES``) stays as the safety net.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass

log = logging.getLogger("twofold.store.checkpoint")

INTERVAL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    busy: bool  # another checkpoint was running
    log_frames: int  # frames in the log
    checkpointed_frames: int  # of them, now copied into the database


class WalCheckpointer:
    def __init__(self, database_path: str, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = database_path
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def checkpoint(self) -> Checkpoint:
        """One PASSIVE checkpoint: as much of the log as no reader still needs."""
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            busy, log_frames, checkpointed = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return Checkpoint(bool(busy), log_frames, checkpointed)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="twofold-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # a locked or busy file: the next round tries again
                log.debug("WAL checkpoint skipped: %s", exc)
