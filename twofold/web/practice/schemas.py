"""Pydantic schemas of the practice administration API (/api/v1/practice/...)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from twofold.core.oidc.clients import RegisteredClient
from twofold.core.practice.alerts import AlertView
from twofold.core.practice.apps import AppView
from twofold.core.practice.audit_log import AuditEntry
from twofold.core.practice.members import MemberView, RowResult
from twofold.core.practice.policy import PolicySettings
from twofold.core.practice.report import ComplianceReport
from twofold.core.workstations import MAX_NAME_LENGTH, WorkstationView
from twofold.web.schemas import Strict


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class MemberTwoFactorPublic(BaseModel):
    enabled: bool
    methods: list[str]
    recovery_codes_left: int


class MemberPublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    active: bool
    two_factor: MemberTwoFactorPublic
    last_sign_in_at: str | None
    remembered_browsers: int = 0

    @classmethod
    def of(cls, view: MemberView) -> MemberPublic:
        return cls(
            id=view.id,
            email=view.email,
            name=view.name,
            role=view.role,
            active=view.active,
            two_factor=MemberTwoFactorPublic(
                enabled=view.two_factor_enabled, methods=view.methods, recovery_codes_left=view.recovery_codes_left
            ),
            last_sign_in_at=_iso(view.last_sign_in_at),
            remembered_browsers=view.remembered_browsers,
        )


class MemberPagePublic(BaseModel):
    items: list[MemberPublic]
    total: int


class MemberCreate(Strict):
    email: str = Field(min_length=1, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=16)


class MemberUpdate(Strict):
    role: str | None = Field(default=None, max_length=16)
    active: bool | None = None


class MemberResetRequest(Strict):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=64)
    reason: str = Field(max_length=2000)


class SetupLinkPublic(BaseModel):
    status: str = "sent"
    expires_at: str


class ImportRowPublic(BaseModel):
    row: int
    email: str
    status: str
    error: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, result: RowResult) -> ImportRowPublic:
        return cls(row=result.row, email=result.email, status=result.status, error=result.error, message=result.message)


class ImportResultPublic(BaseModel):
    imported: int
    failed: int
    rows: list[ImportRowPublic]


class PolicyPublic(BaseModel):
    require_two_factor: bool
    required_roles: list[str]
    grace_days: int
    allowed_methods: list[str]
    remember_browser_days: int
    idle_timeout_minutes: int
    time_zone: str = Field(description="The practice's time zone (IANA name): pages and emails show local time")
    passkey_sign_in: bool = Field(description="Members may sign in with a passkey alone (both factors in one)")
    phishing_resistant_roles: list[str] = Field(
        description="Roles that must use a security key or passkey (`webauthn`) once they have one"
    )
    shared_workstation_idle_minutes: int = Field(
        description="Idle minutes after which a session started on a shared workstation ends (1 to idle_timeout_minutes)"
    )

    @classmethod
    def of(cls, settings: PolicySettings) -> PolicyPublic:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})


class PolicyUpdate(Strict):
    """Fields left out keep their value."""

    require_two_factor: bool | None = None
    required_roles: list[str] | None = Field(default=None, max_length=10)
    grace_days: int | None = None
    allowed_methods: list[str] | None = Field(default=None, max_length=10)
    remember_browser_days: int | None = None
    idle_timeout_minutes: int | None = None
    time_zone: str | None = Field(default=None, max_length=64)
    passkey_sign_in: bool | None = None
    phishing_resistant_roles: list[str] | None = Field(default=None, max_length=10)
    shared_workstation_idle_minutes: int | None = None

    def changes(self) -> dict:
        return {name: value for name, value in self.model_dump().items() if value is not None}


class PolicyPreviewPublic(BaseModel):
    """Active members who would have to set up 2FA (one page), how many in all, and by when."""

    items: list[MemberPublic]
    total: int
    due_at: str | None


class PersonPublic(BaseModel):
    id: int
    email: str
    name: str


class AuditEventPublic(BaseModel):
    id: int
    seq: int
    at: str
    event: str
    actor: PersonPublic | None
    subject: PersonPublic | None
    ip: str | None
    user_agent: str | None
    details: dict

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEventPublic:
        person = lambda p: PersonPublic(id=p.id, email=p.email, name=p.name) if p else None  # noqa: E731
        return cls(
            id=entry.id,
            seq=entry.seq,
            at=entry.at.isoformat(),
            event=entry.event,
            actor=person(entry.actor),
            subject=person(entry.subject),
            ip=entry.ip,
            user_agent=entry.user_agent,
            details=entry.details,
        )


class AuditPagePublic(BaseModel):
    items: list[AuditEventPublic]
    total: int


class AppPublic(BaseModel):
    id: int
    name: str
    url: str | None
    allowed_roles: list[str]
    bypass_paths: list[str]
    reauth_minutes: int | None
    enabled: bool
    # OpenID Connect, for an app that is a client (null otherwise): see docs/oidc.md.
    client_id: str | None = None
    public: bool | None = None
    redirect_uris: list[str] = Field(default_factory=list)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    backchannel_logout_uri: str | None = Field(
        default=None,
        description="OpenID Connect Back-Channel Logout: where a logout token is posted when a session ends",
    )
    client_secret: str | None = Field(
        default=None, description="Only in the answer that made it (registration, rotation): shown once"
    )

    @classmethod
    def of(cls, view: AppView, client: RegisteredClient | None = None, secret: str | None = None) -> AppPublic:
        fields = {name: getattr(view, name) for name in AppPublic.model_fields if hasattr(view, name)}
        if client is not None:
            fields.update(client.describe())
        return cls(**fields, client_secret=secret)


class AppListPublic(BaseModel):
    items: list[AppPublic]
    total: int


class AppCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    allowed_roles: list[str] | None = Field(default=None, max_length=10, description="Default: every role")
    bypass_paths: list[str] = Field(default_factory=list, max_length=50)
    reauth_minutes: int | None = Field(default=None, description="Ask for password and code again after this")
    enabled: bool = True
    redirect_uris: list[str] = Field(
        default_factory=list, max_length=20, description="OpenID Connect: where codes may go (exact match)"
    )
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    public: bool = Field(default=False, description="A client without a secret (PKCE only), such as a mobile app")
    backchannel_logout_uri: str | None = Field(
        default=None, max_length=2000, description="OpenID Connect: where a logout token is posted when a session ends"
    )


CLIENT_FIELDS = ("redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri")


class AppUpdate(Strict):
    """Fields left out keep their value; ``reauth_minutes: null`` stops asking again."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    allowed_roles: list[str] | None = Field(default=None, max_length=10)
    bypass_paths: list[str] | None = Field(default=None, max_length=50)
    reauth_minutes: int | None = None
    enabled: bool | None = None
    redirect_uris: list[str] | None = Field(
        default=None, max_length=20, description="OpenID Connect clients: replaces the list (at least one)"
    )
    post_logout_redirect_uris: list[str] | None = Field(default=None, max_length=20)
    backchannel_logout_uri: str | None = Field(
        default=None, max_length=2000, description="OpenID Connect clients: replaces it; null removes it"
    )

    def client_changes(self) -> dict:
        """The OpenID Connect client's fields given (each replaces the stored one; a null logout URI: none)."""
        given = self.model_dump(exclude_unset=True)
        changes = {name: given[name] for name in CLIENT_FIELDS if given.get(name) is not None}
        if "backchannel_logout_uri" in given:
            changes["backchannel_logout_uri"] = given["backchannel_logout_uri"] or ""
        return changes

    def changes(self) -> dict:
        given = {
            name: value for name, value in self.model_dump(exclude_unset=True).items() if name not in CLIENT_FIELDS
        }
        # Only reauth_minutes means something as null; a null elsewhere is "no change".
        return {name: value for name, value in given.items() if value is not None or name == "reauth_minutes"}


