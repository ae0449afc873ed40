"""The practice's security policy as its admins set it, and who a change would affect.

Changes apply at each member's next request: sessions read the policy from the
practice row every time (core/sessions.py), and so does the 2FA gate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock, is_time_zone
from twofold.context import RequestContext
from twofold.core.paging import Page
from twofold.core.policy import MAX_IDLE_MINUTES, MAX_REMEMBER_DAYS
from twofold.core.practice.members import MemberFilter, MemberService, MemberView
from twofold.errors import InvalidInput, NotFound
from twofold.factors.base import FactorRegistry
from twofold.store.db import Database
from twofold.store.models import ROLES, Practice

MAX_GRACE_DAYS = 30


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What an admin sets; the JSON API's policy object, field for field."""

    require_two_factor: bool
    required_roles: list[str]
    grace_days: int
    allowed_methods: list[str]
    remember_browser_days: int
    idle_timeout_minutes: int
    time_zone: str = "UTC"  # an IANA name: what pages and emails show times in
    # May members sign in with a passkey alone (it counts as both factors)?
    passkey_sign_in: bool = True
    # Roles that must use a security key or passkey: set one up within the grace period, then sign in only with
    # it (backup codes still work for a lost key, and each use is emailed).
    phishing_resistant_roles: list[str] = field(default_factory=list)
    # Sessions started on a shared workstation end after this many idle minutes (at most idle_timeout_minutes).
    shared_workstation_idle_minutes: int = 2

    @classmethod
    def of(cls, practice: Practice) -> PolicySettings:
        return cls(
            require_two_factor=bool(practice.require_two_factor),
            required_roles=list(practice.required_roles or []),
            grace_days=practice.grace_days,
            allowed_methods=list(practice.allowed_methods or []),
            remember_browser_days=practice.remember_browser_days,
            idle_timeout_minutes=practice.idle_timeout_minutes,
            time_zone=practice.time_zone or "UTC",
            passkey_sign_in=bool(practice.passkey_sign_in),
            phishing_resistant_roles=list(practice.phishing_resistant_roles or []),
            shared_workstation_idle_minutes=practice.shared_workstation_idle_minutes,
        )

    def checked(self, factors: FactorRegistry, baseline: str) -> PolicySettings:
        """The same settings, normalised; ``InvalidInput`` naming the first field out of range.

        The methods are the registry's kinds; ``baseline`` (the kind every member can
        set up, and the sign-in flow always offers) must be among them.
        """
        kinds = factors.kinds()
        roles = []
        for role in self.required_roles:
            if role not in ROLES:
                raise PolicyChoiceInvalid(
                    "required_roles", f"required_roles: {role!r} is not a role (use {', '.join(ROLES)})."
                )
            if role not in roles:
                roles.append(role)
        strict_roles = []
        for role in self.phishing_resistant_roles:
            if role not in ROLES:
                raise PolicyChoiceInvalid(
                    "phishing_resistant_roles",
                    f"phishing_resistant_roles: {role!r} is not a role (use {', '.join(ROLES)}).",
                )
            if role not in strict_roles:
                strict_roles.append(role)
        if not isinstance(self.passkey_sign_in, bool):
            raise PolicyChoiceInvalid("passkey_sign_in", "passkey_sign_in must be true or false.")
        methods = []
        for method in self.allowed_methods:
            if method not in kinds:
                raise PolicyChoiceInvalid(
                    "allowed_methods", f"allowed_methods: {method!r} is not a method (use {', '.join(kinds)})."
                )
            if method not in methods:
                methods.append(method)
        if baseline not in methods:
            raise PolicyChoiceInvalid(
                "allowed_methods",
                f"allowed_methods: the {factors.label(baseline).lower()} ({baseline}) is always allowed; include it.",
            )
        for name, value, low, high in (
            ("grace_days", self.grace_days, 0, MAX_GRACE_DAYS),
            ("remember_browser_days", self.remember_browser_days, 0, MAX_REMEMBER_DAYS),
            ("idle_timeout_minutes", self.idle_timeout_minutes, 1, MAX_IDLE_MINUTES),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise PolicyValueInvalid(name, low, high)
        # A shared workstation's idle timeout is the shorter one: never longer than everyone else's.
        shared = self.shared_workstation_idle_minutes
        if isinstance(shared, bool) or not isinstance(shared, int) or not 1 <= shared <= self.idle_timeout_minutes:
            raise PolicyValueInvalid("shared_workstation_idle_minutes", 1, self.idle_timeout_minutes)
        if not is_time_zone(self.time_zone):
            raise PolicyTimeZoneInvalid()
        if strict_roles and not set(factors.phishing_resistant_kinds()) & set(methods):
            raise PhishingResistantMethodNotAllowed(
                "phishing_resistant_roles",
                "phishing_resistant_roles: allow a phishing-resistant method (webauthn) for those roles to use.",
            )
        return replace(self, required_roles=roles, allowed_methods=methods, phishing_resistant_roles=strict_roles)

    def affected_roles(self) -> tuple[str, ...]:
        """The roles that must use 2FA under these settings (admins always); none when it is not required."""
        if not self.require_two_factor:
            return ()
        return tuple(
            role for role in ROLES if not self.required_roles or role in self.required_roles or role == "admin"
        )


class PolicyValueInvalid(InvalidInput):
    """A number of the policy outside its range; ``field`` names it (the page shows its label)."""

    def __init__(self, field: str, low: int, high: int) -> None:
        self.field, self.low, self.high = field, low, high
        super().__init__(f"{field} must be a whole number from {low} to {high}.")


class PolicyChoiceInvalid(InvalidInput):
    """A choice of the policy that cannot stand: a role or method that does not exist, or roles
    that need a method the policy does not allow; ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class PhishingResistantMethodNotAllowed(PolicyChoiceInvalid):
    """Roles must use a phishing-resistant method, and the policy allows none."""


class PolicyTimeZoneInvalid(InvalidInput):
    """Not a time zone name."""

    field = "time_zone"
    message = "time_zone must be a time zone name, such as America/Chicago, Europe/London or UTC."


@dataclass(frozen=True, slots=True)
class PolicyPreview:
    """Active members who would have to set up 2FA, and by when (members who join later get the full grace)."""

    members: Page[MemberView]
    due_at: datetime | None


@dataclass(kw_only=True, slots=True)
class PolicyService:
    db: Database
    clock: Clock
    audit: AuditLog
    members: MemberService
    factors: FactorRegistry
    baseline: str  # the kind every member can set up (the set-up link's): always allowed

    def get(self, *, practice_id: int) -> PolicySettings:
        with self.db.reading() as s:
            return PolicySettings.of(self._practice(s, practice_id))

    def required_since(self, *, practice_id: int) -> datetime | None:
        with self.db.reading() as s:
            return self._practice(s, practice_id).two_factor_required_since

    def proposed(self, *, practice_id: int, changes: dict) -> PolicySettings:
        """The current settings with ``changes`` (only the fields given) applied and checked."""
        return self._changed(self.get(practice_id=practice_id), changes)

    def update(
        self, *, practice_id: int, actor_id: int | None, changes: dict, context: RequestContext
    ) -> PolicySettings:
        """Save the policy. Switching required 2FA on starts the grace period now; switching it off ends it."""
        with self.db.transaction() as s:
            practice = self._practice(s, practice_id, lock=True)
            before = PolicySettings.of(practice)
            after = self._changed(before, changes)
            diff = {
                name: [old, new]
                for (name, old), new in zip(asdict(before).items(), asdict(after).values(), strict=True)
                if old != new
            }
            if not diff:
                return after
            for name, value in asdict(after).items():
                setattr(practice, name, value)
            if after.require_two_factor and not before.require_two_factor:
                practice.two_factor_required_since = self.clock.now()
            elif not after.require_two_factor:
                practice.two_factor_required_since = None
            # The grace period for a key runs from when the first role was named (or when a member joined).
            if after.phishing_resistant_roles and not before.phishing_resistant_roles:
                practice.phishing_resistant_since = self.clock.now()
            elif not after.phishing_resistant_roles:
                practice.phishing_resistant_since = None
            self.audit.record(
                s,
                EventTag.POLICY_CHANGED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"changes": diff},
            )
            return after

    def preview(self, *, practice_id: int, settings: PolicySettings, page: int = 1) -> PolicyPreview:
        """Who would have to set up 2FA under ``settings``: active members of the covered roles without it."""
        roles = settings.affected_roles()
        members = self.members.list_members(
            practice_id=practice_id,
            filter=MemberFilter(without_two_factor=True, roles=roles, active=True),
            page=page,
        )
        if not roles:
            return PolicyPreview(members, None)
        since = (
            self.required_since(practice_id=practice_id)
            if self.get(practice_id=practice_id).require_two_factor
            else None
        )
        return PolicyPreview(members, (since or self.clock.now()) + timedelta(days=settings.grace_days))

    def methods(self) -> dict[str, str]:
        """The methods a policy may list, with their labels (the registry's, in its order)."""
        return self.factors.labels()

    def _changed(self, settings: PolicySettings, changes: dict) -> PolicySettings:
        unknown = set(changes) - set(PolicySettings.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
        return replace(settings, **changes).checked(self.factors, self.baseline)

    def _practice(self, s, practice_id: int, lock: bool = False) -> Practice:
        query = select(Practice).where(Practice.id == practice_id)
        practice = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if practice is None:
            raise NotFound("No such practice.")
        return practice
