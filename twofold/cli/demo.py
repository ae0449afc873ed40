"""The demo practice seeded on a first development run."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import func, select

from twofold.context import RequestContext
from twofold.store.models import Practice
from twofold.wiring import Services

DEMO_PRACTICE = "Riverside Family Practice"
DEMO_MEMBERS = (
    ("admin", "Alex Admin", "admin@riverside.example"),
    ("provider", "Dr. Priya Provider", "provider@riverside.example"),
    ("staff", "Sam Staff", "staff@riverside.example"),
)


def _password() -> str:
    return "-".join(secrets.token_urlsafe(5) for _ in range(3))


def seed_demo(services: Services) -> list[tuple[str, str, str]] | None:
    """Create the demo practice when the database has no practice; return its logins.

    The generated passwords are kept (mode 0600) in var/demo-logins.txt so that
    later runs can print them again; production never seeds a demo.
    """
    logins_file = services.settings.var_dir / "demo-logins.txt"
    with services.db.reading() as s:
        practices = s.execute(select(func.count()).select_from(Practice)).scalar_one()
    if practices:
        return read_logins(logins_file)
    context = RequestContext.system("demo")
    practice = services.accounts.create_practice(name=DEMO_PRACTICE, context=context)
    logins = []
    for role, name, email in DEMO_MEMBERS:
        password = _password()
        services.accounts.add_member(
            practice_id=practice.id, email=email, name=name, role=role, password=password, context=context
        )
        logins.append((role, email, password))
    logins_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for role, email, password in logins:
            handle.write(f"{role}\t{email}\t{password}\n")
    return logins


def read_logins(path: Path) -> list[tuple[str, str, str]] | None:
    if not path.exists():
        return None
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return [(row[0], row[1], row[2]) for row in rows if len(row) == 3]
