"""The sign-in code step over HTTP, on SQLite, beside a bare one-read endpoint of the same app.

What one measured request does: ``POST /api/v1/sign-in/{flow_id}/second-factor``
``{"method":"totp","code":...}`` with the right code of the current step, for a user
with a confirmed authenticator app and a live sign-in flow. The server (``python -m
twofold serve --workers N --no-demo``, SQLite, system clock) answers 200
``{"status":"signed_in"}`` with a session cookie after one writing transaction
(BEGIN IMMEDIATE) that reads the flow, the user and practice, the throttle counters
and the TOTP credential (AES-GCM decrypt), checks the code, claims its step with the
conditional UPDATE of the replay guard, marks the flow used, inserts the session
(keyed hash of a 256-bit id), updates ``last_sign_in_at`` and appends the
hash-chained audit event. Every request is a real success: each one uses its own
user and flow (a code is accepted once per account), and after each run the
database is checked to hold one consumed flow, one session and one audit event per
success, and wrk must report no error.

Prepared in advance (not measured): the users, with one real argon2id hash shared
by all (the code step does not read it), their confirmed TOTP credentials, and for
each run its flows as the password step leaves them (state ``password_verified``,
ten-minute expiry); the codes are computed right before each run.

The bare endpoint is ``GET /api/v1/health``: the same app and middleware, one
primary-key read. On SQLite both run their database work on the event loop
(twofold/web/blocking.py), and each server process checkpoints the WAL from a
background thread (twofold/store/checkpoint.py). The load comes from wrk (one thread, keep-alive
connections, closed loop): ``--clients`` concurrent connections, and 1 for the
unloaded latency. wrk runs on the same machine and takes CPU from the servers.

    .venv/bin/python benchmarks/http_code_step.py [--workers 1 2] [--clients 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from twofold.audit import EventTag  # noqa: E402
from twofold.context import RequestContext  # noqa: E402
from twofold.core.signin import FLOW_TTL, PASSWORD_VERIFIED, SECOND_FACTOR_VERIFIED  # noqa: E402
from twofold.crypto import otp  # noqa: E402
from twofold.settings import Settings  # noqa: E402
from twofold.store.migrate import upgrade  # noqa: E402
from twofold.store.models import AuditEvent, SignInFlow, TotpCredential, User, UserSession  # noqa: E402
from twofold.wiring import build_services  # noqa: E402

LUA = Path(__file__).resolve().parent / "code_step.lua"
PASSWORD = "benchmark password 1"


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    status_errors: int
    socket_errors: int
    exhausted: int
    cpu_ms: float = 0.0  # server CPU time per request, all its processes together

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


class Population:
    """Users with confirmed authenticator apps, handed out in batches: each is used once."""

    def __init__(self, services, count: int) -> None:
        self.services = services
        now = datetime.now(UTC)
        practice = services.accounts.create_practice(name="Benchmark Practice", context=RequestContext.system("bench"))
        template = services.accounts.add_member(
            practice_id=practice.id,
            email="template@bench.example",
            name="Template",
            role="provider",
            password=PASSWORD,
            context=RequestContext.system("bench"),
        )
        self.keys: list[bytes] = []
        users, credentials = [], []
        with services.db.transaction() as s:
            first_id = (s.scalar(select(func.max(User.id))) or 0) + 1
        for index in range(count):
            user_id = first_id + index
            users.append(
                {
                    "id": user_id,
                    "practice_id": practice.id,
                    "email": f"user{index}@bench.example",
                    "name": f"User {index}",
                    "role": "staff",
                    "password_hash": template.password_hash,
                    "active": True,
                    "created_at": now,
                }
            )
            key = otp.new_secret()
            self.keys.append(key)
            credential_id = secrets.token_hex(16)
            credentials.append(
                {
                    "id": credential_id,
                    "user_id": user_id,
                    "secret_sealed": services.box.seal(key, context=f"totp:{credential_id}"),
                    "created_at": now,
                    "confirmed_at": now,
                    # As if the confirming code was a few steps ago: the replay guard holds a value.
                    "last_used_step": otp.time_step(now.timestamp()) - 5,
                }
            )
        with services.db.transaction() as s:
            for start in range(0, count, 5000):
                s.execute(insert(User), users[start : start + 5000])
                s.execute(insert(TotpCredential), credentials[start : start + 5000])
        self.first_id = first_id
        self.next = 0

    def take(self, count: int) -> list[tuple[int, bytes]]:
        if self.next + count > len(self.keys):
            raise SystemExit("not enough prepared users; raise --max-rate")
        batch = [(self.first_id + i, self.keys[i]) for i in range(self.next, self.next + count)]
        self.next += count
        return batch

    def open_flows(self, batch: list[tuple[int, bytes]], data_file: Path) -> list[str]:
        """One live flow per user (as the password step leaves it: its id and its browser's flow cookie
        stored as keyed hashes), and the file of '<flow> <code> <flow cookie>' lines."""
        now = datetime.now(UTC)
        flows = [secrets.token_urlsafe(24) for _ in batch]
        bindings = [secrets.token_urlsafe(32) for _ in batch]
        hasher = self.services.sign_in.flow_hasher
        with self.services.db.transaction() as s:
            s.execute(
                insert(SignInFlow),
                [
                    {
                        "id": hasher.hash(flow),
                        "binding_hash": hasher.hash(f"binding:{binding}"),
                        "user_id": user_id,
                        "state": PASSWORD_VERIFIED,
                        "created_at": now,
                        "expires_at": now + FLOW_TTL,
                        "attempts": 0,
                        "ip": "127.0.0.1",
                        "user_agent": "wrk",
                    }
                    for flow, binding, (user_id, _key) in zip(flows, bindings, batch, strict=True)
                ],
            )
        moment = time.time()
        data_file.write_text(
            "".join(
                f"{flow} {otp.totp(key, moment)} {binding}\n"
                for flow, binding, (_u, key) in zip(flows, bindings, batch, strict=True)
            )
        )
        return [hasher.hash(flow) for flow in flows]

    def consumed(self, flows: list[str], since: datetime, user_ids: list[int]) -> tuple[int, int, int]:
        """(flows used, sessions begun, sign-in audit events) for this batch."""
        with self.services.db.reading() as s:
            used = sum(
                s.scalar(
                    select(func.count())
                    .select_from(SignInFlow)
                    .where(SignInFlow.id.in_(flows[i : i + 900]), SignInFlow.state == SECOND_FACTOR_VERIFIED)
                )
                for i in range(0, len(flows), 900)
            )
            low, high = min(user_ids), max(user_ids)
            sessions = s.scalar(
                select(func.count())
                .select_from(UserSession)
                .where(UserSession.user_id.between(low, high), UserSession.created_at >= since)
            )
            events = s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.event == EventTag.SIGN_IN_SUCCEEDED.value,
                    AuditEvent.subject_id.between(low, high),
                    AuditEvent.at >= since,
                )
            )
        return used, sessions, events


def uvicorn_parts() -> str:
    """What uvicorn's "auto" picks here: its event loop and HTTP parser."""
    from importlib.util import find_spec

    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    parser = "httptools" if find_spec("httptools") else "h11"
    return f"with {loop} + {parser}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, workers: int, env: dict, log_path: Path) -> None:
        self.port = free_port()
        # Not a with-block: the server writes to it for its whole life; stop() closes it.
        self.log = open(log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twofold",
                "serve",
                "--workers",
                str(workers),
                "--no-demo",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}; see {log_path}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/api/v1/health")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit(f"the server did not answer within 60 s; see {log_path}")
        # Let every worker process finish starting before measuring.
        time.sleep(1.0 if workers > 1 else 0.2)

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the server's processes (its process group)."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # field 5, pgrp: the server is its group leader
                total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


