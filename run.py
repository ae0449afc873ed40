#!/usr/bin/env python3
"""Set up Twofold in ./.venv and run it, or run its test suite.

    python3 run.py serve [twofold serve options]   # install, then serve on http://127.0.0.1:8000
    python3 run.py test [pytest options]           # install with test extras, then run every test
    python3 run.py lint                            # ruff format --check, ruff check, mypy (what CI runs first)

Needs only Python 3.11+. Installs again only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py is what a person with an older Python runs first
        sys.exit(f"Twofold needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing Twofold{'[' + extras + ']' if extras else ''} into .venv ...", flush=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(digest)


def lint() -> int:
    """Every check, even after one fails, so one run shows all there is to fix; 1 if any failed."""
    # One line per finding; `ruff check --output-format full FILE` shows the context and the fix.
    checks = [
        ("ruff format", [BIN / "ruff", "format", "--check", "--output-format", "concise", "."]),
        ("ruff check", [BIN / "ruff", "check", "--output-format", "concise", "."]),
        ("mypy", [BIN / "mypy"]),  # its files and strictness are in pyproject.toml
    ]
    failed = []
    for name, command in checks:
        print(f"== {name}", flush=True)
        if subprocess.call(command, cwd=ROOT) != 0:
            failed.append(name)
    print(f"lint: {', '.join(failed)} failed" if failed else "lint: all checks passed", flush=True)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test", "lint"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure_venv("")
        return subprocess.call([BIN / "twofold", "serve", *rest], cwd=ROOT)
    ensure_venv("test,bench")
    if command == "lint":
        return lint()
    if not any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in rest):
        # Two processes (or the CPUs there are, up to four): the suite's live servers, browsers and
        # databases are per process, and the whole suite then fits well inside CI's time.
        rest = ["-n", str(max(1, min(4, os.cpu_count() or 1))), *rest]
    return subprocess.call([PYTHON, "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
