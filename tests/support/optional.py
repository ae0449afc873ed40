"""The optional parts of the test suite: what each needs, whether this machine has it, and
what ran.

PostgreSQL and Redis are used when they answer on their default local ports, with no
variable set; TWOFOLD_TEST_POSTGRES_URL / TWOFOLD_TEST_REDIS_URL name others and always
win (set one to an empty string to leave that part out). Chromium, the interop tools and
the SMTP server are found on this machine. ``tests/conftest.py`` prints, at the end of a
run, which parts ran and which were skipped and why.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CHROMIUM = os.environ.get("TWOFOLD_TEST_CHROMIUM", "/usr/bin/chromium")
PROXY_TOOLS = {"nginx": "/usr/sbin/nginx", "caddy": "/usr/bin/caddy"}
INTEROP_TOOLS = {"oathtool": "oathtool", "zbarimg": "zbar-tools", "rsvg-convert": "librsvg2-bin"}

# user_properties key under which each test item carries the optional parts it uses.
PARTS_PROPERTY = "twofold_optional_parts"


@dataclass(frozen=True)
class Found:
    """Whether an optional service or tool can be used here: ``url`` when it can, else ``missing`` says why."""

    url: str | None
    where: str
    missing: str | None = None


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port}" if parts.port else (parts.hostname or url)


def _answers(host: str, port: int) -> bool:
    """A quick TCP connect: is anything listening? (Refused at once when not; 0.5 s when filtered.)"""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_postgres(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable", and says why
        return _first_line(exc)
    return None


def _check_redis(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=3)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable", and says why
        return _first_line(exc)
    finally:
        client.close()
    return None


def _service(variable: str, default: str, check) -> Found:
    explicit = os.environ.get(variable)
    if explicit is not None:
        if not explicit:
            return Found(None, "", f"{variable} is set empty, which leaves it out")
        # Named on purpose: used as given, so a wrong URL fails loudly instead of skipping.
        return Found(explicit, f"{_where(explicit)} from {variable}")
    where = _where(default)
    parts = urlsplit(default)
    if not _answers(parts.hostname, parts.port):
        return Found(None, where, f"nothing answers on {where} (start it, or set {variable})")
    problem = check(default)
    if problem:
        return Found(None, where, f"{default} answers but refuses: {problem} (set {variable})")
    return Found(default, f"{where}, found on its default port")


def find_postgres() -> Found:
    return _service("TWOFOLD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL, _check_postgres)


def find_redis() -> Found:
    return _service("TWOFOLD_TEST_REDIS_URL", DEFAULT_REDIS_URL, _check_redis)


def find_chromium() -> Found:
    if not os.path.exists(CHROMIUM):
        return Found(
            None, CHROMIUM, f"not installed at {CHROMIUM} (apt-get install chromium, or set TWOFOLD_TEST_CHROMIUM)"
        )
    return Found(CHROMIUM, CHROMIUM)


def find_interop_tools() -> Found:
    missing = [tool for tool in INTEROP_TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(INTEROP_TOOLS[tool] for tool in missing)
        return Found(None, "", f"{', '.join(missing)} not installed (apt-get install {packages})")
    return Found("PATH", "on PATH")


def find_proxies() -> Found:
    missing = [tool for tool in PROXY_TOOLS if shutil.which(tool) is None and not os.path.exists(PROXY_TOOLS[tool])]
    if missing:
        return Found(None, "", f"{' and '.join(missing)} not installed (apt-get install {' '.join(missing)})")
    return Found("PATH", "nginx and caddy on PATH")


def find_smtp_server() -> Found:
    try:
        import aiosmtpd  # noqa: F401 - only whether it is there
    except ImportError:
        return Found(None, "", "aiosmtpd is not installed (pip install -e '.[test]')")
    return Found("aiosmtpd", "aiosmtpd on 127.0.0.1, a free port per test")


@dataclass
class Part:
    """One optional part: how its tests are recognised, whether it is here, and what its tests did."""

    label: str
    marker: str | None
    fixture: str | None
    found: Found
    ran: int = 0
    skipped: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def used_by(self, item) -> bool:
        if self.marker and item.get_closest_marker(self.marker) is not None:
            return True
        return bool(self.fixture and self.fixture in getattr(item, "fixturenames", ()))


class OptionalParts:
    """Finds every optional part once per process and counts, from test reports, what ran."""

    def __init__(self) -> None:
        self.parts: dict[str, Part] = {
            "postgres": Part("PostgreSQL", "postgres", None, find_postgres()),
            "redis": Part("Redis", "redis", None, find_redis()),
            "browser": Part("Chromium (browser tests)", "browser", None, find_chromium()),
            "interop": Part("oathtool/zbarimg/rsvg-convert (interop)", "interop", None, find_interop_tools()),
            "proxies": Part("nginx/Caddy (forward-auth tests)", "proxies", None, find_proxies()),
            "smtp": Part("SMTP server", None, "mailbox", find_smtp_server()),
        }

    def tag(self, item) -> None:
        """Write on ``item`` which parts it uses (reports carry user_properties, also across xdist workers)."""
        used = [key for key, part in self.parts.items() if part.used_by(item)]
        if used:
            item.user_properties.append((PARTS_PROPERTY, ",".join(used)))

    def count(self, report) -> None:
        used = dict(report.user_properties).get(PARTS_PROPERTY)
        if not used:
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            for key in used.split(","):
                self.parts[key].skipped += 1
                self.parts[key].reasons[reason.removeprefix("Skipped: ")] += 1
        elif report.when == "call":
            for key in used.split(","):
                self.parts[key].ran += 1

    def header(self) -> str:
        found = [f"{part.label} ({part.found.where})" for part in self.parts.values() if part.found.url]
        missing = [part.label for part in self.parts.values() if not part.found.url]
        line = "optional parts found: " + (", ".join(found) or "none")
        return line + (f"; missing: {', '.join(missing)}" if missing else "")

    def summary(self) -> list[str]:
        """One line per part (ran / skipped / not in this run, and why), then a one-line verdict."""
        lines = []
        ran, skipped = [], []
        width = max(len(part.label) for part in self.parts.values())
        for part in self.parts.values():
            why = part.found.missing or (part.reasons.most_common(1)[0][0] if part.reasons else "")
            if part.ran and part.found.url:
                ran.append(part.label)
                extra = f"; {part.skipped} skipped: {why}" if part.skipped else ""
                lines.append(f"{part.label:<{width}}  ran      {part.ran:>4} tests  ({part.found.where}){extra}")
            elif part.skipped:
                skipped.append(part.label)
                # Tests carrying the part's marker that still ran did not need it (they check the fallback).
                extra = f"; {part.ran} of its tests ran without it" if part.ran else ""
                lines.append(f"{part.label:<{width}}  SKIPPED  {part.skipped:>4} tests  ({why}){extra}")
            else:
                state = f"available ({part.found.where})" if part.found.url else f"unavailable: {part.found.missing}"
                lines.append(f"{part.label:<{width}}  not in this run; {state}")
        verdict = f"optional parts: ran {', '.join(ran) or 'none'}"
        if skipped:
            verdict += f"; SKIPPED {', '.join(skipped)} (see above; TWOFOLD_TEST_REQUIRE_ALL=1 makes a skip fail)"
        lines.append(verdict)
        return lines


OPTIONAL = OptionalParts()
