"""Wiring: builds every service from the settings, with explicit collaborators.

Front ends (web app, CLI) hold one ``Services`` and call its use cases; tests
build one with a ``FrozenClock`` and a real SMTP server or the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from twofold.core.accounts import AccountService
from twofold.core.audit import AuditLog
from twofold.core.clock import Clock, SystemClock
from twofold.core.crypto import SecretBox, TokenHasher
from twofold.core.health import HealthCheck
from twofold.core.notifier import Notifier, OutboxNotifier, SmtpConfig, SmtpNotifier
from twofold.core.passwords import PasswordHasher
from twofold.core.sessions import SessionService
from twofold.core.signin import SignInService
from twofold.core.throttle import DatabaseFailureStore, RedisFailureStore, Throttle
from twofold.factors.base import FactorRegistry
from twofold.factors.totp import TotpFactor
from twofold.settings import Settings
from twofold.store.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    passwords: PasswordHasher
    box: SecretBox
    audit: AuditLog
    throttle: Throttle
    notifier: Notifier
    factors: FactorRegistry
    totp: TotpFactor
    sessions: SessionService
    sign_in: SignInService
    accounts: AccountService

    @property
    def health(self) -> HealthCheck:
        return HealthCheck(db=self.db)

    def close(self) -> None:
        self.notifier.flush(timeout=5)
        self.db.dispose()


def build_notifier(settings: Settings) -> Notifier:
    if settings.smtp_host:
        return SmtpNotifier(
            SmtpConfig(
                host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user,
                password=settings.smtp_password, tls=settings.smtp_tls,
            ),
            settings.mail_from,
        )
    return OutboxNotifier(settings.var_dir / "outbox", settings.mail_from)


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    db: Database | None = None,
) -> Services:
    clock = clock or SystemClock()
    secret_key = settings.resolved_secret_key()
    db = db or Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
    passwords = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.password_hash_concurrency,
    )
    box = SecretBox(secret_key, settings.old_secret_keys)
    audit = AuditLog(clock=clock)
    if settings.redis_url:
        import redis

        store = RedisFailureStore(redis.Redis.from_url(settings.redis_url))
    else:
        store = DatabaseFailureStore()
    throttle = Throttle(store=store, clock=clock)
    notifier = notifier or build_notifier(settings)
    totp = TotpFactor(box=box, clock=clock)
    factors = FactorRegistry([totp])
    sessions = SessionService(db=db, clock=clock, hasher=TokenHasher(secret_key, "session"), audit=audit)
    sign_in = SignInService(
        db=db, clock=clock, passwords=passwords, throttle=throttle, audit=audit, sessions=sessions, factors=factors
    )
    accounts = AccountService(
        db=db, clock=clock, passwords=passwords, throttle=throttle, audit=audit, factors=factors, totp=totp,
        sessions=sessions,
    )
    return Services(
        settings=settings, db=db, clock=clock, passwords=passwords, box=box, audit=audit, throttle=throttle,
        notifier=notifier, factors=factors, totp=totp, sessions=sessions, sign_in=sign_in, accounts=accounts,
    )
