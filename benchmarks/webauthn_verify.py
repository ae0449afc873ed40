"""Assertion verifications per second, in-process: a security key's ES256 and RS256 assertions through
``twofold.crypto.webauthn`` (py_webauthn underneath) beside an authenticator-app code through
``otp.match_step``, in one run.

What each call does, as the sign-in step does it:

- webauthn ES256 / RS256: ``assertion_claims`` (parse the JSON form: which credential, which challenge),
  then ``verify_assertion``: client data type, challenge, origin, RP id hash, user presence and the
  signature over authenticatorData || SHA-256(clientDataJSON) with the stored COSE public key.
  The credentials are made with ``cryptography`` (P-256 and RSA-2048 keys, as authenticators use),
  by the software authenticator the API tests use (tests/support/authenticator.py).
- totp: ``match_step(key, code, step)`` for a code of the current step.

Database work (the challenge lookup and the single-use delete) is the same kind for both and is left
out: this measures the cryptography. Figures are the median of REPEATS runs of N calls each.

    .venv/bin/python benchmarks/webauthn_verify.py [--n 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.authenticator import SoftwareKey, b64url, sign_in_with
from twofold.crypto import otp, webauthn

NOW = 1_793_610_000.0
RP = webauthn.RelyingParty(id="twofold.example.org", origin="https://twofold.example.org")


def rates(calls: dict[str, object], n: int, repeats: int) -> dict[str, float]:
    """Median calls per second of each callable over ``repeats`` runs of ``n`` calls, taken in turns."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(n):
                call()
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def assertion_check(algorithm: str):
    key = SoftwareKey(algorithm=algorithm)
    challenge = webauthn.new_challenge()
    options = {"challenge": b64url(challenge), "rpId": RP.id}
    credential = sign_in_with(options, key, origin=RP.origin)
    public_key = key.cose_public_key()

    def check():
        claims = webauthn.assertion_claims(credential)
        return webauthn.verify_assertion(
            credential, rp=RP, challenge=claims.challenge, public_key=public_key, require_user_verification=False
        )

    return check


def totp_check():
    key = otp.new_secret()
    code = otp.totp(key, NOW)
    step = otp.time_step(NOW)
    return lambda: otp.match_step(key, code, step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    calls = {
        "totp match_step": totp_check(),
        "webauthn ES256 assertion": assertion_check("ES256"),
        "webauthn RS256 assertion": assertion_check("RS256"),
    }
    for name, call in calls.items():
        outcome = call()
        assert outcome is not None and getattr(outcome, "in_window", True), f"{name} did not accept its response"

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}), "
        f"{args.n} calls x {args.repeats} repeats taken in turns, median"
    )
    print()
    measured = rates(calls, args.n, args.repeats)
    totp = measured["totp match_step"]
    print(f"{'implementation':<28} {'verifications/s':>16} {'µs each':>10} {'cost vs totp':>13}")
    for name, value in measured.items():
        print(f"{name:<28} {value:>16,.0f} {1e6 / value:>10.1f} {totp / value:>12.1f}x")


if __name__ == "__main__":
    main()