def wrk(server: Server, path: str, clients: int, seconds: float, data_file: Path | None = None) -> Result:
    url = server.url + path
    command = ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(LUA), url]
    if data_file is not None:
        command += ["--", str(data_file), "1"]
    cpu_before = server.cpu_seconds()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk printed no result:\n{output}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return Result(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        status_errors=values["status_errors"],
        socket_errors=values["socket_errors"],
        exhausted=values["exhausted"],
        cpu_ms=cpu * 1000 / max(1, values["requests"]),
    )


def measure_code_step(
    server: Server, population: Population, clients: int, seconds: float, max_rate: int, work: Path
) -> Result:
    batch = population.take(int(max_rate * seconds) + 200)
    data_file = work / f"flows-{population.next}.txt"
    since = datetime.now(UTC) - timedelta(seconds=1)
    flows = population.open_flows(batch, data_file)
    result = wrk(server, "/", clients, seconds, data_file)
    problems = []
    if result.exhausted:
        problems.append(f"ran out of prepared flows ({result.exhausted} requests); raise --max-rate")
    if result.status_errors or result.socket_errors:
        problems.append(f"{result.status_errors} non-2xx answers, {result.socket_errors} socket errors")
    # wrk counts the answers it read before stopping; the server may finish a few more in flight.
    used, sessions, events = population.consumed(flows, since, [user_id for user_id, _ in batch])
    if not (used == sessions == events) or used < result.requests:
        problems.append(
            f"database holds {used} used flows, {sessions} sessions, {events} sign-in events "
            f"for {result.requests} answers"
        )
    if problems:
        raise SystemExit("code step run is not clean: " + "; ".join(problems))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per loaded run")
    parser.add_argument("--unloaded-duration", type=int, default=5, help="seconds per 1-client run")
    parser.add_argument("--max-rate", type=int, default=3000, help="req/s to prepare users and flows for")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, server log)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="twofold-bench-"))
    env = {
        **os.environ,
        "TWOFOLD_ENV": "development",
        "TWOFOLD_VAR_DIR": str(work / "var"),
        "TWOFOLD_DATABASE_URL": f"sqlite:///{work / 'var' / 'twofold.db'}",
        "TWOFOLD_SECRET_KEY": secrets.token_urlsafe(48),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    settings = Settings(
        _env_file=None,
        env="development",
        var_dir=work / "var",
        database_url=env["TWOFOLD_DATABASE_URL"],
        secret_key=env["TWOFOLD_SECRET_KEY"],
    )
    services = build_services(settings)
    upgrade(services.db.engine)
    per_worker_count = int(args.max_rate * (args.duration + args.unloaded_duration)) + 400
    started = time.perf_counter()
    population = Population(services, per_worker_count * len(args.workers))
    prep_seconds = time.perf_counter() - started

    rows: list[tuple[int, str, int, Result]] = []
    try:
        for workers in args.workers:
            server = Server(workers, env, work / f"server-{workers}.log")
            try:
                unloaded = measure_code_step(server, population, 1, args.unloaded_duration, args.max_rate, work)
                rows.append((workers, "code step", 1, unloaded))
                rows.append((workers, "health (1 read)", 1, wrk(server, "/api/v1/health", 1, args.unloaded_duration)))
                loaded = measure_code_step(server, population, args.clients, args.duration, args.max_rate, work)
                rows.append((workers, "code step", args.clients, loaded))
                rows.append(
                    (
                        workers,
                        "health (1 read)",
                        args.clients,
                        wrk(server, "/api/v1/health", args.clients, args.duration),
                    )
                )
            finally:
                server.stop()
    finally:
        services.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for *_, result in rows:
        if result.status_errors or result.socket_errors:
            raise SystemExit("a health run had errors")

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs (load average before: {load_before}, "
        f"niceness {os.nice(0)}), SQLite, "
        f"uvicorn {uvicorn_parts()}, database work of both routes on the event loop, "
        f"wrk -t1 on the same machine; {len(population.keys)} users prepared in "
        f"{prep_seconds:.1f} s"
    )
    print()
    print(
        f"{'workers':>7} {'endpoint':<16} {'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server CPU ms/req':>18}"
    )
    for workers, name, clients, result in rows:
        print(
            f"{workers:>7} {name:<16} {clients:>7} {result.requests:>9} {result.rate:>8.0f} "
            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.cpu_ms:>18.2f}"
        )
    print()
    print(
        "every code-step request answered 200 signed_in; the database holds one used flow, one session and "
        "one audit event for each"
    )


if __name__ == "__main__":
    main()
