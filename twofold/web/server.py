"""How ``twofold serve`` runs uvicorn: its HTTP protocol with one fix, and an access log without tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from typing import TYPE_CHECKING

from uvicorn.protocols.http.auto import AutoHTTPProtocol

if TYPE_CHECKING:
    # AutoHTTPProtocol is a variable (httptools' protocol, or h11's), declared
    # ``type[asyncio.Protocol]``: mypy cannot subclass a variable, so it checks against that.
    _HTTPProtocolBase = asyncio.Protocol
else:
    _HTTPProtocolBase = AutoHTTPProtocol

# For uvicorn.run(http=...): an import string, so worker processes can import it too.
HTTP_PROTOCOL = "twofold.web.server:TcpNoDelayHTTPProtocol"


log = logging.getLogger("twofold.server")

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 41\r\nConnection: close\r\n\r\nToo many connections. Try again shortly.\n"
)
LIMIT_WARNING_EVERY = 10.0  # seconds between two "connection limit reached" lines while it lasts


class TcpNoDelayHTTPProtocol(_HTTPProtocolBase):
    """uvicorn's HTTP protocol with Nagle's algorithm off, a header deadline and a connection limit.

    With ``--workers N`` uvicorn binds the listening socket itself, with ``proto``
    left at 0, and asyncio then skips TCP_NODELAY on accepted connections
    (Kludex/uvicorn#3149): every keep-alive answer after the first waits about
    40 ms for the client's delayed ACK (measured: 45 ms per request instead of
    under 1 ms, see benchmarks/http_code_step.py). Setting it here works however
    the socket was made.

    uvicorn closes a keep-alive connection that sits idle between requests, but not one
    that never finishes sending a request's headers (nothing at all, or a header line
    every few seconds: "slowloris"). Each such connection holds a file handle for ever,
    and once the process runs out of handles it answers nobody and says nothing. So a
    request's headers must be complete within ``header_timeout`` seconds of its first
    byte (or of the connection, for the first request), and past ``max_connections``
    open connections a new one is answered 503 at once and closed, with a log line
    saying so (OWASP Denial of Service Cheat Sheet). ``limit_connections`` sets both.
    """

    max_connections: int | None = None
    header_timeout: float | None = None
    _last_limit_warning = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._tail = b""
        limit = type(self).max_connections
        open_now = len(self.server_state.connections)  # type: ignore[attr-defined]
        if limit is not None and open_now >= limit:
            self._refused = True
            self._warn_limit(open_now, limit)
            transport.write(BUSY)
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            if self._header_timer is None:
                self._arm_header_timer()
            if b"\r\n\r\n" in self._tail + data:
                self._awaiting_headers = False
                self._cancel_header_timer()
                self._tail = b""
            else:
                self._tail = (self._tail + data)[-3:]
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._awaiting_headers = True  # the next request's deadline starts with its first byte

    @classmethod
    def _warn_limit(cls, open_now: int, limit: int) -> None:
        now = time.monotonic()
        if now - cls._last_limit_warning >= LIMIT_WARNING_EVERY:
            cls._last_limit_warning = now
            log.warning(
                "connection limit reached: %d connections open (TWOFOLD_HTTP_MAX_CONNECTIONS=%d); new connections "
                "are answered 503 and closed until some close",
                open_now,
                limit,
            )

    def _arm_header_timer(self) -> None:
        timeout = type(self).header_timeout
        if timeout is not None and self._header_timer is None:
            self._header_timer = asyncio.get_running_loop().call_later(timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers:
            log.info("closed a connection whose request headers took over %s seconds", type(self).header_timeout)
            self.transport.close()  # type: ignore[attr-defined]


def limit_connections(*, max_connections: int | None, header_timeout: float | None) -> None:
    """Set this process's connection limit and header deadline (``None``: none)."""
    TcpNoDelayHTTPProtocol.max_connections = max_connections
    TcpNoDelayHTTPProtocol.header_timeout = header_timeout


# Path segments that are bearer handles: a sign-in flow's id, an unlock link's token, a set-up link's
# token, an app's authorisation request waiting for a sign-in.
_TOKEN_IN_PATH = re.compile(r"(/(?:sign-in/unlock|sign-in|setup|authorize/resume)/)[^/?#\s]+")
# Query parameters that carry a token or personal data: an app's ID token sent back at sign-out.
_TOKEN_IN_QUERY = re.compile(r"([?&](?:id_token_hint|code|access_token|refresh_token)=)[^&#\s]+")


def redact_path(path: str) -> str:
    """``/setup/<token>`` -> ``/setup/***``: what an access log may keep of a path."""
    return _TOKEN_IN_QUERY.sub(r"\1***", _TOKEN_IN_PATH.sub(r"\1***", path))


class RedactTokens(logging.Filter):
    """Takes the set-up link tokens and sign-in flow ids out of uvicorn's access log lines.

    uvicorn logs ``(client, method, path, http version, status)``; a set-up link's
    token lets whoever holds it choose a new member's password, so it must not
    sit in a log file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Install ``RedactTokens`` on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
