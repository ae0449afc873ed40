"""Helpers for the web tests: a browser-like client that answers 5xx instead of raising,
and what a whole Security page shows."""

from __future__ import annotations

from contextlib import contextmanager

from fastapi.testclient import TestClient

# The sections a Security page of an account with 2FA on always shows (ids in security.html and its parts).
SECURITY_SECTIONS = (
    'id="tfa-heading"',  # two-factor authentication, with its methods
    'id="authenticator"',  # the authenticator app
    'id="backup-codes"',  # backup codes
    'id="email-method"',  # codes by email
    'id="password"',  # change password
    'id="remembered-browsers"',  # remembered browsers
    'id="sessions"',  # where you are signed in
)


@contextmanager
def browser(app):
    """A client like a browser sees the app: a server error is a 500 answer, not a raised exception."""
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client


def missing_sections(page: str) -> list[str]:
    return [section for section in SECURITY_SECTIONS if section not in page]


def wrong_code(member, clock) -> str:
    """A 6-digit code the member's app does not show now (nor one step either side)."""
    near = {member.code(clock, offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in near)
