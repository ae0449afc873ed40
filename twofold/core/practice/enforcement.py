"""Required two-factor authentication: who must enrol, by when, and the gate on every request.

A member must enrol when the practice's policy covers their role (admins always)
or an admin reset demanded it. The policy's grace period runs from when the
requirement was switched on, or from when the member joined if that is later;
a reset allows no grace. Inside the grace period the member is sent to enrolment
at sign-in but may skip it; after it, every route but enrolment refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.sessions import ActiveSession
from twofold.errors import AdminTwoFactorRequired, Forbidden, TwoFactorRequired
from twofold.factors.base import FactorRegistry
from twofold.store.db import Database
from twofold.store.models import EnrolmentDemand, User


@dataclass(frozen=True, slots=True)
class EnrolmentRequirement:
    """``due_at`` is None when nothing requires 2FA of the member."""

    due_at: datetime | None
    enrolled: bool
    demanded: bool = False
    # The practice wants a phishing-resistant method (a security key or passkey) of this member.
    phishing_resistant: bool = False

    @property
    def outstanding(self) -> bool:
        return self.due_at is not None and not self.enrolled

    def may_skip(self, now: datetime) -> bool:
        return self.due_at is not None and not self.enrolled and now < self.due_at

    def blocks(self, now: datetime) -> bool:
        return self.due_at is not None and not self.enrolled and now >= self.due_at


def phishing_resistant_due_at(policy: Policy, user: User) -> datetime | None:
    """When the policy wants ``user`` to have a phishing-resistant method by, or None when it does not."""
    if user.role not in policy.phishing_resistant_roles:
        return None
    start = max(policy.phishing_resistant_since or user.created_at, user.created_at)
    return start + timedelta(days=policy.grace_days)


def policy_due_at(policy: Policy, user: User) -> datetime | None:
    """When the policy wants ``user`` enrolled by, or None when it does not cover them."""
    if not policy.requires_two_factor_for(user.role):
        return None
    start = max(policy.two_factor_required_since or user.created_at, user.created_at)
    return start + timedelta(days=policy.grace_days)


def enrolment_due_at(policy: Policy, user: User, demanded_by: datetime | None) -> tuple[datetime | None, bool]:
    """When ``user`` must have 2FA by (None: nothing requires it), and whether only a phishing-resistant
    method meets that. ``demanded_by`` is the due time of an admin reset's demand, if any."""
    due = policy_due_at(policy, user)
    if demanded_by is not None:
        due = demanded_by if due is None else min(due, demanded_by)
    strict_due = phishing_resistant_due_at(policy, user)
    if strict_due is not None:
        return (strict_due if due is None else min(due, strict_due)), True
    return due, False


@dataclass(kw_only=True, slots=True)
class TwoFactorEnforcement:
    db: Database
    clock: Clock
    audit: AuditLog
    factors: FactorRegistry

    def requirement(self, session: Session, *, user: User, policy: Policy | None = None) -> EnrolmentRequirement:
        """What is required of ``user`` now. One primary-key lookup, plus the factor check when required."""
        policy = policy or Policy.of(user.practice)
        demand = session.get(EnrolmentDemand, user.id)
        due, strict = enrolment_due_at(policy, user, demand.due_at if demand is not None else None)
        if strict:
            # Only a phishing-resistant method meets this requirement (an app does not).
            strong = self.factors.phishing_resistant_kinds()
            enrolled = bool(strong) and bool(self.factors.enabled_for(session, user, strong))
            return EnrolmentRequirement(due, enrolled=enrolled, demanded=demand is not None, phishing_resistant=True)
        if due is None:
            return EnrolmentRequirement(None, enrolled=False)
        enrolled = bool(self.factors.enabled_for(session, user))
        return EnrolmentRequirement(due, enrolled=enrolled, demanded=demand is not None)

    def requirement_for(self, user_id: int) -> EnrolmentRequirement:
        with self.db.reading() as s:
            user = s.get_one(User, user_id)
            return self.requirement(s, user=user)

    def check(self, active: ActiveSession) -> None:
        """Raise ``TwoFactorRequired`` when the member must enrol before doing anything else."""
        with self.db.reading() as s:
            requirement = self.requirement(s, user=active.user, policy=active.policy)
        if requirement.demanded and requirement.enrolled:
            # The member enrolled again after a reset: the demand is met, so it goes
            # (otherwise turning 2FA off later would lock them out at once).
            with self.db.transaction() as s:
                s.execute(delete(EnrolmentDemand).where(EnrolmentDemand.user_id == active.user.id))
        if requirement.blocks(self.clock.now()):
            raise TwoFactorRequired()

    def check_admin(self, active: ActiveSession) -> None:
        """The gate on every administration page and route: ``check``, then an admin with 2FA of their own.

        Raises ``Forbidden`` for a member who is not an admin, and ``AdminTwoFactorRequired`` for an admin
        with no method on (whatever the practice's policy, and inside a grace period too): an admin's
        account can reset every member's 2FA, so a password alone never administers a practice.
        """
        self.check(active)
        if active.user.role != "admin":
            raise Forbidden("Only practice admins can do this.")
        allowed = self.factors.allowed(active.policy.allowed_methods)
        with self.db.reading() as s:
            if not self.factors.enabled_for(s, active.user, allowed):
                raise AdminTwoFactorRequired()

    def skip(self, *, user: User, context: RequestContext) -> None:
        """Record that the member put enrolment off; refused once the grace period is over."""
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            requirement = self.requirement(s, user=user)
            if requirement.blocks(self.clock.now()):
                raise TwoFactorRequired()
            if requirement.outstanding and requirement.due_at is not None:
                self.audit.record(
                    s,
                    EventTag.TWO_FACTOR_ENROLMENT_SKIPPED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"due_at": requirement.due_at.isoformat()},
                )

    def demand(self, session: Session, *, user_id: int, reason: str) -> None:
        """Require ``user_id`` to enrol at their next request, whatever the policy (in the caller's transaction)."""
        now = self.clock.now()
        session.merge(EnrolmentDemand(user_id=user_id, due_at=now, reason=reason, created_at=now))

    def clear_demand(self, session: Session, *, user_id: int) -> None:
        session.execute(delete(EnrolmentDemand).where(EnrolmentDemand.user_id == user_id))
