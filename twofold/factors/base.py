"""The protocol every second factor implements, and the registry that finds them by kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Select, union
from sqlalchemy.orm import Session

from twofold.context import RequestContext
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
    # Work for after the transaction commits, given the request's context (a
    # "backup code used" email, say). The caller runs it only once committed.
    after_commit: Callable[[RequestContext], None] | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@dataclass(frozen=True)
class Challenge:
    """A challenge begun in a sign-in (a code to send). ``deliver`` runs after the commit.

    ``deliver`` returns False when the code could not be sent at once (it is then
    retried in the background); the caller tells the person waiting for it.
    """

    sent_to: str
    expires_in: int  # seconds the code stays valid
    resend_after: int  # seconds before another may be asked for
    deliver: Callable[[RequestContext], bool]


class SecondFactor(Protocol):
    kind: str
    code_format: str  # how a code looks, for "enter ..." messages
    wrong_code_message: str  # the one answer to every refused code of this factor

    def normalize(self, code: str) -> str | None:
        """The code in canonical form, or None when it cannot be one of this factor's codes."""

    def is_enabled_for(self, session: Session, user: User) -> bool:
        """True when ``user`` has this factor set up and may sign in with it."""

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> Challenge | None:
        """Start a challenge in a sign-in (make a code to send, say); None for app codes.

        May raise ``Throttled`` (a send limit); nothing it wrote is kept then.
        """

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

    def verify_any(
        self, session: Session, *, user: User, code: str, allowed: tuple[str, ...] | None = None
    ) -> tuple[str | None, Verification]:
        """Re-authentication: accept a code of any factor the user has (app code, backup code, emailed code).

        Tries each enabled factor whose format ``code`` fits; returns the kind that
        accepted it (consumed, as in ``verify``), or None and the most telling refusal.
        """
        refusal = Verification(Outcome.MALFORMED)
        for kind in self.enabled_for(session, user, allowed):
            factor = self._factors[kind]
            if factor.normalize(code) is None:
                continue
            verification = factor.verify(session, user=user, code=code)
            if verification.accepted:
                return kind, verification
            if refusal.outcome is Outcome.MALFORMED or verification.outcome is Outcome.OUT_OF_SYNC:
                refusal = verification
        return None, refusal
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
