"""The protocol every second factor implements, and the registry that finds them by kind."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Select, union
from sqlalchemy.orm import Session

from twofold.store.models import SignInFlow, User


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    REUSED = "reused"  # right code, already used (replay)
    OUT_OF_SYNC = "out_of_sync"  # right code for a step outside the accepted window
    EXPIRED = "expired"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Verification:
    """Why a code was or was not accepted; the reason goes to the audit log, not the client."""

    outcome: Outcome
    details: dict | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


class SecondFactor(Protocol):
    kind: str

    def normalize(self, code: str) -> str | None:
        """The code in canonical form, or None when it cannot be one of this factor's codes."""

    def is_enabled_for(self, session: Session, user: User) -> bool:
        """True when ``user`` has this factor set up and may sign in with it."""

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> None:
        """Start a challenge in a sign-in (send a code, say); a no-op for app codes."""

    def verify(self, session: Session, *, user: User, code: str) -> Verification:
        """Check ``code``; on acceptance consume it in ``session``'s transaction, atomically."""

    def remove(self, session: Session, *, user: User) -> None:
        """Delete this factor's credentials for ``user``."""

    def enabled_user_ids(self) -> Select:
        """A query of one column, the ids of users with this factor enabled (for lists and filters)."""


class FactorRegistry:
    """The available factors by kind; the sign-in flow asks it, never names a factor."""

    def __init__(self, factors: list[SecondFactor]) -> None:
        self._factors = {factor.kind: factor for factor in factors}

    def get(self, kind: str) -> SecondFactor | None:
        return self._factors.get(kind)

    def kinds(self) -> list[str]:
        return list(self._factors)

    def enabled_for(self, session: Session, user: User, allowed: tuple[str, ...] | None = None) -> list[str]:
        return [
            kind
            for kind, factor in self._factors.items()
            if (allowed is None or kind in allowed) and factor.is_enabled_for(session, user)
        ]

    def enabled_user_ids(self):
        """One query for the ids of users with any factor enabled: ``User.id.in_(registry.enabled_user_ids())``."""
        return union(*(factor.enabled_user_ids() for factor in self._factors.values()))

    def methods_for(self, session: Session, user_ids: list[int]) -> dict[int, list[str]]:
        """The enabled kinds of many users at once: one query per kind, not per user."""
        methods: dict[int, list[str]] = {user_id: [] for user_id in user_ids}
        if not user_ids:
            return methods
        for kind, factor in self._factors.items():
            query = factor.enabled_user_ids()
            column = query.selected_columns[0]
            for user_id in set(session.execute(query.where(column.in_(user_ids))).scalars()):
                methods[user_id].append(kind)
        return methods
