"""How ``twofold serve`` runs uvicorn: its HTTP protocol, with one fix."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# For uvicorn.run(http=...): an import string, so worker processes can import it too.
HTTP_PROTOCOL = "twofold.web.server:TcpNoDelayHTTPProtocol"


class TcpNoDelayHTTPProtocol(AutoHTTPProtocol):
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
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        super().connection_made(transport)
