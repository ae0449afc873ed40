"""How ``twofold serve`` runs uvicorn: every connection has Nagle's algorithm off, a client must send
its request headers in time, and past the connection limit a new client is told 503 and the log says so."""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading

import pytest
import uvicorn

from twofold.web.app import create_app
from twofold.web.server import HTTP_PROTOCOL, limit_connections


class _Server(uvicorn.Server):
    def __init__(self, config):
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        self.ready.set()


def nodelay_of_served_connections(services, http_protocol: str) -> list[int]:
    # Bound the way uvicorn's --workers supervisor binds it: proto left at 0 (uvicorn#3149).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(services), http=http_protocol, log_level="warning", access_log=False)
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10), "server did not start"
        client = http.client.HTTPConnection(*sock.getsockname(), timeout=10)
        client.request("GET", "/api/v1/health")
        assert client.getresponse().read() == b'{"status":"ok"}'
        options = [
            protocol.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            for protocol in server.server_state.connections
        ]
        client.close()
        return options
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_connections_on_a_supervisor_bound_socket_get_tcp_nodelay(services):
    # With uvicorn's own protocol ("h11") this list is [0] while uvicorn#3149 is open.
    options = nodelay_of_served_connections(services, HTTP_PROTOCOL)
    assert options and all(options)


@contextlib.contextmanager
def served(services, *, max_connections=None, header_timeout=None):
    """The app served over real TCP with twofold serve's HTTP protocol and the given limits."""
    limit_connections(max_connections=max_connections, header_timeout=header_timeout)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(services), http=HTTP_PROTOCOL, log_config=None, access_log=False, timeout_keep_alive=1
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10), "server did not start"
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        limit_connections(max_connections=None, header_timeout=None)


def closed_by_server(conn: socket.socket, within: float) -> bool:
    """Whether the server closes ``conn`` within ``within`` seconds (reading what it sends first)."""
    conn.settimeout(within)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/v1/health HTTP/1.1\r\n", b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: 1"],
    ids=["nothing", "request-line-only", "headers-never-end"],
)
def test_a_client_that_never_completes_its_headers_is_disconnected(services, sent):
    with served(services, header_timeout=0.5) as address, socket.create_connection(address) as conn:
        conn.sendall(sent)
        assert closed_by_server(conn, within=5)


def test_headers_trickled_past_the_deadline_on_a_kept_alive_connection_are_cut_off(services):
    with served(services, header_timeout=0.5) as address, socket.create_connection(address) as conn:
        conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        assert b'{"status":"ok"}' in conn.recv(4096)
        conn.sendall(b"GET /api/v1/health HTTP/1.1\r\n")  # the second request stalls
        assert closed_by_server(conn, within=5)


def test_a_prompt_client_is_served_as_before(services):
    with served(services, header_timeout=0.5) as address:
        client = http.client.HTTPConnection(*address, timeout=5)
        for _ in range(3):
            client.request("GET", "/api/v1/health")
            assert client.getresponse().read() == b'{"status":"ok"}'
        client.close()


def test_past_the_connection_limit_a_new_client_gets_503_and_the_log_says_why(services, caplog):
    with served(services, max_connections=2) as address:
        held = [socket.create_connection(address) for _ in range(2)]
        try:
            for conn in held:  # each really accepted and served
                conn.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                conn.settimeout(5)
                assert b"200 OK" in conn.recv(4096)
            with caplog.at_level(logging.WARNING, logger="twofold.server"), socket.create_connection(address) as extra:
                extra.settimeout(5)
                answer = extra.recv(4096)
                assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in answer
                assert closed_by_server(extra, within=5)
            assert any("connection limit reached" in r.getMessage() for r in caplog.records)
        finally:
            for conn in held:
                conn.close()
