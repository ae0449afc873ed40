"""The protocol every second factor implements, and the registry that finds them by kind."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

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
