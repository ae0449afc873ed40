"""Every log record the suite produces is scanned for every secret, code and token the test made.

A pytest plugin (registered in tests/conftest.py). For each test it taps where secrets come
from, in the code under test and in the test alike:

- ``secrets.token_urlsafe`` / ``token_hex`` / ``token_bytes`` (session ids, sign-in flow ids,
  set-up link tokens, remembered-browser tokens, TOTP keys in base32 and hex),
- ``secrets.randbelow`` with a power of ten (emailed codes), ``otp.hotp`` (every app code
  computed, by a test or by verification), backup codes (``recovery_codes.factor.new_code``),
- the passwords given to ``PasswordHasher.hash`` / ``verify`` (right and wrong ones),

and records every log record at the level production runs at (INFO; the test's own HTTP
client, SMTP server and browser driver are left out: they are not Twofold). After the test,
a record that holds one of those values fails it, naming the logger and the kind of secret.

What it does not see: the logs of subprocesses (``python -m twofold`` in tests/cli/test_main.py,
the multi-process servers), which those tests check on their own output.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.base import PASSWORD, SECRET_KEY
from twofold.crypto import otp
from twofold.crypto.passwords import PasswordHasher
from twofold.factors.recovery_codes import factor as recovery_codes

# Loggers of the test's own tools: what they print is the test talking, not Twofold.
NOT_TWOFOLD = ("httpx", "httpcore", "mail.log", "aiosmtpd", "playwright", "urllib3", "asyncio", "hypothesis")
SHORTEST = 8  # shorter values (a 5-byte demo token part) could match ordinary words by chance


@dataclass
class Ledger:
    """The secrets one test made, by kind, and the records logged while it ran."""

    values: dict[str, str] = field(default_factory=dict)  # lower-cased value -> kind
    codes: dict[str, str] = field(default_factory=dict)  # all-digit value -> kind
    records: list[logging.LogRecord] = field(default_factory=list)

    def add(self, value: str, kind: str) -> None:
        if value.isdigit():
            if len(value) >= 6:
                self.codes.setdefault(value, kind)
        elif len(value) >= SHORTEST:
            self.values.setdefault(value.lower(), kind)

    def add_key(self, raw: bytes, kind: str) -> None:
        b32 = base64.b32encode(raw).decode().rstrip("=")
        for form in (b32, otp.grouped(b32), raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
            self.add(form, kind)

    def leaks(self) -> list[str]:
        """One line per record that holds a secret: the logger, the level and the kind (the value masked)."""
        found = []
        pattern = (
            re.compile(r"(?<![0-9])(" + "|".join(map(re.escape, self.codes)) + r")(?![0-9])") if self.codes else None
        )
        for record in self.records:
            text = _text(record)
            lowered = text.lower()
            kinds = [kind for value, kind in self.values.items() if value in lowered]
            if pattern is not None:
                kinds += [self.codes[match] for match in pattern.findall(text)]
            if kinds:
                found.append(f"{record.name} {record.levelname}: {sorted(set(kinds))} in {_masked(text, self)[:300]!r}")
        return found


def _text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # noqa: BLE001 - a record that cannot format still has its raw parts
        text = f"{record.msg} {record.args}"
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


def _masked(text: str, ledger: Ledger) -> str:
    for value in ledger.values:
        text = re.sub(re.escape(value), "***", text, flags=re.IGNORECASE)
    for value in ledger.codes:
        text = re.sub(rf"(?<![0-9]){value}(?![0-9])", "######", text)
    return text


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.ledger: Ledger | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.ledger is not None and not record.name.startswith(NOT_TWOFOLD):
            self.ledger.records.append(record)


_COLLECTOR = _Collector()


@pytest.fixture(scope="session", autouse=True)
def _logs_at_production_level():
    """Records at INFO and above reach the collector, as under ``twofold serve``; the test's tools stay quiet."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    root.addHandler(_COLLECTOR)
    yield
    root.removeHandler(_COLLECTOR)
    root.setLevel(before)
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)


def _tap(monkeypatch, owner: Any, name: str, note: Callable[[Any, tuple, dict], None]) -> None:
    original = getattr(owner, name)

    def tapped(*args, **kwargs):
        result = original(*args, **kwargs)
        note(result, args, kwargs)
        return result

    monkeypatch.setattr(owner, name, tapped)


@pytest.fixture(autouse=True)
def secrets_never_logged(monkeypatch, request) -> Ledger:
    """This test's ledger; the test fails at teardown if a log record holds one of its secrets."""
    ledger = Ledger()
    for value, kind in ((PASSWORD, "password"), (SECRET_KEY, "secret key")):
        ledger.add(value, kind)
    _tap(monkeypatch, secrets, "token_urlsafe", lambda token, a, k: ledger.add(token, "token"))
    _tap(monkeypatch, secrets, "token_hex", lambda token, a, k: ledger.add(token, "token"))
    _tap(monkeypatch, secrets, "token_bytes", lambda raw, a, k: ledger.add_key(raw, "key or token"))

    def note_randbelow(number: int, args: tuple, kwargs: dict) -> None:
        bound = args[0] if args else kwargs.get("exclusive_upper_bound", 0)
        digits = len(str(bound)) - 1
        if bound == 10**digits and digits >= 6:
            ledger.add(f"{number:0{digits}d}", "emailed code")

    _tap(monkeypatch, secrets, "randbelow", note_randbelow)
    _tap(monkeypatch, otp, "hotp", lambda code, a, k: ledger.add(code, "authenticator code"))

    def note_backup_code(code: str, args: tuple, kwargs: dict) -> None:
        ledger.add(code, "backup code")
        ledger.add(f"{code[:4]}-{code[4:]}", "backup code")

    _tap(monkeypatch, recovery_codes, "new_code", note_backup_code)

    def note_password(_result, args: tuple, kwargs: dict) -> None:
        password = kwargs.get("password", args[-1] if args else None)
        if isinstance(password, str):
            ledger.add(password, "password")

    _tap(monkeypatch, PasswordHasher, "hash", note_password)
    _tap(monkeypatch, PasswordHasher, "verify", note_password)
    _COLLECTOR.ledger = ledger
    yield ledger
    _COLLECTOR.ledger = None
    leaks = ledger.leaks()
    if leaks:
        pytest.fail("a secret, code or token reached a log record:\n" + "\n".join(leaks), pytrace=False)
