"""Code verifications per second, in-process: Twofold's ``otp.match_step`` beside
pyotp's ``TOTP.verify`` and django-otp's ``django_otp.oath.TOTP.verify``, in one run.

Each library is called the way it is used on its hot path, with its own per-call
work included and its per-account set-up done once:

- twofold:    ``match_step(key, code, step)``: raw key, the current step, the code as typed
              (a string); searches the current step first, then -1, +1 (and ±2..±10 only
              when nothing in the window matched, to tell the user their clock is off).
- pyotp:      ``TOTP(b32).verify(code, for_time=t, valid_window=1)``: tries steps -1, 0, +1
              in order and stops at the first match (it decodes the base32 key per call).
- django-otp: ``TOTP(key); .time = t; .verify(int(code), tolerance=1)``: also -1, 0, +1,
              stopping at the first match.

Cases: a code of the current step (the common sign-in) and a wrong code (no match
anywhere). Figures are the median of REPEATS runs of N calls each.

    .venv/bin/python benchmarks/otp_verify.py [--n 200000] [--repeats 7]
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

import pyotp
from django_otp import oath as django_oath

from twofold.crypto import otp

NOW = 1_793_610_000.0  # a fixed instant, so every run checks the same steps


def rates(calls: dict[str, object], n: int, repeats: int) -> dict[str, float]:
    """Median calls per second of each callable over ``repeats`` runs of ``n`` calls.

    The implementations take turns within each repeat, so a change in the machine's
    load during the run affects them alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(n):
                call()
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def candidates(key: bytes, code: str) -> dict[str, object]:
    step = otp.time_step(NOW)
    match_step = otp.match_step

    b32 = otp.b32_secret(key)
    py = pyotp.TOTP(b32)

    dj = django_oath.TOTP(key, step=otp.PERIOD, t0=0, digits=otp.DIGITS, drift=0)
    dj.time = NOW
    token = int(code)

    def ours():
        return match_step(key, code, step)

    def theirs_pyotp():
        return py.verify(code, for_time=NOW, valid_window=1)

    def theirs_django():
        dj.drift = 0  # verify() keeps the drift it matched at; start each call alike
        return dj.verify(token, tolerance=1)

    return {"twofold match_step": ours, "pyotp TOTP.verify": theirs_pyotp, "django-otp oath.TOTP.verify": theirs_django}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    key = otp.new_secret()
    current = otp.totp(key, NOW)
    window = {otp.hotp(key, otp.time_step(NOW) + d) for d in range(-otp.DRIFT_WINDOW, otp.DRIFT_WINDOW + 1)}
    wrong = next(f"{i:06d}" for i in range(10**6) if f"{i:06d}" not in window)

    cases = {"code of the current step": (current, True), "wrong code": (wrong, False)}
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}), "
        f"{args.n} calls x {args.repeats} repeats taken in turns, median"
    )
    print()
    print(f"{'case':<26} {'implementation':<30} {'verifications/s':>16} {'ours / theirs':>14}")
    for case, (code, expected) in cases.items():
        calls = candidates(key, code)
        for name, call in calls.items():
            outcome = call()
            accepted = outcome is True or (outcome is not None and outcome is not False and outcome.in_window)
            assert accepted is expected, f"{name} gave {outcome!r} for the {case}"
        measured = rates(calls, args.n, args.repeats)
        ours = measured["twofold match_step"]
        for name, value in measured.items():
            ratio = "" if value is ours else f"{ours / value:.2f}x"
            print(f"{case:<26} {name:<30} {value:>16,.0f} {ratio:>14}")


if __name__ == "__main__":
    main()