class RoleEnrolmentPublic(BaseModel):
    role: str  # a role, or "all" for the practice
    members: int
    enrolled: int
    percent: float


class MethodCountPublic(BaseModel):
    kind: str
    label: str
    members: int


class OverdueMemberPublic(BaseModel):
    id: int
    email: str
    name: str
    role: str
    due_at: str
    phishing_resistant: bool


class EventCountPublic(BaseModel):
    event: str
    label: str
    count: int


class AuditChainPublic(BaseModel):
    verified: bool
    events: int
    first_bad_seq: int | None
    first_bad_event: str | None
    problem: str | None


class ReportPublic(BaseModel):
    practice: str
    period_from: str = Field(description="First day (YYYY-MM-DD, in the practice's time zone)")
    period_to: str = Field(description="Last day, included")
    time_zone: str
    period_start: str = Field(description="The period's first moment (ISO 8601, UTC)")
    period_end: str = Field(description="The moment after its last (ISO 8601, UTC)")
    generated_at: str
    enrolment: list[RoleEnrolmentPublic]
    overall: RoleEnrolmentPublic
    methods: list[MethodCountPublic]
    overdue: list[OverdueMemberPublic]
    in_grace_period: int
    events: list[EventCountPublic]
    audit_chain: AuditChainPublic

    @classmethod
    def of(cls, report: ComplianceReport) -> ReportPublic:
        def enrolment(line) -> RoleEnrolmentPublic:
            return RoleEnrolmentPublic(
                role=line.role, members=line.members, enrolled=line.enrolled, percent=line.percent
            )

        bad = report.chain.first_break
        return cls(
            practice=report.practice,
            period_from=report.period.first.isoformat(),
            period_to=report.period.last.isoformat(),
            time_zone=report.period.time_zone,
            period_start=report.period.start.isoformat(),
            period_end=report.period.end.isoformat(),
            generated_at=report.generated_at.isoformat(),
            enrolment=[enrolment(line) for line in report.roles],
            overall=enrolment(report.overall),
            methods=[MethodCountPublic(kind=m.kind, label=m.label, members=m.members) for m in report.methods],
            overdue=[
                OverdueMemberPublic(
                    id=m.id,
                    email=m.email,
                    name=m.name,
                    role=m.role,
                    due_at=m.due_at.isoformat(),
                    phishing_resistant=m.phishing_resistant,
                )
                for m in report.overdue
            ],
            in_grace_period=report.in_grace,
            events=[EventCountPublic(event=e.event, label=e.label, count=e.count) for e in report.events],
            audit_chain=AuditChainPublic(
                verified=report.chain.ok,
                events=report.chain.events,
                first_bad_seq=bad.seq if bad else None,
                first_bad_event=bad.event if bad else None,
                problem=report.chain_problem,
            ),
        )


