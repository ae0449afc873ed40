"""The per-account password limit is exact across processes and machines.

Two ``twofold serve`` servers of two worker processes each, on one PostgreSQL database and
one Redis, as a practice group runs them behind a load balancer. Fifty wrong passwords for
one account, released together over both servers: exactly five are judged (argon2 runs and
the failure is audited), every other one is refused before any hashing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import REDIS_URL, SECRET_KEY, skip_or_fail
from tests.support.live import all_at_once
from twofold.store.models import AuditEvent
from twofold.throttle import PASSWORD_PER_IP, RedisFailureStore, account_lock_keys, subject_key

GUESSES = 50
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def backend() -> str:
    return "postgresql"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def twofold_server(database_url: str, var_dir, workers: int = 2) -> Iterator[str]:
    """``twofold serve`` as an operator runs it, in its own process group; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "TWOFOLD_DATABASE_URL": database_url,
        "TWOFOLD_REDIS_URL": REDIS_URL or "",
        "TWOFOLD_SECRET_KEY": SECRET_KEY,
        "TWOFOLD_VAR_DIR": str(var_dir),
        "TWOFOLD_REQUEST_THREADS": "8",
        # Opening fifty connections before the race can take longer than the default 5 s idle
        # limit on a busy machine; the server would then close the first ones just as the race
        # writes its request to them.
        "TWOFOLD_HTTP_KEEPALIVE_TIMEOUT": "120",
    }
    command = [sys.executable, "-m", "twofold", "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        [*command, "--no-demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # waiting for start-up, not for the clock
        ready = 0
        while ready < workers * 2:  # several answers, so that every worker has had time to start
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("twofold serve did not start")
            try:
                ready += httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def test_fifty_parallel_guesses_over_two_servers_of_two_workers_get_exactly_five_judged(
    database_url, services, make_user, tmp_path
):
    if not REDIS_URL:
        skip_or_fail("TWOFOLD_TEST_REDIS_URL is not set")
    member = make_user(email=f"race-{uuid.uuid4().hex[:8]}@riverside.example")
    import redis

    counters = redis.Redis.from_url(REDIS_URL)
    try:
        with ExitStack() as stack:
            bases = [stack.enter_context(twofold_server(database_url, tmp_path / f"server{n}")) for n in range(2)]
            clients = [stack.enter_context(httpx.Client(base_url=bases[i % 2], timeout=60)) for i in range(GUESSES)]
            for client in clients:
                client.get("/api/v1/health")  # open the keep-alive connection before the race
            body = {"email": member.email, "password": "not the password"}
            answers = all_at_once(GUESSES, lambda i: clients[i].post("/api/v1/sign-in", json=body))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(401) == 5, statuses
        assert statuses.count(429) == GUESSES - 5, statuses
        with services.db.reading() as s:
            judged = s.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event == "account:sign_in:password_failed", AuditEvent.subject_id == member.id)
            ).scalar_one()
        assert judged == 5
    finally:  # the servers count in Redis under the default prefix: leave nothing behind
        keys = [*account_lock_keys(member.email, member.id), subject_key(PASSWORD_PER_IP, "127.0.0.1")]
        RedisFailureStore(counters).clear(None, keys)
        counters.close()
