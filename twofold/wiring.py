"""Wiring: builds every service from the settings, with explicit collaborators.

Front ends (web app, CLI) hold one ``Services`` and call its use cases; tests
build one with a ``FrozenClock`` and a real SMTP server or the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from twofold.audit import AuditLog
from twofold.clock import Clock, SystemClock
from twofold.core.account import AccountService
from twofold.core.account_security import AccountSecurityService
from twofold.core.forward_auth import ForwardAuthService
from twofold.core.health import HealthCheck
from twofold.core.known_browsers import KnownBrowsers
from twofold.core.lockouts import LockWindows
from twofold.core.notifier import Notifier, OutboxNotifier, SmtpConfig, SmtpNotifier
from twofold.core.oidc.backchannel import PURGE_RULES as BACKCHANNEL_PURGE_RULES
from twofold.core.oidc.backchannel import BackchannelLogout
from twofold.core.oidc.clients import ClientRegistry
from twofold.core.oidc.codes import CodeStore
from twofold.core.oidc.keys import SigningKeys
from twofold.core.oidc.provider import OidcProvider
from twofold.core.oidc.tokens import TokenStore
from twofold.core.practice.alerts import PURGE_RULES as ALERT_PURGE_RULES
from twofold.core.practice.alerts import AdminAlerts, AlertRecorder
from twofold.core.practice.apps import AppService
from twofold.core.practice.audit_log import AuditTrail
from twofold.core.practice.enforcement import TwoFactorEnforcement
from twofold.core.practice.members import MemberService, TrustRevoker
from twofold.core.practice.policy import PolicyService
from twofold.core.practice.report import ComplianceReports
from twofold.core.practice.resets import SecurityMailResetNotice, TwoFactorResetService
from twofold.core.practice.setup_links import SetupService
from twofold.core.reauth import PasswordGate, Reauthentication
from twofold.core.remembered import RememberedBrowserService
from twofold.core.retention import Retention
from twofold.core.security_mail import SecurityMail, UndeliveredMailLog
from twofold.core.sessions import SessionService
from twofold.core.signin import SignInService
from twofold.core.workstations import WorkstationService
from twofold.crypto.chain import ChainKeys
from twofold.crypto.passwords import PasswordHasher
from twofold.crypto.secret_box import SecretBox, TokenHasher
from twofold.factors.base import FactorRegistry
from twofold.factors.email_code.enrollment import EmailCodeEnrollmentService
from twofold.factors.email_code.factor import EmailCodeFactor
from twofold.factors.recovery_codes.enrollment import RecoveryCodeEnrollmentService
from twofold.factors.recovery_codes.factor import RecoveryCodeFactor
from twofold.factors.totp.enrollment import TotpEnrollmentService
from twofold.factors.totp.factor import TotpFactor
from twofold.factors.webauthn.enrollment import WebAuthnService
from twofold.factors.webauthn.factor import RelyingParties, WebAuthnFactor
from twofold.settings import ConfigurationError, Settings
from twofold.store.db import Database, Limits
from twofold.throttle import DatabaseFailureStore, FailureStore, RedisFailureStore, Throttle


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
    remembered: RememberedBrowserService
    account_security: AccountSecurityService
    mail: SecurityMail
    undelivered_mail: UndeliveredMailLog
    recovery_codes: RecoveryCodeFactor
    email_codes: EmailCodeFactor
    webauthn: WebAuthnFactor
    # Each factor's own use cases (factors/<kind>/enrollment.py): set-up, removal, new codes.
    totp_enrollment: TotpEnrollmentService
    email_enrollment: EmailCodeEnrollmentService
    recovery_code_enrollment: RecoveryCodeEnrollmentService
    webauthn_keys: WebAuthnService
    # Practice administration. ``trust_revokers`` is the list deactivation and
    # admin resets call to end standing trust beyond sessions; features append theirs.
    enforcement: TwoFactorEnforcement
    setup: SetupService
    members: MemberService
    resets: TwoFactorResetService
    policies: PolicyService
    audit_trail: AuditTrail
    reports: ComplianceReports
    trust_revokers: list[TrustRevoker]
    # What ended long enough ago to delete; features with rows of their own append a PurgeRule.
    retention: Retention
    # OpenID Connect provider: app registrations, signing keys, and the protocol's use cases.
    oidc_clients: ClientRegistry
    oidc_keys: SigningKeys
    oidc: OidcProvider
    backchannel: BackchannelLogout
    apps: AppService
    forward_auth: ForwardAuthService
    workstations: WorkstationService
    # Admin alerts: raised by the audit log and the backup-code factor, read and chosen by admins.
    alerts: AdminAlerts

    @property
    def health(self) -> HealthCheck:
        return HealthCheck(db=self.db, counters=self.throttle.store)

    def close(self) -> None:
        self.backchannel.flush(timeout=5)  # a CLI command that ended sessions tells the apps before it exits
        self.backchannel.close()
        self.notifier.flush(timeout=5)
        self.db.dispose()


def build_notifier(settings: Settings) -> Notifier:
    if settings.smtp_host:
        return SmtpNotifier(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                user=settings.smtp_user,
                password=settings.smtp_password,
                tls=settings.smtp_tls,
            ),
            settings.mail_from,
        )
    if settings.production and not settings.mail_outbox:
        raise ConfigurationError(
            "TWOFOLD_SMTP_HOST is not set. In production Twofold emails set-up links and security notices: set "
            "TWOFOLD_SMTP_HOST (and TWOFOLD_SMTP_PORT, _USER, _PASSWORD, _TLS as needed), or set "
            "TWOFOLD_MAIL_OUTBOX=1 to write every email to var/outbox/ instead, on purpose."
        )
    return OutboxNotifier(settings.var_dir / "outbox", settings.mail_from)


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    db: Database | None = None,
    failure_store: FailureStore | None = None,
) -> Services:
    clock = clock or SystemClock()
    secret_key = settings.resolved_secret_key()
    if db is None:
        if settings.db_pool_size is None:  # Settings' validator fills it in (from request_threads)
            raise ValueError("settings.db_pool_size is unset: build Settings through its validators")
        db = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            limits=Limits(
                connect_timeout=settings.db_connect_timeout,
                statement_timeout=settings.db_statement_timeout,
                pool_timeout=settings.db_pool_timeout,
            ),
        )
    passwords = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        concurrency=settings.password_hash_concurrency,
    )
    box = SecretBox(secret_key, settings.old_secret_keys)
    notifier = notifier or build_notifier(settings)
    alert_recorder = AlertRecorder(clock=clock, notifier=notifier, base_url=settings.resolved_public_origin())
    audit = AuditLog(clock=clock, keys=ChainKeys(secret_key, settings.old_secret_keys), alerts=alert_recorder)
    if failure_store is not None:
        store = failure_store
    elif settings.redis_url:
        import redis

        store = RedisFailureStore(
            redis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=settings.redis_timeout, socket_timeout=settings.redis_timeout
            )
        )
    else:
        store = DatabaseFailureStore()
    throttle = Throttle(store=store, clock=clock)
    mail = SecurityMail(notifier=notifier, clock=clock, base_url=settings.resolved_public_origin())
    undelivered_mail = UndeliveredMailLog(db=db, clock=clock, audit=audit)
    notifier.subscribe(undelivered_mail)
    totp = TotpFactor(box=box, clock=clock)
    email_codes = EmailCodeFactor(
        hasher=TokenHasher(secret_key, "email-code"), clock=clock, throttle=throttle, mail=mail, stronger=[totp]
    )
    recovery_codes = RecoveryCodeFactor(
        hasher=TokenHasher(secret_key, "recovery-code"), clock=clock, notices=mail, alerts=alert_recorder
    )
    webauthn = WebAuthnFactor(
        clock=clock, hasher=TokenHasher(secret_key, "webauthn-challenge"), audit=audit, notices=mail
    )
    # The only list of factor kinds: the order is the order methods are offered in (a key first:
    # it is the one a phishing site cannot use).
    factors = FactorRegistry([webauthn, totp, email_codes, recovery_codes])
    gate = PasswordGate(db=db, passwords=passwords, throttle=throttle)
    reauth = Reauthentication(db=db, gate=gate, throttle=throttle, factors=factors, audit=audit)
    workstations = WorkstationService(
        db=db, clock=clock, hasher=TokenHasher(secret_key, "shared-workstation"), audit=audit
    )
    sessions = SessionService(
        db=db, clock=clock, hasher=TokenHasher(secret_key, "session"), audit=audit, workstations=workstations
    )
    remembered = RememberedBrowserService(
        clock=clock,
        hasher=TokenHasher(secret_key, "remembered-browser"),
        name_hasher=TokenHasher(secret_key, "remembered-browser-cookie-name"),
        audit=audit,
    )
    sign_in = SignInService(
        db=db,
        clock=clock,
        passwords=passwords,
        gate=gate,
        throttle=throttle,
        audit=audit,
        sessions=sessions,
        factors=factors,
        remembered=remembered,
        mail=mail,
        known_browsers=KnownBrowsers(clock=clock, hasher=TokenHasher(secret_key, "known-browser")),
        windows=LockWindows(clock=clock, audit=audit),
        flow_hasher=TokenHasher(secret_key, "sign-in-flow"),
        workstations=workstations,
    )
    accounts = AccountService(
        db=db,
        clock=clock,
        passwords=passwords,
        audit=audit,
        factors=factors,
        sessions=sessions,
        remembered=remembered,
        reauth=reauth,
        mail=mail,
        backup_codes=recovery_codes,
        default_time_zone=settings.default_time_zone,
    )
    apps = AppService(db=db, clock=clock, audit=audit)
    oidc_clients = ClientRegistry(
        db=db, clock=clock, audit=audit, hasher=TokenHasher(secret_key, "oidc-client-secret"), apps=apps
    )
    id_token_lifetime = timedelta(seconds=settings.oidc_id_token_seconds)
    oidc_keys = SigningKeys(db=db, clock=clock, box=box, audit=audit, id_token_lifetime=id_token_lifetime)
    oidc = OidcProvider(
        db=db,
        clock=clock,
        audit=audit,
        clients=oidc_clients,
        codes=CodeStore(hasher=TokenHasher(secret_key, "oidc-code")),
        tokens=TokenStore(
            hasher=TokenHasher(secret_key, "oidc-token"),
            access_lifetime=timedelta(seconds=settings.oidc_access_token_seconds),
            refresh_lifetime=timedelta(days=settings.oidc_refresh_token_days),
        ),
        keys=oidc_keys,
        sid_hasher=TokenHasher(secret_key, "oidc-sid"),
        id_token_lifetime=id_token_lifetime,
    )
    backchannel = BackchannelLogout(
        db=db, clock=clock, audit=audit, keys=oidc_keys, issuer=settings.resolved_public_origin, sid_of=oidc.sid
    )
    sessions.listeners.append(backchannel)
    account_security = AccountSecurityService(
        db=db,
        clock=clock,
        passwords=passwords,
        gate=gate,
        audit=audit,
        sessions=sessions,
        remembered=remembered,
        mail=mail,
        sign_out_everywhere=[oidc],
    )
    recovery_code_enrollment = RecoveryCodeEnrollmentService(
        db=db,
        audit=audit,
        factor=recovery_codes,
        factors=factors,
        reauth=reauth,
        mail=mail,
        box=box,
        clock=clock,
    )
    totp_enrollment = TotpEnrollmentService(
        db=db,
        clock=clock,
        box=box,
        throttle=throttle,
        audit=audit,
        factor=totp,
        factors=factors,
        reauth=reauth,
        backup_codes=recovery_code_enrollment,
        mail=mail,
        sessions=sessions,
    )
    email_enrollment = EmailCodeEnrollmentService(
        db=db,
        audit=audit,
        throttle=throttle,
        factor=email_codes,
        factors=factors,
        reauth=reauth,
        backup_codes=recovery_code_enrollment,
        pending_elsewhere=[totp_enrollment],
        mail=mail,
        sessions=sessions,
    )
    webauthn_keys = WebAuthnService(
        db=db,
        clock=clock,
        audit=audit,
        throttle=throttle,
        factor=webauthn,
        factors=factors,
        reauth=reauth,
        backup_codes=recovery_code_enrollment,
        backup_kind=recovery_codes.kind,
        pending_elsewhere=[totp_enrollment],
        mail=mail,
        sessions=sessions,
        sign_in=sign_in,
        relying_parties=RelyingParties(settings.public_origin),
        handles=TokenHasher(secret_key, "webauthn-user-handle"),
    )
    enforcement = TwoFactorEnforcement(db=db, clock=clock, audit=audit, factors=factors)
    # Deactivation, an admin's reset and a move to another practice end these too: remembered browsers,
    # apps' OpenID Connect tokens.
    trust_revokers: list[TrustRevoker] = [remembered, oidc]
    setup = SetupService(
        db=db,
        clock=clock,
        passwords=passwords,
        gate=gate,
        audit=audit,
        factors=factors,
        enrollment=totp_enrollment,
        enforcement=enforcement,
        hasher=TokenHasher(secret_key, "setup-link"),
        notifier=notifier,
        sessions=sessions,
        backup_codes=recovery_code_enrollment,
        trust_revokers=trust_revokers,
    )
    members = MemberService(
        db=db,
        clock=clock,
        passwords=passwords,
        audit=audit,
        factors=factors,
        sessions=sessions,
        setup=setup,
        trust_revokers=trust_revokers,
        sign_in_locks=sign_in,
        recovery_codes_left=recovery_codes.remaining_by_user,
        remembered_browsers=remembered.live_count_by_user,
    )
    resets = TwoFactorResetService(
        db=db,
        clock=clock,
        audit=audit,
        factors=factors,
        reauth=reauth,
        sessions=sessions,
        enforcement=enforcement,
        trust_revokers=trust_revokers,
        notice=SecurityMailResetNotice(mail=mail),
    )
    audit_trail = AuditTrail(db=db, clock=clock, audit=audit, notifier=notifier)
    retention = Retention(db=db, clock=clock, keep_days=settings.purge_after_days)
    retention.rules.extend(ALERT_PURGE_RULES)
    retention.rules.extend(BACKCHANNEL_PURGE_RULES)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        passwords=passwords,
        box=box,
        audit=audit,
        throttle=throttle,
        notifier=notifier,
        factors=factors,
        totp=totp,
        sessions=sessions,
        sign_in=sign_in,
        accounts=accounts,
        remembered=remembered,
        account_security=account_security,
        mail=mail,
        undelivered_mail=undelivered_mail,
        recovery_codes=recovery_codes,
        email_codes=email_codes,
        webauthn=webauthn,
        totp_enrollment=totp_enrollment,
        email_enrollment=email_enrollment,
        recovery_code_enrollment=recovery_code_enrollment,
        webauthn_keys=webauthn_keys,
        enforcement=enforcement,
        setup=setup,
        members=members,
        resets=resets,
        policies=PolicyService(
            db=db, clock=clock, audit=audit, members=members, factors=factors, baseline=totp_enrollment.kind
        ),
        audit_trail=audit_trail,
        reports=ComplianceReports(db=db, clock=clock, audit=audit, factors=factors, audit_trail=audit_trail),
        trust_revokers=trust_revokers,
        retention=retention,
        oidc_clients=oidc_clients,
        oidc_keys=oidc_keys,
        oidc=oidc,
        backchannel=backchannel,
        apps=apps,
        forward_auth=ForwardAuthService(
            db=db, clock=clock, audit=audit, sessions=sessions, apps=apps, enforcement=enforcement
        ),
        workstations=workstations,
        alerts=AdminAlerts(db=db, clock=clock, audit=audit, recorder=alert_recorder),
    )
