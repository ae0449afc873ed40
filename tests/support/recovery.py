"""Helpers for backup-code and email-code tests: read codes out of real received mail, drive flows."""

from __future__ import annotations

import re
import time

from tests.support.base import PASSWORD
from tests.support.mail import Mailbox, Received

CHROME_ON_WINDOWS = {
    "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
}
_CODE_LINE = re.compile(r"^\s+(\d{8})\s*$", re.M)

SIGN_IN_CODE = "Your Twofold sign-in code"
CONFIRM_CODE = "Confirm your email for sign-in codes"
REAUTH_CODE = "Your Twofold confirmation code"


def emailed_code(message: Received) -> str:
    """The 8-digit code of a code email, read from its text part (and present in its HTML part too)."""
    match = _CODE_LINE.search(message.text)
    assert match, f"no code in {message.subject!r}"
    assert match.group(1) in message.html
    return match.group(1)


def wait_for_subject(mailbox: Mailbox, to: str, subject: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
    """Block until ``count`` messages with ``subject`` have reached ``to``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in mailbox.to(to) if m.subject == subject]
        if len(found) >= count:
            return found
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise AssertionError
            mailbox.wait_for(len(mailbox.to(to)) + 1, to=to, timeout=remaining)
        except AssertionError:
            got = [m.subject for m in mailbox.to(to)]
            raise AssertionError(f"expected {count} message(s) {subject!r} to {to}; got {got}") from None


def latest_code(mailbox: Mailbox, to: str, subject: str = SIGN_IN_CODE) -> str:
    return emailed_code(wait_for_subject(mailbox, to, subject)[-1])


def start_flow(client, member, headers: dict | None = None) -> dict:
    response = client.post(
        "/api/v1/sign-in", json={"email": member.email, "password": member.password}, headers=headers
    )
    assert response.status_code == 200 and response.json()["status"] == "second_factor_required", response.text
    return response.json()


def second_factor(client, flow_id: str, method: str, code: str, headers: dict | None = None):
    return client.post(
        f"/api/v1/sign-in/{flow_id}/second-factor", json={"method": method, "code": code}, headers=headers
    )


def add_email_method(client, mailbox: Mailbox, member, clock) -> dict:
    """Add email codes for a signed-in ``client`` by the API, reading the confirming code from the mailbox.

    Moves the clock past the send limit's 30 seconds afterwards, so the next send is allowed.
    """
    before = len([m for m in mailbox.to(member.email) if m.subject == CONFIRM_CODE])
    assert client.post("/api/v1/me/email-method").status_code == 202
    code = emailed_code(wait_for_subject(mailbox, member.email, CONFIRM_CODE, before + 1)[-1])
    response = client.post("/api/v1/me/email-method/confirm", json={"code": code})
    assert response.status_code == 200, response.text
    clock.advance(seconds=30)
    return response.json()


def sign_in_with_password(client, member):
    return client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD})
