"""What checking the session and the remembered browser adds to a request.

Both are one lookup by a keyed hash on a unique index. This script fills a
database with many sessions and remembered browsers, then times, in one run:

- baseline: a read transaction that runs ``SELECT 1`` (what any request that
  touches the database pays anyway: pool checkout, BEGIN, COMMIT);
- session check: ``SessionService.resolve(token)`` as every signed-in request
  calls it (activity is written at most every 20 seconds per session, so the
  common request writes nothing);
- remembered-browser lookup: ``RememberedBrowserService.find`` in a read
  transaction (HMAC of the token + the indexed select);
- remembered-browser check at sign-in: ``RememberedBrowserService.check`` in a
  writing transaction, with its last-used update and audit event (once per
  sign-in, not per request).

It prints p50/p90/p99 in microseconds, the added p50 over the baseline, and the
query plans that show the indexes in use.

    .venv/bin/python benchmarks/session_lookup.py
    .venv/bin/python benchmarks/session_lookup.py --database-url postgresql://postgres@127.0.0.1/bench --rounds 5000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, text

from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.core.notifier import NullNotifier
from twofold.crypto.secret_box import random_token
from twofold.settings import Settings
from twofold.store.migrate import upgrade
from twofold.store.models import AuditChainHead, Practice, RememberedBrowser, User, UserSession
from twofold.wiring import build_services

SECRET_KEY = "benchmark-secret-key-0123456789-abcdefghij"
TARGET_MICROSECONDS = 1000


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return statistics.median(ordered) / 1000, pick(0.90), pick(0.99)


def timed(rounds: int, call) -> list[int]:
    for _ in range(min(500, rounds)):
        call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def populate(services, *, users: int, per_user: int) -> tuple[list[str], list[tuple[int, str]]]:
    """Users, sessions and remembered browsers in bulk; returns session tokens and (user id, browser token)."""
    now = services.clock.now()
    session_hasher = services.sessions.hasher
    browser_hasher = services.remembered.hasher
    with services.db.transaction() as s:
        practice = Practice(name="Benchmark Practice", created_at=now)
        s.add(practice)
        s.flush()
        s.add(AuditChainHead(chain=practice.id, seq=0, hash="0" * 64))
        s.execute(
            insert(User),
            [
                {
                    "practice_id": practice.id,
                    "email": f"user{i}@bench.example",
                    "name": f"User {i}",
                    "role": "staff",
                    "password_hash": "x",
                    "active": True,
                    "created_at": now,
                }
                for i in range(users)
            ],
        )
        user_ids = list(s.execute(select(User.id)).scalars())
    session_tokens, browser_tokens = [], []
    session_rows, browser_rows = [], []
    for user_id in user_ids:
        for _ in range(per_user):
            token = random_token(32)
            session_tokens.append(token)
            session_rows.append(
                {
                    "token_hash": session_hasher.hash(token),
                    "user_id": user_id,
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": now + timedelta(hours=12),
                    "ip": "192.0.2.1",
                }
            )
            token = random_token(32)
            browser_tokens.append((user_id, token))
            browser_rows.append(
                {
                    "token_hash": browser_hasher.hash(token),
                    "user_id": user_id,
                    "created_at": now,
                    "last_used_at": now,
                    "expires_at": now + timedelta(days=30),
                    "ip": "192.0.2.1",
                }
            )
    with services.db.transaction() as s:
        s.execute(insert(UserSession), session_rows)
        s.execute(insert(RememberedBrowser), browser_rows)
    return session_tokens, browser_tokens


def query_plans(services) -> list[str]:
    db = services.db
    queries = {
        "session": "SELECT * FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token_hash = 'x'",
        "remembered browser": "SELECT * FROM remembered_browsers WHERE token_hash = 'x'",
    }
    lines = []
    with db.engine.connect() as connection:
        for name, sql in queries.items():
            prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
            rows = connection.execute(text(prefix + sql)).all()
            plan = " | ".join(str(row[-1]) for row in rows)
            lines.append(f"  {name}: {plan}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--per-user", type=int, default=5, help="sessions and remembered browsers per user")
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        settings = Settings(
            _env_file=None, var_dir=Path(folder), database_url=url, secret_key=SECRET_KEY, db_pool_size=4
        )
        clock = FrozenClock()
        services = build_services(settings, clock=clock, notifier=NullNotifier())
        try:
            upgrade(services.db.engine)
            with services.db.reading() as s:
                if s.execute(select(User.id).limit(1)).first() is not None:
                    print("The database is not empty; give an empty one.", file=sys.stderr)
                    return 2
            sessions, browsers = populate(services, users=args.users, per_user=args.per_user)
            with services.db.engine.connect() as connection:
                if services.db.is_sqlite:
                    connection.exec_driver_sql("ANALYZE")
                else:
                    connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
            rng = random.Random(7)
            clock.advance(seconds=5)  # within the 20-second touch interval: requests write nothing

            def baseline():
                with services.db.reading() as s:
                    s.execute(text("SELECT 1")).scalar()

            def session_check():
                assert services.sessions.resolve(rng.choice(sessions)) is not None

            def browser_lookup():
                _user_id, token = rng.choice(browsers)
                with services.db.reading() as s:
                    assert services.remembered.find(s, token) is not None

            users_by_id = {}
            with services.db.reading() as s:
                for user in s.execute(select(User)).scalars():
                    users_by_id[user.id] = user
            context = RequestContext(ip="192.0.2.1", user_agent="benchmark")

            def browser_check_at_sign_in():
                user_id, token = rng.choice(browsers)
                cookies = {services.remembered.cookie_name(user_id): token}
                with services.db.transaction() as s:
                    user = s.get(User, user_id)
                    assert services.remembered.check(s, user=user, cookies=cookies, context=context).trusted

            results = [
                ("baseline (read transaction, SELECT 1)", timed(args.rounds, baseline)),
                ("session check (resolve)", timed(args.rounds, session_check)),
                ("remembered-browser lookup (find)", timed(args.rounds, browser_lookup)),
                (
                    "remembered-browser check at sign-in (+ write, audit)",
                    timed(max(1, args.rounds // 10), browser_check_at_sign_in),
                ),
            ]
        finally:
            backend = services.db.engine.dialect.name
            plans = query_plans(services)
            services.close()

    print(
        f"backend: {backend}; {args.users} users, {len(sessions)} sessions, {len(browsers)} remembered browsers; "
        f"{args.rounds} rounds"
    )
    base_p50 = percentiles(results[0][1])[0]
    print(f"{'':56} {'p50 µs':>9} {'p90 µs':>9} {'p99 µs':>9} {'added p50 µs':>13}")
    for name, samples in results:
        p50, p90, p99 = percentiles(samples)
        added = "" if name.startswith("baseline") else f"{p50 - base_p50:13.1f}"
        print(f"{name:56} {p50:9.1f} {p90:9.1f} {p99:9.1f} {added:>13}")
    added_session = percentiles(results[1][1])[0] - base_p50
    added_browser = percentiles(results[2][1])[0] - base_p50
    verdict = "met" if max(added_session, added_browser) < TARGET_MICROSECONDS else "NOT met"
    print(f"target: each check adds under {TARGET_MICROSECONDS} µs at p50 -> {verdict}")
    print("query plans:")
    print("\n".join(plans))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
