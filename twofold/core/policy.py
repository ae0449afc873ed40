"""A practice's security policy, as the services read it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from twofold.store.models import Practice

# HIPAA §164.312(a)(2)(iii) automatic log-off: we never allow more than an hour idle.
MAX_IDLE_MINUTES = 60
MAX_REMEMBER_DAYS = 30


# The practice columns ``Policy.of`` reads, for reads that select columns rather than load the row
# (tests/core/test_policy.py checks that a record of just these makes the same policy).
PRACTICE_POLICY_FIELDS = (
    "idle_timeout_minutes",
    "session_max_hours",
    "remember_browser_days",
    "remember_browser_idle_days",
    "allowed_methods",
    "require_two_factor",
    "required_roles",
    "grace_days",
    "two_factor_required_since",
    "time_zone",
    "passkey_sign_in",
    "phishing_resistant_roles",
    "phishing_resistant_since",
    "shared_workstation_idle_minutes",
)


@dataclass(frozen=True, slots=True)
class Policy:
    idle_timeout: timedelta
    session_max: timedelta
    remember_browser_days: int
    remember_browser_idle_days: int
    # The optional methods the practice chose; those a practice cannot switch off are
    # added by the factor registry (``FactorRegistry.allowed``).
    allowed_methods: tuple[str, ...]
    require_two_factor: bool
    required_roles: tuple[str, ...]
    grace_days: int
    two_factor_required_since: datetime | None = None
    time_zone: str = "UTC"  # the practice's (IANA name), for what people read; never for what is computed
    # Members may sign in with a passkey alone (it counts as both factors).
    passkey_sign_in: bool = True
    # Roles that must use a phishing-resistant method (a security key or passkey).
    phishing_resistant_roles: tuple[str, ...] = ()
    phishing_resistant_since: datetime | None = None
    # A session started on a shared workstation (a front-desk browser) ends after this idle time instead.
    shared_workstation_idle: timedelta = timedelta(minutes=2)

    @classmethod
    def of(cls, practice: Practice) -> Policy:
        return cls(
            idle_timeout=timedelta(minutes=min(practice.idle_timeout_minutes, MAX_IDLE_MINUTES)),
            session_max=timedelta(hours=practice.session_max_hours),
            remember_browser_days=min(practice.remember_browser_days, MAX_REMEMBER_DAYS),
            remember_browser_idle_days=practice.remember_browser_idle_days,
            allowed_methods=tuple(practice.allowed_methods or ()),
            require_two_factor=practice.require_two_factor,
            required_roles=tuple(practice.required_roles or ()),
            grace_days=practice.grace_days,
            two_factor_required_since=practice.two_factor_required_since,
            time_zone=practice.time_zone or "UTC",
            passkey_sign_in=bool(practice.passkey_sign_in),
            phishing_resistant_roles=tuple(practice.phishing_resistant_roles or ()),
            phishing_resistant_since=practice.phishing_resistant_since,
            shared_workstation_idle=timedelta(
                minutes=max(1, min(practice.shared_workstation_idle_minutes or 2, practice.idle_timeout_minutes))
            ),
        )

    def on_workstation(self) -> Policy:
        """This policy as a session on a shared workstation lives by it: the shorter idle timeout."""
        return replace(self, idle_timeout=min(self.shared_workstation_idle, self.idle_timeout))

    def requires_two_factor_for(self, role: str) -> bool:
        """True when members of ``role`` must use 2FA: every role when no roles are named; admins always."""
        if not self.require_two_factor:
            return False
        return not self.required_roles or role in self.required_roles or role == "admin"
