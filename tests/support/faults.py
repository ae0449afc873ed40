"""Dependencies that fail on cue, for the outage tests: a TCP proxy in front of the shared
PostgreSQL that can refuse or hang, and a Redis server of the test's own on a free port that
can be stopped and started again (the shared Redis on 6379 is never touched).
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis

from tests.support.base import skip_or_fail


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``down()`` drops every connection and refuses new
    ones (the database host is gone); ``hang()`` accepts and holds connections without forwarding a
    byte (the database host stopped answering); ``up()`` forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.mode = "up"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._stopped = threading.Event()

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "down":
                client.close()
                return
            if self.mode == "hang":
                with self._lock:
                    self._pairs.append((client, None))
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                if self.mode == "hang":
                    continue  # hold everything: the peer sees a server that does not answer
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        sock.close()

    def down(self) -> None:
        self.mode = "down"
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self._listener.close()
            self._listener = None
        self._drop_all()

    def hang(self) -> None:
        self.mode = "hang"

    def up(self) -> None:
        self._drop_all()
        self.mode = "up"
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stopped.set()
        self.down()


class OwnRedis:
    """A redis-server of this test's own, on a free port, with its files in ``folder``."""

    def __init__(self, folder: Path, *, appendonly: bool) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10  # waiting for the server to listen, not for time to pass
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()
        return self

    def stop(self) -> None:
        """Stop it the way a crash or a container restart does: no final save (SIGKILL)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
