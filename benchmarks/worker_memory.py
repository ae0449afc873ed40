"""A server process's memory under password sign-ins, with glibc's malloc arenas bounded or not.

What is measured: the resident memory (VmRSS, and its peak VmHWM) of one ``python -m
twofold serve --no-demo`` process (SQLite, one worker: the serving process is the one
started) while ``--clients`` threads send ``POST /api/v1/sign-in`` with the right password
of one member without 2FA for ``--duration`` seconds. Each request hashes with argon2id
(m=19 MiB) in a request thread and answers 200 with a new session; at most
``TWOFOLD_PASSWORD_HASH_CONCURRENCY`` hashes run at once. Two runs side by side:

- ``MALLOC_ARENA_MAX=2``: what ``twofold serve`` sets for its workers by default;
- ``MALLOC_ARENA_MAX=<8 x CPUs>``: glibc's own default on 64-bit, set explicitly
  (``twofold serve`` keeps an operator's value).

Printed per run: RSS after start-up, the median and last RSS of the samples taken every
half second while loaded, the peak (VmHWM), and the sign-ins per second. Every answer must
be 200, or the run is reported as failed.

    .venv/bin/python benchmarks/worker_memory.py [--clients 16] [--duration 30] [--arenas 2 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twofold.context import RequestContext  # noqa: E402
from twofold.settings import Settings  # noqa: E402
from twofold.store.migrate import upgrade  # noqa: E402
from twofold.wiring import build_services  # noqa: E402

PASSWORD = "benchmark password 1"
EMAIL = "memory@bench.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def prepare(var: Path) -> dict[str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TWOFOLD_") and k != "MALLOC_ARENA_MAX"},
        "TWOFOLD_VAR_DIR": str(var),
        "TWOFOLD_DATABASE_URL": f"sqlite:///{var / 'bench.db'}",
        "TWOFOLD_PURGE_INTERVAL_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
    }
    settings = Settings(_env_file=None, var_dir=var, database_url=env["TWOFOLD_DATABASE_URL"])
    services = build_services(settings)
    upgrade(services.db.engine)
    practice = services.accounts.create_practice(name="Memory Bench", context=RequestContext())
    services.accounts.add_member(
        practice_id=practice.id,
        email=EMAIL,
        name="Memory",
        role="provider",
        password=PASSWORD,
        context=RequestContext(),
    )
    services.close()
    return env


def run(arenas: str, clients: int, duration: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = {**prepare(Path(folder) / "var"), "MALLOC_ARENA_MAX": arenas}
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "twofold", "serve", "--no-demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    probe.request("GET", "/api/v1/health")
                    if probe.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            started = memory_kib(server.pid)["VmRSS"]
            stop = time.monotonic() + duration
            done = [0]
            failures = [0]
            lock = threading.Lock()
            body = json.dumps({"email": EMAIL, "password": PASSWORD})

            def client() -> None:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                while time.monotonic() < stop:
                    connection.request("POST", "/api/v1/sign-in", body, {"content-type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                    with lock:
                        done[0] += 1
                        failures[0] += response.status != 200

            threads = [threading.Thread(target=client) for _ in range(clients)]
            for thread in threads:
                thread.start()
            samples = []
            while time.monotonic() < stop:
                samples.append(memory_kib(server.pid)["VmRSS"])
                time.sleep(0.5)
            for thread in threads:
                thread.join()
            final = memory_kib(server.pid)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return {
        "arenas": arenas,
        "start_mib": started / 1024,
        "median_mib": statistics.median(samples) / 1024,
        "last_mib": final["VmRSS"] / 1024,
        "peak_mib": final["VmHWM"] / 1024,
        "per_second": done[0] / duration,
        "failures": failures[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--arenas", nargs="+", default=["2", str(8 * (os.cpu_count() or 1))])
    options = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    results = [run(arenas, options.clients, options.duration) for arenas in options.arenas]
    print(
        f"{'MALLOC_ARENA_MAX':>16} {'start MiB':>10} {'median MiB':>11} {'last MiB':>9} {'peak MiB':>9} {'sign-ins/s':>11}"
    )
    for r in results:
        failed = f"  FAILED: {r['failures']} answers were not 200" if r["failures"] else ""
        print(
            f"{r['arenas']:>16} {r['start_mib']:>10.0f} {r['median_mib']:>11.0f} {r['last_mib']:>9.0f} "
            f"{r['peak_mib']:>9.0f} {r['per_second']:>11.1f}{failed}"
        )
    print(f"load average {os.getloadavg()[0]:.2f} at end; {options.clients} clients, {options.duration:.0f} s per run")


if __name__ == "__main__":
    main()
