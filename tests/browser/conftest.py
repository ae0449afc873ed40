"""A real server and a real browser, for the few tests that must see what a user sees.

``live_server`` serves ``create_app(services)`` with uvicorn in a background
thread, on a free loopback port, over the test's own services (SQLite file,
FrozenClock): tests move ``live_server.clock`` and the server sees it.
``browser`` is one headless Debian Chromium per test session, driven by
Playwright's sync API; ``page`` is a fresh context (no cookies) per test.

``accessibility`` (automatic, every browser test) runs axe-core on every page the test's
browser contexts load, and fails the test at teardown listing each violation of WCAG 2.2 A/AA
(see tests/browser/accessibility.py); ``accessibility.check(page)`` checks a state reached
without a load.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from tests.browser.accessibility import Accessibility, instrument
from tests.conftest import skip_or_fail
from tests.support.live import serve_at
from twofold.clock import FrozenClock
from twofold.web.app import create_app
from twofold.wiring import Services

CHROMIUM = os.environ.get("TWOFOLD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Short enough that a broken page fails the test in seconds, not in Playwright's default 30 s.
TIMEOUT_MS = 10_000


# Page markups already checked this session (a page seen again is not checked again).
CHECKED_MARKUP: set[str] = set()


@pytest.fixture(autouse=True)
def accessibility(monkeypatch):
    """axe-core on every page state the test reaches; the test fails at teardown on any violation."""
    audit = Accessibility(seen=CHECKED_MARKUP)
    instrument(monkeypatch, audit)
    yield audit
    audit.settle()
    if audit.violations:
        pytest.fail(audit.report(), pytrace=False)


@dataclass
class LiveServer:
    url: str
    services: Services
    clock: FrozenClock


class _ThreadedServer(uvicorn.Server):
    """uvicorn's server that says when it listens (no polling, no sleeping)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@pytest.fixture
def live_server(services, clock):
    """uvicorn serving the test's app on 127.0.0.1:<free port>, stopped after the test."""
    # proto IPPROTO_TCP, so asyncio turns Nagle off on accepted connections (uvicorn#3149).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serve_at(services, port)
    config = uvicorn.Config(create_app(services), log_level="warning", access_log=False, lifespan="on")
    server = _ThreadedServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    if not server.ready.wait(10) or not server.started:
        server.should_exit = True
        thread.join(5)
        sock.close()
        pytest.fail("the live server did not start")
    yield LiveServer(f"http://127.0.0.1:{port}", services, clock)
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian's package; never a downloaded browser build."""
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM}")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def context(browser, live_server):
    """A new browser context (its own cookies) with the live server as base URL."""
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1000, "height": 1100})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()
