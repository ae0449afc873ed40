"""The audit chain keyed: what HMAC-SHA256 costs over the unkeyed SHA-256 it replaced, measured.

    .venv/bin/python benchmarks/audit_chain.py

Prints, side by side, the median time to compute one event's link (what every audited
request pays once) under the old and the new formula, then how long verifying and anchoring
a chain of 10,000 events take, on a SQLite file in a temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.crypto.chain import ChainKeys, canonical
from twofold.settings import Settings
from twofold.store.migrate import upgrade
from twofold.wiring import build_services

EVENTS = 10_000
SECRET = "benchmark secret key, at least 32 characters"
FIELDS = {
    "chain": 1,
    "seq": 1234,
    "practice_id": 1,
    "at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC).isoformat(),
    "event": "account:sign_in:succeeded",
    "actor_id": 17,
    "subject_id": 17,
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "details": {"method": "totp", "remembered": False},
}


def per_call(fn, repeat: int = 20_000, rounds: int = 7) -> float:
    """Median seconds per call over ``rounds`` rounds of ``repeat`` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        samples.append((time.perf_counter() - start) / repeat)
    return statistics.median(samples)


def main() -> None:
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])})"
    )
    keys = ChainKeys(SECRET)
    prev = "a" * 64
    unkeyed = per_call(lambda: hashlib.sha256(f"{prev}\n{canonical(FIELDS)}".encode()).hexdigest())
    keyed = per_call(lambda: keys.link(prev, FIELDS))
    print(f"one link   SHA-256 (before): {unkeyed * 1e6:6.2f} µs   HMAC-SHA256 (now): {keyed * 1e6:6.2f} µs")

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            _env_file=None, var_dir=Path(folder), database_url=f"sqlite:///{folder}/bench.db", secret_key=SECRET
        )
        services = build_services(settings, clock=FrozenClock())
        upgrade(services.db.engine, secret_key=SECRET)
        practice = services.accounts.create_practice(name="Bench Practice", context=RequestContext())
        context = RequestContext(ip="203.0.113.7", user_agent=str(FIELDS["user_agent"]))
        with services.db.transaction() as s:
            services.audit.record_many(
                s,
                ((FIELDS["event"], 17, FIELDS["details"]) for _ in range(EVENTS - 1)),
                context=context,
                practice_id=practice.id,
            )
        start = time.perf_counter()
        [report] = services.audit_trail.verify(practice_id=practice.id)
        verified = time.perf_counter() - start
        assert report.ok and report.events == EVENTS
        start = time.perf_counter()
        anchor, broken = services.audit_trail.anchor_heads()
        anchored = time.perf_counter() - start
        assert not broken and services.audit_trail.signed_here(anchor)
        services.close()
    print(f"verify     {EVENTS} events: {verified:.2f} s ({EVENTS / verified:,.0f} events/s)")
    print(f"anchor     every chain (verifies first, then signs): {anchored:.2f} s")


if __name__ == "__main__":
    main()
