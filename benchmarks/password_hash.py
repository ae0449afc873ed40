"""Milliseconds for one argon2id password hash and one verification at Twofold's
default parameters (from ``Settings``: OWASP's minimum m=19 MiB, t=2, p=1, unless
TWOFOLD_ARGON2_* say otherwise), through ``twofold.crypto.passwords.PasswordHasher``.

One call at a time, on one thread: the figure is the cost a single sign-in adds.
Median (and min/max) of N calls each.

    .venv/bin/python benchmarks/password_hash.py [--n 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twofold.crypto.passwords import PasswordHasher
from twofold.settings import Settings

PASSWORD = "correct horse battery staple"


def timings_ms(call, n: int) -> list[float]:
    values = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        values.append((time.perf_counter() - started) * 1000)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="calls of each kind")
    args = parser.parse_args()

    settings = Settings(_env_file=None)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=1,
    )
    stored = hasher.hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD) and not hasher.verify(stored, PASSWORD + "!")

    rows = {
        "hash": timings_ms(lambda: hasher.hash(PASSWORD), args.n),
        "verify (right password)": timings_ms(lambda: hasher.verify(stored, PASSWORD), args.n),
        "verify (unknown email)": timings_ms(lambda: hasher.verify(None, PASSWORD), args.n),
    }
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"argon2id m={settings.argon2_memory_kib} KiB, t={settings.argon2_time_cost}, p={settings.argon2_parallelism}; "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}); {args.n} calls each"
    )
    print()
    print(f"{'operation':<26} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for name, values in rows.items():
        print(f"{name:<26} {statistics.median(values):>10.1f} {min(values):>8.1f} {max(values):>8.1f}")


if __name__ == "__main__":
    main()