class WorkstationPublic(BaseModel):
    id: int
    name: str
    created_at: str
    last_used_at: str | None = Field(description="When a session last started there (UTC)")
    current: bool = Field(description="The client asking is this workstation")

    @classmethod
    def of(cls, view: WorkstationView) -> WorkstationPublic:
        return cls(
            id=view.id,
            name=view.name,
            created_at=view.created_at.isoformat(),
            last_used_at=view.last_used_at.isoformat() if view.last_used_at else None,
            current=view.current,
        )


class WorkstationListPublic(BaseModel):
    items: list[WorkstationPublic]
    total: int


class WorkstationMark(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description='What people call it: "Front desk 1"')


class WorkstationRename(Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)


Delivery = Literal["immediate", "digest", "off"]


class AlertPreferencesPublic(BaseModel):
    """How this admin gets each kind of alert: `immediate` (an email each), `digest` (one email a day) or `off`."""

    two_factor_disabled: Delivery
    backup_code_used: Delivery
    backup_codes_low: Delivery
    locked_out: Delivery
    two_factor_reset: Delivery


class AlertPreferencesUpdate(Strict):
    """Kinds left out keep their choice."""

    two_factor_disabled: Delivery | None = None
    backup_code_used: Delivery | None = None
    backup_codes_low: Delivery | None = None
    locked_out: Delivery | None = None
    two_factor_reset: Delivery | None = None

    def changes(self) -> dict[str, str]:
        return {kind: value for kind, value in self.model_dump().items() if value is not None}


class AlertPublic(BaseModel):
    id: int
    kind: str
    label: str
    summary: str
    member: PersonPublic
    actor: str | None
    at: str
    details: dict
    acknowledged_at: str | None

    @classmethod
    def of(cls, view: AlertView) -> AlertPublic:
        return cls(
            id=view.id,
            kind=view.kind,
            label=view.label,
            summary=view.summary,
            member=PersonPublic(id=view.subject_id, name=view.subject_name, email=view.subject_email),
            actor=view.actor_name,
            at=view.at.isoformat(),
            details=dict(view.details),
            acknowledged_at=_iso(view.acknowledged_at),
        )


class AlertListPublic(BaseModel):
    """The practice's alerts of the last 7 days and older ones not yet dismissed, newest first (50 at most)."""

    items: list[AlertPublic]
