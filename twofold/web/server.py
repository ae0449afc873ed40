"""How ``twofold serve`` runs uvicorn: its HTTP protocol with one fix, and an access log without tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
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


class TcpNoDelayHTTPProtocol(_HTTPProtocolBase):
    """uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

    With ``--workers N`` uvicorn binds the listening socket itself, with ``proto``
    left at 0, and asyncio then skips TCP_NODELAY on accepted connections
    (Kludex/uvicorn#3149): every keep-alive answer after the first waits about
    40 ms for the client's delayed ACK (measured: 45 ms per request instead of
    under 1 ms, see benchmarks/http_code_step.py). Setting it here works however
    the socket was made.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


# Path segments that are bearer handles: a sign-in flow's id, a set-up link's token, an app's
# authorisation request waiting for a sign-in.
_TOKEN_IN_PATH = re.compile(r"(/(?:sign-in|setup|authorize/resume)/)[^/?#\s]+")
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
