"""Wiring: builds every service from the settings, with explicit collaborators.

Front ends (web app, CLI) hold one ``Services`` and call its use cases; tests
build one with a ``FrozenClock`` and a real SMTP server or the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from twofold.core.accounts import AccountService
from twofold.core.audit import AuditLog
from twofold.core.audit_trail import AuditTrail
from twofold.core.clock import Clock, SystemClock
from twofold.core.crypto import SecretBox, TokenHasher
from twofold.core.enforcement import TwoFactorEnforcement
from twofold.core.member_setup import SetupService
from twofold.core.members import MemberService, TrustRevoker
from twofold.core.notifier import Notifier, OutboxNotifier, SmtpConfig, SmtpNotifier
from twofold.core.passwords import PasswordHasher
from twofold.core.practice_policy import PolicyService
from twofold.core.resets import EmailResetNotice, TwoFactorResetService
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
    # Practice administration (issue 5). ``trust_revokers`` is the list deactivation and
    # admin resets call to end standing trust beyond sessions; features append theirs.
    enforcement: TwoFactorEnforcement
    setup: SetupService
    members: MemberService
    resets: TwoFactorResetService
    policies: PolicyService
    audit_trail: AuditTrail
    trust_revokers: list[TrustRevoker]

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
    enforcement = TwoFactorEnforcement(db=db, clock=clock, audit=audit, factors=factors)
    setup = SetupService(
        db=db, clock=clock, passwords=passwords, throttle=throttle, audit=audit, factors=factors, totp=totp,
        enforcement=enforcement, hasher=TokenHasher(secret_key, "setup-link"), notifier=notifier,
    )
    trust_revokers: list[TrustRevoker] = []
    members = MemberService(
        db=db, clock=clock, passwords=passwords, audit=audit, factors=factors, sessions=sessions, setup=setup,
        trust_revokers=trust_revokers,
    )
    resets = TwoFactorResetService(
        db=db, clock=clock, passwords=passwords, throttle=throttle, audit=audit, factors=factors, sessions=sessions,
        enforcement=enforcement, trust_revokers=trust_revokers, notice=EmailResetNotice(notifier=notifier, clock=clock),
    )
    return Services(
        settings=settings, db=db, clock=clock, passwords=passwords, box=box, audit=audit, throttle=throttle,
        notifier=notifier, factors=factors, totp=totp, sessions=sessions, sign_in=sign_in, accounts=accounts,
        enforcement=enforcement, setup=setup, members=members, resets=resets,
        policies=PolicyService(db=db, clock=clock, audit=audit, members=members),
        audit_trail=AuditTrail(db=db, clock=clock, audit=audit), trust_revokers=trust_revokers,
    )
