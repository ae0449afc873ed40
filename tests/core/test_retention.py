"""Purging what ended: expired flows and codes, ended sessions, browsers and set-up links, old
throttle failures go; live rows, recent history and every audit event stay. On SQLite and
PostgreSQL, by hand (``twofold db purge``) and on a schedule in each server process.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.support.base import SECRET_KEY, backends, sign_in
from twofold.cli.main import app as cli
from twofold.core.retention import ScheduledPurge
from twofold.store.models import (
    AuditEvent,
    EmailCode,
    RememberedBrowser,
    SetupLink,
    SignInFlow,
    ThrottleFailure,
    TotpCredential,
    User,
    UserSession,
    Workstation,
)
from twofold.web.app import create_app

KINDS = (SignInFlow, EmailCode, TotpCredential, UserSession, RememberedBrowser, SetupLink, ThrottleFailure)


@pytest.fixture(params=backends())
def backend(request):
    return request.param


def rows(services, model, **where) -> int:
    with services.db.reading() as s:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return s.scalar(query)


def seed(services, user_id: int, now, tag: str) -> None:
    """One row of each kind that ended ``now`` (so is purgeable 31 days later), tagged in a text column."""
    hour = timedelta(hours=1)
    token = lambda: uuid.uuid4().hex  # noqa: E731
    with services.db.transaction() as s:
        s.add(SignInFlow(id=token(), user_id=user_id, state=tag, created_at=now - hour, expires_at=now, attempts=0))
        s.add(EmailCode(user_id=user_id, purpose=tag, code_hash=token(), created_at=now - hour, expires_at=now))
        s.add(TotpCredential(id=token(), user_id=user_id, secret_sealed=tag, created_at=now - hour, expires_at=now))
        for revoked in (now, None):  # signed out; or never signed out but past its absolute end
            s.add(
                UserSession(
                    token_hash=token(),
                    user_id=user_id,
                    created_at=now - hour,
                    last_seen_at=now - hour,
                    expires_at=now,
                    revoked_at=revoked,
                    user_agent=tag,
                )
            )
        s.add(
            RememberedBrowser(
                token_hash=token(),
                user_id=user_id,
                created_at=now - hour,
                last_used_at=now,
                expires_at=now,
                user_agent=tag,
            )
        )
        s.add(SetupLink(token_hash=token(), user_id=user_id, created_at=now - hour, expires_at=now, used_at=now))
        s.add(ThrottleFailure(key=f"password:{tag}", at=now))
        practice_id = s.get(User, user_id).practice_id
        for revoked in (now, None):  # unmarked; or still marked (never purged)
            s.add(
                Workstation(
                    token_hash=token(), practice_id=practice_id, name=tag, created_at=now - hour, revoked_at=revoked
                )
            )


def test_what_ended_is_purged_and_what_lives_or_ended_recently_is_kept(services, make_user, clock, client):
    member = make_user(with_totp=True)
    seed(services, member.id, clock.now(), "old")
    clock.advance(days=31)
    seed(services, member.id, clock.now(), "recent")  # ended just now: kept for the keeping period
    assert sign_in(client, member, clock).status_code == 200  # a live session, made by a real sign-in
    audit_before = rows(services, AuditEvent)
    clock.advance(days=2)  # the short-lived "recent" rows are now a day past their expiry too

    flows = rows(services, SignInFlow)  # every one has expired, the real sign-in's included

    counts = services.retention.purge()

    assert counts == {
        "sign-in flows": flows,
        "email codes": 2,
        "unconfirmed app set-ups": 2,
        "sessions": 2,  # the old signed-out one and the old one past its absolute end
        "remembered browsers": 1,
        "set-up links": 1,
        "unmarked workstations": 1,
        "throttle failures": 2,  # no throttle window is longer than a day
        "dismissed alerts": 0,  # tests/core/practice/test_alerts.py purges those
        "alert digest claims": 0,
        "settled back-channel logouts": 0,  # tests/web/protocols/test_backchannel_logout.py purges those
    }
    assert rows(services, SignInFlow, state="old") == rows(services, SignInFlow, state="recent") == 0
    assert rows(services, EmailCode, purpose="old") == rows(services, EmailCode, purpose="recent") == 0
    assert (
        rows(services, TotpCredential, secret_sealed="old")
        == rows(services, TotpCredential, secret_sealed="recent")
        == 0
    )
    assert rows(services, TotpCredential) == 1  # the member's confirmed app is never purged
    assert rows(services, UserSession, user_agent="old") == 0
    assert rows(services, UserSession, user_agent="recent") == 2
    assert rows(services, UserSession) == 3  # the two recent ones and the live one
    assert rows(services, RememberedBrowser, user_agent="old") == 0
    assert rows(services, Workstation, name="old") == 1  # the one still marked
    assert rows(services, Workstation, name="recent") == 2
    assert rows(services, RememberedBrowser, user_agent="recent") == 1
    assert rows(services, SetupLink) == 1
    assert rows(services, ThrottleFailure) == 0
    assert rows(services, AuditEvent) == audit_before  # the audit log is kept whole
    assert services.retention.purge() == dict.fromkeys(counts, 0)  # nothing left to do


def test_a_backlog_is_purged_in_batches(services, make_user, clock):
    member = make_user()
    for _ in range(5):
        seed(services, member.id, clock.now(), "old")
    clock.advance(days=31)
    services.retention.batch = 2
    assert services.retention.purge()["sessions"] == 10
    assert rows(services, UserSession) == 0


def test_twofold_db_purge_reports_what_it_deleted(settings, services, make_user, clock, monkeypatch):
    member = make_user()
    seed(services, member.id, clock.now() - timedelta(days=400), "old")  # the CLI runs on the real clock
    for name, value in {
        "TWOFOLD_DATABASE_URL": settings.database_url,
        "TWOFOLD_SECRET_KEY": SECRET_KEY,
        "TWOFOLD_VAR_DIR": str(settings.var_dir),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["db", "purge"])
    assert result.exit_code == 0, result.output
    assert "sessions" in result.output and "set-up links" in result.output
    assert rows(services, UserSession) == rows(services, SetupLink) == rows(services, SignInFlow) == 0


def test_each_server_process_purges_on_a_schedule(settings, clock, notifier, make_user, services):
    from twofold.wiring import build_services

    member = make_user()
    seed(services, member.id, clock.now(), "old")
    clock.advance(days=31)
    scheduled = build_services(
        settings.model_copy(update={"purge_interval_seconds": 1}), clock=clock, notifier=notifier
    )
    purged = threading.Event()
    original = scheduled.retention.purge

    def observed():
        counts = original()
        purged.set()
        return counts

    scheduled.retention.purge = observed  # type: ignore[method-assign]
    try:
        with TestClient(create_app(scheduled), base_url="http://127.0.0.1") as client:
            assert isinstance(client.app.state.scheduled_purge, ScheduledPurge)
            assert purged.wait(timeout=10), "no purge ran within two intervals"
        assert rows(services, UserSession) == 0
    finally:
        scheduled.close()
