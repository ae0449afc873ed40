"""Helpers for tests that need real concurrency: the app served by uvicorn over
real HTTP on a free loopback port, and a way to start many requests at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import uvicorn


@contextmanager
def live_server(app, *, access_log: bool = True) -> Iterator[str]:
    """Serve ``app`` (built on the test's services and clock) in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # A Twofold app has services; a test's own app (an OIDC client, middleware-wrapped) has none.
    services = getattr(getattr(app, "state", None), "services", None)
    if services is not None:
        serve_at(services, port)
    # log_config=None: uvicorn's records propagate to the root logger (and caplog).
    # timeout_keep_alive: tests open their connections before releasing a race; on a busy
    # machine that can take longer than uvicorn's 5 s, which would close the first ones.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10  # waiting for readiness, not moving the clock
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve_at(services, port: int) -> None:
    """Tell ``services`` the port it is really served on, as ``twofold serve`` does through the
    environment: development's emailed links point at the served address."""
    services.settings.port = port
    services.mail.base_url = services.settings.resolved_public_origin()


def all_at_once(count: int, attempt: Callable[[int], object]) -> list:
    """Run ``attempt(i)`` for i in range(count) in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run(index: int):
        barrier.wait(timeout=30)
        return attempt(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
