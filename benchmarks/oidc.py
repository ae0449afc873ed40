"""The OpenID Connect token endpoint and userinfo over HTTP, beside the health route, on SQLite and
PostgreSQL, with ``python -m twofold serve --workers 2 --no-demo``, driven by wrk.

What one measured request does:

- ``POST /token`` ``grant_type=authorization_code`` with a code of its own (client_secret_basic,
  scope ``openid email profile groups offline_access``): one writing transaction that finds the
  client and its app, claims the code with a conditional UPDATE, loads the member, saves the access
  and refresh tokens (keyed hashes), and signs an RS256 ID token (joserfc) with the sealed key
  opened once per process. Every request must succeed: the codes used are counted afterwards.
- ``GET /userinfo`` with one live access token: one indexed read of the token and its member.
- ``GET /api/v1/health``: the same app and middleware, one primary-key read.

Prepared in advance (not measured): a practice, a member, an app with its client, the signing
key, and for each token run its codes (inserted directly, as the authorisation step leaves them,
valid 60 seconds, so each run is short). wrk runs on the same machine and takes CPU from the
servers.

    .venv/bin/python benchmarks/oidc.py [--clients 16] [--duration 5] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_code_step import Server  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from twofold.context import RequestContext  # noqa: E402
from twofold.core.oidc.codes import CODE_LIFETIME  # noqa: E402
from twofold.crypto.secret_box import random_token  # noqa: E402
from twofold.settings import Settings  # noqa: E402
from twofold.store.migrate import upgrade  # noqa: E402
from twofold.store.models import OidcAuthorizationCode  # noqa: E402
from twofold.wiring import build_services  # noqa: E402

LUA = Path(__file__).resolve().parent / "oidc.lua"
SECRET_KEY = "benchmark-secret-key-" + "x" * 24
REDIRECT = "https://records.example/callback"
SCOPE = "openid email profile groups offline_access"


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(url: str, clients: int, seconds: int, *extra: str, header: str | None = None) -> Result:
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA)]
    if header:
        command += ["-H", header]
    command += [url, *(["--", *extra] if extra else [])]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk printed no result:\n{output}")
    v = {k: int(x) for k, x in (pair.split("=") for pair in match.group(1).split())}
    return Result(v["requests"], v["duration_us"] / 1e6, v["p50_us"] / 1000, v["p99_us"] / 1000,
                  v["status_errors"] + v["socket_errors"])  # fmt: skip


class Fixture:
    """The practice, member, app and client; codes on demand."""

    def __init__(self, settings: Settings) -> None:
        self.services = build_services(settings)
        upgrade(self.services.db.engine)
        s = self.services
        practice = s.accounts.create_practice(name=f"Bench {uuid.uuid4().hex[:6]}", context=RequestContext())
        user = s.accounts.add_member(
            practice_id=practice.id, email=f"{uuid.uuid4().hex[:8]}@bench.example", name="Bench Member",
            role="provider", password="correct horse battery staple", context=RequestContext(),
        )  # fmt: skip
        self.user_id = user.id
        _view, made = s.oidc_clients.add_app(
            practice_id=practice.id, actor_id=None, context=RequestContext(), name="Records", url=None,
            redirect_uris=[REDIRECT],
        )  # fmt: skip
        assert made is not None and made.client_secret is not None
        self.client_pk = made.client.id
        basic = base64.b64encode(f"{made.client.client_id}:{made.client_secret}".encode()).decode()
        self.authorization = f"Basic {basic}"
        s.oidc_keys.ensure()

    def codes(self, count: int, path: Path) -> None:
        """``count`` fresh codes (valid 60 s from now), written as token request bodies, one a line."""
        s = self.services
        lines, rows = [], []
        for _ in range(count):
            code = random_token(32)
            lines.append(urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))
            rows.append({"code_hash": s.oidc.codes.hasher.hash(code)})
        now = datetime.now(UTC)
        common = {
            "client_pk": self.client_pk, "user_id": self.user_id, "session_id": None, "redirect_uri": REDIRECT,
            "scope": SCOPE, "nonce": None, "code_challenge": None, "code_challenge_method": None, "auth_time": now,
            "amr": "pwd otp mfa", "created_at": now, "expires_at": now + CODE_LIFETIME, "used_at": None,
        }  # fmt: skip
        with s.db.transaction() as session:
            session.execute(insert(OidcAuthorizationCode), [{**common, **row} for row in rows])
            s.oidc.subject(session, self.user_id)
        path.write_text("\n".join(lines) + "\n")

    def used_codes(self, since: datetime) -> int:
        with self.services.db.reading() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(OidcAuthorizationCode)
                    .where(OidcAuthorizationCode.used_at >= since)
                )
                or 0
            )


def postgres_url() -> str | None:
    url = os.environ.get("TWOFOLD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        name = f"twofold_bench_{uuid.uuid4().hex[:8]}"
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
    except Exception as exc:  # noqa: BLE001 - a benchmark says why a backend is left out
        print(f"PostgreSQL left out: {type(exc).__name__}")
        return None


def drop_postgres(url: str) -> None:
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def measure(backend: str, url: str, work: Path, args) -> list[tuple[str, str, int, Result]]:
    settings = Settings(_env_file=None, var_dir=work / backend, database_url=url, secret_key=SECRET_KEY)
    fixture = Fixture(settings)
    env = {**os.environ, "TWOFOLD_DATABASE_URL": url, "TWOFOLD_SECRET_KEY": SECRET_KEY,
           "TWOFOLD_VAR_DIR": str(work / backend), "TWOFOLD_MAIL_OUTBOX": "1"}  # fmt: skip
    server = Server(args.workers, env, work / f"{backend}.log")
    rows = []
    try:
        # One token request by hand: its access token is the one userinfo reads.
        import httpx

        fixture.codes(1, work / "first.txt")
        first = httpx.post(
            f"{server.url}/token",
            content=(work / "first.txt").read_text().strip(),
            headers={"Authorization": fixture.authorization, "Content-Type": "application/x-www-form-urlencoded"},
        )
        first.raise_for_status()
        bearer = f"Authorization: Bearer {first.json()['access_token']}"
        for clients in (1, args.clients):
            seconds = args.duration
            bodies = work / f"{backend}-{clients}.txt"
            fixture.codes(args.codes, bodies)
            since = datetime.now(UTC) - timedelta(seconds=1)
            token = run_wrk(f"{server.url}/token", clients, seconds, str(bodies), fixture.authorization)
            used = fixture.used_codes(since)
            if token.errors or used < token.requests:
                raise SystemExit(f"token run not clean: {token.errors} errors, {used} codes used for {token.requests}")
            rows.append((backend, "POST /token (code)", clients, token))
            rows.append((backend, "GET /userinfo", clients, run_wrk(f"{server.url}/userinfo", clients, seconds,
                                                                      header=bearer)))  # fmt: skip
            rows.append((backend, "GET /api/v1/health", clients, run_wrk(f"{server.url}/api/v1/health", clients,
                                                                           seconds)))  # fmt: skip
    finally:
        server.stop()
        fixture.services.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--codes", type=int, default=4000, help="codes prepared per token run (more than it uses)")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="twofold-oidc-bench-") as tmp:
        work = Path(tmp)
        for backend in args.backends:
            if backend == "sqlite":
                rows += measure("sqlite", f"sqlite:///{work / 'bench.db'}", work, args)
            else:
                url = postgres_url()
                if url is None:
                    continue
                try:
                    rows += measure("postgres", url, work, args)
                finally:
                    drop_postgres(url)
    print(f"\n{' '.join(sys.argv)}")
    print(f"{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.workers} workers; "
          f"wrk -t1 on the same machine, {args.duration} s per row")  # fmt: skip
    print(f"{'backend':<9} {'endpoint':<20} {'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for backend, endpoint, clients, r in rows:
        print(
            f"{backend:<9} {endpoint:<20} {clients:>7} {r.requests:>9} {r.rate:>8.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f}"
        )


if __name__ == "__main__":
    main()
