"""A practice's security policy, as the services read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from twofold.store.models import Practice

# HIPAA §164.312(a)(2)(iii) automatic log-off: we never allow more than an hour idle.
MAX_IDLE_MINUTES = 60
MAX_REMEMBER_DAYS = 30
# Methods a practice cannot switch off: the app is the baseline second factor, and
# backup codes are the way back in after a lost phone ("then only the app and
# backup codes work" when email codes are disallowed).
ALWAYS_ALLOWED = ("totp", "recovery_code")


@dataclass(frozen=True, slots=True)
class Policy:
    idle_timeout: timedelta
    session_max: timedelta
    remember_browser_days: int
    remember_browser_idle_days: int
    allowed_methods: tuple[str, ...]
    require_two_factor: bool
    required_roles: tuple[str, ...]
    grace_days: int
    two_factor_required_since: datetime | None = None

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
        )

    @property
    def second_factors(self) -> tuple[str, ...]:
        """The methods that may be used: those always allowed, then the practice's choice."""
        return tuple(dict.fromkeys(ALWAYS_ALLOWED + self.allowed_methods))

    def allows(self, method: str) -> bool:
        return method in self.second_factors

    def requires_two_factor_for(self, role: str) -> bool:
        """True when members of ``role`` must use 2FA: every role when no roles are named; admins always."""
        if not self.require_two_factor:
            return False
        return not self.required_roles or role in self.required_roles or role == "admin"
