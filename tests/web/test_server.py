"""How ``twofold serve`` runs uvicorn: every connection has Nagle's algorithm off."""

from __future__ import annotations

import http.client
import socket
import threading

import uvicorn

from twofold.web.app import create_app
from twofold.web.server import HTTP_PROTOCOL


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
