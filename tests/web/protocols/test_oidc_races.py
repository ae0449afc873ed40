"""Codes and refresh tokens are single use under real concurrency, on SQLite and PostgreSQL: many
token requests with one code (or one refresh token), released together, get one answer of tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import backends
from tests.support.live import all_at_once, live_server
from tests.support.oidc import authorize, pkce, register_app
from twofold.clock import FrozenClock
from twofold.web.app import create_app

RACERS = 12


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def test_a_code_and_a_refresh_token_each_win_once_when_raced(services, practice, make_user, clock):
    member = make_user(with_totp=True)
    app = register_app(services, practice.id)
    verifier, challenge = pkce()
    with TestClient(create_app(services), base_url="http://127.0.0.1") as browser:
        answer = authorize(browser, "http://127.0.0.1", app, member, clock, code_challenge=challenge,
                           code_challenge_method="S256")  # fmt: skip
    with live_server(create_app(services), access_log=False) as base:
        racers = [
            httpx.Client(base_url=base, timeout=30, auth=(app.client_id, app.client_secret)) for _ in range(RACERS)
        ]
        try:
            form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": app.redirect_uri,
                    "code_verifier": verifier}  # fmt: skip
            results = all_at_once(RACERS, lambda i: racers[i].post("/token", data=form))
            winners = [r for r in results if r.status_code == 200]
            assert len(winners) == 1, [r.status_code for r in results]
            assert {r.json()["error"] for r in results if r.status_code != 200} == {"invalid_grant"}

            refresh = {"grant_type": "refresh_token", "refresh_token": winners[0].json()["refresh_token"]}
            results = all_at_once(RACERS, lambda i: racers[i].post("/token", data=refresh))
            assert len([r for r in results if r.status_code == 200]) <= 1, [r.status_code for r in results]
            assert all(r.status_code in (200, 400) for r in results)
        finally:
            for racer in racers:
                racer.close()
