"""Fixtures that compose: a database per test (a copy of a migrated SQLite file, or a
PostgreSQL database per worker when PostgreSQL is there), a frozen clock, a real SMTP
server, the services and app on them, and factories such as ``make_user(with_totp=True)``.

Registered for every test by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.base import PASSWORD, POSTGRES_URL, SECRET_KEY, Member, skip_or_fail
from tests.support.mail import Mailbox
from tests.support.optional import OPTIONAL
from twofold.clock import FrozenClock
from twofold.context import RequestContext
from twofold.core.notifier import SmtpConfig, SmtpNotifier
from twofold.crypto import otp
from twofold.settings import Settings
from twofold.store.db import Database
from twofold.store.migrate import upgrade
from twofold.store.models import Base
from twofold.web.app import create_app
from twofold.wiring import Services, build_services

# -- databases ---------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    database.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id) -> str | None:
    """One migrated PostgreSQL database per test worker, dropped at the end."""
    if not POSTGRES_URL:
        yield None
        return
    admin_url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"twofold_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    database = Database(url, pool_size=2)
    upgrade(database.engine)
    database.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("INSERT INTO audit_chain_heads (chain, seq, hash) VALUES (0, 0, :h)"), {"h": "0" * 64})
    engine.dispose()


@pytest.fixture(params=["sqlite"])
def backend(request) -> str:
    """The storage backend. Suites that must pass on both override this with ``backends()``."""
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, sqlite_template, request) -> str:
    if backend == "sqlite":
        path = tmp_path / "twofold.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_database")
    if url is None:
        skip_or_fail(f"PostgreSQL: {OPTIONAL.parts['postgres'].found.missing}")
    _reset_postgres(url)
    return url


# -- services and app ----------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(
        _env_file=None,
        env="development",
        var_dir=tmp_path / "var",
        database_url=database_url,
        secret_key=SECRET_KEY,
        db_pool_size=24,
        password_hash_concurrency=4,
        purge_interval_seconds=0,  # tests move the clock; a purge on a timer would race them
        alert_digest_interval_seconds=0,  # likewise the daily alert digests
        backchannel_retry_seconds=0,  # and the retries of back-channel logouts
    )


@pytest.fixture
def mailbox():
    """A real SMTP server (aiosmtpd) on a free loopback port; ``mailbox.wait_for(...)`` reads it."""
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def notifier(mailbox):
    """The app's real SMTP notifier, delivering to ``mailbox``; retries are quick in tests."""
    sender = SmtpNotifier(
        SmtpConfig(host=mailbox.host, port=mailbox.port), "Twofold <no-reply@twofold.test>", retry_delays=(0.05, 0.1)
    )
    yield sender
    sender.flush(timeout=5)


@pytest.fixture
def services(settings, clock, notifier) -> Services:
    built = build_services(settings, clock=clock, notifier=notifier)
    yield built
    built.close()


@pytest.fixture
def app(services):
    return create_app(services)


@pytest.fixture
def client(app) -> TestClient:
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def anonymous(app) -> TestClient:
    """A second, independent client (another browser)."""
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


# -- factories ---------------------------------------------------------------


@pytest.fixture
def make_practice(services):
    counter = iter(range(1, 10_000))

    def factory(name: str | None = None):
        return services.accounts.create_practice(name=name or f"Practice {next(counter)}", context=RequestContext())

    return factory


@pytest.fixture
def practice(make_practice):
    return make_practice("Riverside Family Practice")


@pytest.fixture
def make_user(services, practice, clock):
    counter = iter(range(1, 10_000))

    def factory(
        *,
        role: str = "provider",
        with_totp: bool | None = None,
        email: str | None = None,
        practice_id: int | None = None,
        password: str = PASSWORD,
    ) -> Member:
        """A member; ``with_totp`` defaults to True for an admin (administration needs the admin's own 2FA)."""
        if with_totp is None:
            with_totp = role == "admin"
        email = email or f"member{next(counter)}@riverside.example"
        user = services.accounts.add_member(
            practice_id=practice_id or practice.id,
            email=email,
            name=email.split("@")[0].title(),
            role=role,
            password=password,
            context=RequestContext(),
        )
        member = Member(user.id, email, password, user.practice_id, role)
        if with_totp:
            enrollment = services.totp_enrollment.start_totp_enrollment(user=user, context=RequestContext())
            key = otp.from_b32(enrollment.secret)
            confirmation = services.totp_enrollment.confirm_totp(
                user=user,
                enrollment_id=enrollment.enrollment_id,
                code=otp.totp(key, clock.now().timestamp()),
                context=RequestContext(),
            )
            member.totp_key = key
            member.recovery_codes = confirmation.recovery_codes
            clock.advance(seconds=otp.PERIOD)  # the confirming code is spent; next tests use a fresh step
        return member

    return factory
