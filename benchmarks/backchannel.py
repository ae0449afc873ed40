"""What back-channel logout costs: on the sign-out's own path, and to deliver.

On the path of every request that ends a session, the session service asks which apps hold tokens
from it and writes a notice for each one with a back-channel logout URI; the logout tokens are
signed and posted afterwards, off that path. This script times, in one run on SQLite:

- sign-out: ``SessionService.end`` in its writing transaction for a member whose session gave no
  app a token, beside one whose session gave tokens to 3 apps with a logout URI (3 notices written);
- delivery: ``BackchannelLogout.deliver_due`` for a batch of owed logouts, each signed (RS256) and
  posted to a local HTTP server that answers 200: logouts per second, and µs each.

    .venv/bin/python benchmarks/backchannel.py
    .venv/bin/python benchmarks/backchannel.py --rounds 2000 --deliveries 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, select

from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.core.notifier import NullNotifier
from twofold.crypto.secret_box import random_token
from twofold.settings import Settings
from twofold.store.migrate import upgrade
from twofold.store.models import OidcLogoutNotice, OidcToken, User, UserSession
from twofold.wiring import build_services

SECRET_KEY = "benchmark-secret-key-0123456789-abcdefghij"
APPS = 3


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000, help="sign-outs timed per case")
    parser.add_argument("--deliveries", type=int, default=300, help="logouts delivered")
    args = parser.parse_args()

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{receiver.server_address[1]}/logout"

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        settings = Settings(_env_file=None, var_dir=Path(folder), database_url=url, secret_key=SECRET_KEY)
        clock = FrozenClock()
        services = build_services(settings, clock=clock, notifier=NullNotifier())
        services.backchannel.send_after_commit = False  # delivery is timed on its own below
        try:
            upgrade(services.db.engine)
            practice = services.accounts.create_practice(name="Benchmark Practice", context=RequestContext())
            member = services.accounts.add_member(
                practice_id=practice.id,
                email="bench@riverside.example",
                name="Bench",
                role="staff",
                password="correct horse battery staple",
                context=RequestContext(),
            )
            clients = []
            for n in range(APPS):
                _view, made = services.oidc_clients.add_app(
                    practice_id=practice.id,
                    actor_id=None,
                    context=RequestContext(),
                    name=f"App {n}",
                    url=None,
                    redirect_uris=[f"https://app{n}.example/cb"],
                    backchannel_logout_uri=uri,
                )
                clients.append(made.client)

            def session() -> tuple[str, int]:
                with services.db.transaction() as s:
                    token = services.sessions.start(s, user=s.get(User, member.id), context=RequestContext())
                    found = select(UserSession.id).where(UserSession.token_hash == services.sessions.hasher.hash(token))
                    return token, s.scalars(found).one()

            def sign_out(with_tokens: bool) -> int:
                token, session_id = session()
                if with_tokens:
                    with services.db.transaction() as s:
                        services.oidc.subject(s, member.id)
                        for client in clients:
                            s.add(
                                OidcToken(
                                    client_pk=client.id,
                                    user_id=member.id,
                                    session_id=session_id,
                                    family=random_token(8),
                                    scope="openid",
                                    access_token_hash=random_token(24),
                                    issued_at=clock.now(),
                                    access_expires_at=clock.now() + timedelta(minutes=10),
                                    auth_time=clock.now(),
                                    amr="pwd",
                                )
                            )
                start = time.perf_counter_ns()
                with services.db.transaction() as s:
                    services.sessions.end(s, token=token)
                return time.perf_counter_ns() - start

            for case in (False, True):
                for _ in range(min(100, args.rounds)):
                    sign_out(case)
            plain = [sign_out(False) for _ in range(args.rounds)]
            owed = [sign_out(True) for _ in range(args.rounds)]
            with services.db.transaction() as s:
                s.execute(delete(OidcLogoutNotice))

            with services.db.transaction() as s:
                for n in range(args.deliveries):
                    s.add(
                        OidcLogoutNotice(
                            client_pk=clients[n % APPS].id,
                            subject="bench",
                            sid=random_token(16),
                            reason="signed_out",
                            created_at=clock.now(),
                            next_try_at=clock.now(),
                            attempts=0,
                        )
                    )
            start = time.perf_counter()
            delivered = services.backchannel.deliver_due()
            took = time.perf_counter() - start
        finally:
            services.close()
            receiver.shutdown()

    print(f"command: python benchmarks/backchannel.py --rounds {args.rounds} --deliveries {args.deliveries}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}   (SQLite, {APPS} apps)")
    print()
    print(f"{'sign-out transaction':<44} {'median µs':>10}")
    print(f"{'  session that gave no app a token':<44} {median_us(plain):>10.0f}")
    print(f"{f'  session that gave {APPS} apps tokens (3 notices)':<44} {median_us(owed):>10.0f}")
    print(f"{'  ratio':<44} {median_us(owed) / median_us(plain):>10.2f}")
    print()
    print(
        f"delivery: {delivered} of {args.deliveries} logouts confirmed in {took:.2f} s: "
        f"{delivered / took:.0f} logouts/s, {took / max(1, delivered) * 1e6:.0f} µs each (sign RS256, POST, record)"
    )
    return 0 if delivered == args.deliveries else 1


if __name__ == "__main__":
    raise SystemExit(main())
