"""Forward-auth over HTTP, beside the bare health route of the same server, on SQLite and PostgreSQL.

What one measured request does: ``GET /api/v1/forward-auth`` as Caddy or Traefik sends it
before every request of a protected app (``X-Forwarded-Proto/-Host/-Uri/-Method/-For`` and the
browser's session cookie), for a signed-in member of the app's practice. The server
(``python -m twofold serve --workers N --no-demo``, system clock) answers 200 with the
``Remote-*`` identity headers after reading the app by its address and the session (with its
member and practice); it writes only when the session's activity is older than
``sessions.TOUCH_INTERVAL`` (20 s) and once for the session's first access to the app. wrk must
report no error and no non-2xx answer.

The bare route is ``GET /api/v1/health``: the same app and middleware, one primary-key read.
The load comes from wrk (one thread, keep-alive connections, closed loop): ``--clients``
concurrent connections, and 1 for the unloaded latency. wrk runs on the same machine and takes
CPU from the servers. PostgreSQL is used when it answers on 127.0.0.1:5432 (or
``--postgres URL``): a throwaway database is created and dropped.

    .venv/bin/python benchmarks/forward_auth.py [--workers 1 2] [--clients 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_code_step import LUA, Result, Server, uvicorn_parts  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from twofold.context import RequestContext  # noqa: E402
from twofold.settings import Settings  # noqa: E402
from twofold.store.migrate import upgrade  # noqa: E402
from twofold.wiring import build_services  # noqa: E402

APP_HOST = "files.riverside.example"
COOKIE_DOMAIN = "riverside.example"


def prepare(settings: Settings) -> str:
    """A practice, its app and a signed-in member; returns the member's session cookie value."""
    services = build_services(settings)
    try:
        upgrade(services.db.engine)
        context = RequestContext.system("bench")
        practice = services.accounts.create_practice(name="Benchmark Practice", context=context)
        member = services.accounts.add_member(
            practice_id=practice.id,
            email="dr.bench@riverside.example",
            name="Dr Bench",
            role="provider",
            password="benchmark password 1",
            context=context,
        )
        services.apps.add_app(
            practice_id=practice.id, actor_id=None, name="File share", url=f"https://{APP_HOST}", context=context
        )
        with services.db.transaction() as s:
            from twofold.store.models import User

            token = services.sessions.start(
                s, user=s.get_one(User, member.id), context=context, amr=("pwd", "otp", "mfa")
            )
        return token
    finally:
        services.close()


def wrk(server: Server, path: str, clients: int, seconds: float, headers: list[str]) -> Result:
    command = ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(LUA)]
    for header in headers:
        command += ["-H", header]
    cpu_before = server.cpu_seconds()
    output = subprocess.run([*command, server.url + path], capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - cpu_before
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk printed no result:\n{output}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    result = Result(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        status_errors=values["status_errors"],
        socket_errors=values["socket_errors"],
        exhausted=0,
        cpu_ms=cpu * 1000 / max(1, values["requests"]),
    )
    if result.status_errors or result.socket_errors:
        raise SystemExit(f"{path}: {result.status_errors} non-2xx answers, {result.socket_errors} socket errors")
    return result


def postgres_database(url: str | None) -> tuple[str, callable] | None:
    """A new empty PostgreSQL database (its URL and a function that drops it), or None when none answers."""
    import psycopg

    url = url or "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(url, connect_timeout=2):
            pass
    except Exception:  # noqa: BLE001 - PostgreSQL is optional here
        return None
    admin_url = make_url(url).set(drivername="postgresql+psycopg")
    name = f"twofold_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10, help="seconds per loaded run")
    parser.add_argument("--unloaded-duration", type=int, default=5, help="seconds per 1-client run")
    parser.add_argument("--postgres", help="PostgreSQL server URL (default: 127.0.0.1:5432 when it answers)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="twofold-bench-"))
    databases: list[tuple[str, str, object]] = [("SQLite", f"sqlite:///{work / 'var' / 'twofold.db'}", None)]
    if not args.no_postgres:
        found = postgres_database(args.postgres)
        if found is not None:
            databases.append(("PostgreSQL", found[0], found[1]))
        else:
            print("PostgreSQL does not answer: measuring SQLite only")
    rows: list[tuple[str, int, str, int, Result]] = []
    try:
        for label, url, _drop in databases:
            env = {
                **os.environ,
                "TWOFOLD_ENV": "development",
                "TWOFOLD_VAR_DIR": str(work / "var"),
                "TWOFOLD_DATABASE_URL": url,
                "TWOFOLD_SECRET_KEY": secrets.token_urlsafe(48),
                "TWOFOLD_COOKIE_DOMAIN": COOKIE_DOMAIN,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            }
            settings = Settings(
                _env_file=None,
                env="development",
                var_dir=work / "var",
                database_url=url,
                secret_key=env["TWOFOLD_SECRET_KEY"],
                cookie_domain=COOKIE_DOMAIN,
            )
            token = prepare(settings)
            headers = [
                f"Cookie: __Secure-twofold_session={token}",
                "X-Forwarded-Proto: https",
                f"X-Forwarded-Host: {APP_HOST}",
                "X-Forwarded-Uri: /reports/2024?q=1",
                "X-Forwarded-Method: GET",
                "X-Forwarded-For: 203.0.113.7",
                "Accept: text/html",
            ]
            for workers in args.workers:
                server = Server(workers, env, work / f"server-{label}-{workers}.log")
                try:
                    for clients, seconds in ((1, args.unloaded_duration), (args.clients, args.duration)):
                        forward = wrk(server, "/api/v1/forward-auth", clients, seconds, headers)
                        health = wrk(server, "/api/v1/health", clients, seconds, [])
                        rows.append((label, workers, "forward-auth", clients, forward))
                        rows.append((label, workers, "health", clients, health))
                finally:
                    server.stop()
    finally:
        for _label, _url, drop in databases:
            if drop is not None:
                drop()  # type: ignore[operator]
        shutil.rmtree(work, ignore_errors=True)

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs (load average before: {load_before}), "
        f"uvicorn {uvicorn_parts()}, wrk -t1 on the same machine; one signed-in member, one app"
    )
    print()
    print(
        f"{'database':<10} {'workers':>7} {'endpoint':<13} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'vs health':>9}"
    )
    for index, (label, workers, name, clients, result) in enumerate(rows):
        paired = rows[index + 1][4] if name == "forward-auth" else None
        ratio = f"{result.rate / paired.rate:>8.0%}" if paired else ""
        print(
            f"{label:<10} {workers:>7} {name:<13} {clients:>7} {result.rate:>8.0f} {result.p50_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.cpu_ms:>10.2f} {ratio:>9}"
        )


if __name__ == "__main__":
    main()
