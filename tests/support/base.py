"""Constants and plain helpers every test module may import: the test password and secret
key, the PostgreSQL and Redis URLs in use (found or named, see tests/support/optional.py),
the one way to skip for a missing optional part, and signing in through the API.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.support.optional import OPTIONAL
from twofold.crypto import otp

SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
PASSWORD = "correct horse battery"
POSTGRES_URL = OPTIONAL.parts["postgres"].found.url
REDIS_URL = OPTIONAL.parts["redis"].found.url
REQUIRE_ALL = os.environ.get("TWOFOLD_TEST_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip for a missing optional part; fail instead when TWOFOLD_TEST_REQUIRE_ALL=1 (CI), so CI cannot pass by skipping."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (TWOFOLD_TEST_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of command-line tool ``name``; skips (or fails, under REQUIRE_ALL) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed")
    return path


def backends() -> list:
    """Parameters for ``backend`` in suites that must pass on SQLite and on PostgreSQL."""
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class Member:
    """A member made by ``make_user``: what the test needs to sign in as them."""

    id: int
    email: str
    password: str
    practice_id: int
    role: str
    totp_key: bytes | None = None
    recovery_codes: list[str] | None = None  # the backup codes shown when 2FA was turned on

    def code(self, clock, offset_steps: int = 0) -> str:
        """The authenticator app's code at ``clock`` (shifted by whole steps)."""
        return otp.totp(self.totp_key, clock.now().timestamp() + offset_steps * otp.PERIOD)


def sign_in(client: TestClient, member: Member, clock=None, remember: bool = False):
    """Password, then (if asked) the current code. Returns the last response."""
    response = client.post("/api/v1/sign-in", json={"email": member.email, "password": member.password})
    if response.json().get("status") == "second_factor_required" and clock is not None:
        body = {"method": "totp", "code": member.code(clock)}
        if remember:
            body["remember_browser"] = True
        response = client.post(f"/api/v1/sign-in/{response.json()['flow_id']}/second-factor", json=body)
    return response
