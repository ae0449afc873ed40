"""HOTP (RFC 4226) and TOTP (RFC 6238), on the standard library's ``hmac``.

Pure functions: no storage, no clock of their own. ``hmac.digest`` is the C
one-shot path; it is what makes verification fast enough to run on every sign-in
without a cache (see benchmarks/otp_verify.py). The RFC vectors are in
tests/core/test_otp.py.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

DIGITS = 6
PERIOD = 30
ALGORITHM = "sha1"
SECRET_BYTES = 20  # 160 bits, RFC 4226 §4 recommends at least that

# Steps either side of the current one that are accepted (RFC 6238 §5.2 allows one).
ACCEPT_WINDOW = 1
# Steps either side that are still recognised, to tell the user their clock is off.
DRIFT_WINDOW = 10

_POWERS = {6: 10**6, 7: 10**7, 8: 10**8}


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def hotp(key: bytes, counter: int, digits: int = DIGITS, algorithm: str = ALGORITHM) -> str:
    """RFC 4226 §5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.digest(key, counter.to_bytes(8, "big"), algorithm)
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % _POWERS[digits]).zfill(digits)


def time_step(unix_time: float, period: int = PERIOD) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X) with T0 = 0."""
    return int(unix_time // period)


def totp(key: bytes, unix_time: float, digits: int = DIGITS, algorithm: str = ALGORITHM, period: int = PERIOD) -> str:
    return hotp(key, time_step(unix_time, period), digits, algorithm)


@dataclass(frozen=True, slots=True)
class StepMatch:
    step: int
    in_window: bool  # False: the code matched only a step outside ±ACCEPT_WINDOW


def match_step(key: bytes, code: str, step: int) -> StepMatch | None:
    """The step whose code equals ``code``, searching the accepted window first.

    Returns None when no step within ±DRIFT_WINDOW matches. Each candidate is
    compared in constant time; the search order (current, previous, next) makes
    the common case one HMAC.
    """
    encoded = code.encode()
    for offset in (0, -1, 1):
        if hmac.compare_digest(hotp(key, step + offset).encode(), encoded):
            return StepMatch(step + offset, True)
    for distance in range(ACCEPT_WINDOW + 1, DRIFT_WINDOW + 1):
        for offset in (-distance, distance):
            if hmac.compare_digest(hotp(key, step + offset).encode(), encoded):
                return StepMatch(step + offset, False)
    return None


def normalize_code(raw: str, digits: int = DIGITS) -> str | None:
    """Strip the spaces people type ("123 456"); None unless exactly ``digits`` ASCII digits."""
    cleaned = raw.replace(" ", "").replace("\u00a0", "")
    if len(cleaned) != digits or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def b32_secret(key: bytes) -> str:
    """The key as unpadded base32, as authenticator apps expect it."""
    return base64.b32encode(key).decode().rstrip("=")


def grouped(secret_b32: str, size: int = 4) -> str:
    return " ".join(secret_b32[i : i + size] for i in range(0, len(secret_b32), size))


def otpauth_uri(*, key: bytes, account: str, issuer: str) -> str:
    """Key URI format (Google Authenticator wiki): otpauth://totp/ISSUER:ACCOUNT?params.

    The format forbids a colon in the issuer (it separates issuer from account in
    the label), so a practice named "Smith: Family Care" is shown as "Smith Family Care".
    """
    issuer = " ".join(issuer.replace(":", " ").split()) or "Twofold"
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {"secret": b32_secret(key), "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def from_b32(secret: str) -> bytes:
    """Inverse of ``b32_secret``: accepts spaces, lower case and missing padding."""
    cleaned = secret.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
