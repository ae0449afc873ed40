"""Helpers for the practice-administration tests: signed-in admins, many members at once, mail links."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.support.base import sign_in
from twofold.context import RequestContext
from twofold.store.models import AuditEvent, User

LINK = re.compile(r"https?://\S+/setup/[A-Za-z0-9_\-]+")


@pytest.fixture
def admin(client, make_user, clock):
    """An admin with an authenticator app, signed in on ``client``."""
    member = make_user(role="admin", with_totp=True, email="admin@riverside.example")
    assert sign_in(client, member, clock).status_code == 200
    return member


def add_members(services, practice_id: int, count: int, *, prefix: str = "bulk", role: str = "staff") -> None:
    """Many members at once through the CSV import (no password hashing per member)."""
    lines = ["email,name,role"] + [
        f"{prefix}{i:05d}@riverside.example,{prefix.title()} {i:05d},{role}" for i in range(count)
    ]
    results = list(
        services.members.import_csv(
            practice_id=practice_id,
            actor_id=None,
            lines=lines,
            context=RequestContext(),
            send_setup_links=False,
            link_base=None,
        )
    )
    assert all(r.status == "imported" for r in results)


def setup_path(message) -> str:
    """The path of the set-up link in a received email (the host is the test client's)."""
    return urlsplit(LINK.search(message.text).group(0)).path


def invitations(mailbox, address: str, count: int = 1) -> list:
    """The invitations to move an account that ``address`` has received, once there are ``count``
    (other mail to the address, such as security notices, may arrive before or between them)."""
    while True:
        found = [m for m in mailbox.to(address) if "invites you" in m.subject]
        if len(found) >= count:
            return found
        mailbox.wait_for(len(mailbox.to(address)) + 1, to=address)


def events(services, name: str | None = None, practice_id: int | None = None) -> list[AuditEvent]:
    with services.db.reading() as s:
        query = select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq)
        if practice_id is not None:
            query = query.where(AuditEvent.practice_id == practice_id)
        rows = s.execute(query).scalars().all()
    return [row for row in rows if name is None or row.event == name]


def user_row(services, user_id: int) -> User:
    with services.db.reading() as s:
        return s.get(User, user_id)


def count_users(services, practice_id: int) -> int:
    with services.db.reading() as s:
        return s.execute(select(func.count()).select_from(User).where(User.practice_id == practice_id)).scalar_one()
