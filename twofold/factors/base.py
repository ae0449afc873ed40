"""The protocol every second factor implements, and the registry that finds them by kind.

The registry is the only list of factor kinds and their labels: nothing else in
Twofold names them. A factor lives in ``factors/<kind>/``: ``factor.py`` verifies
(this module's ``SecondFactor``), ``enrollment.py`` holds its use cases (set-up,
removal), which may use core's re-authentication gate, security mail and policy.

To be registered (in ``twofold/wiring.py``), a new factor must pass the contract
test, ``tests/factors/test_contract.py``, which runs over every factor the wiring
registers: kind and label present and unique, garbage normalises to None, a wrong,
malformed or structured-garbage response is refused with the right ``Outcome`` and
changes nothing, a right response is accepted once and never twice, and
``remove`` and ``enabled_user_ids`` agree with ``is_enabled_for``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypedDict

from sqlalchemy import CompoundSelect, Select, union
from sqlalchemy.orm import Session

from twofold.context import RequestContext
from twofold.errors import ClockOutOfSync, CodeJustUsed, InvalidCode, NotFound, TwofoldError
from twofold.store.models import SignInFlow, User

log = logging.getLogger("twofold.factors")

# What a person answers a challenge with: a code they type, or a structured
# assertion their authenticator made (a WebAuthn response is a JSON object). A code
# factor refuses anything but a string as MALFORMED.
FactorResponse = str | Mapping[str, object]


class AuditFacts(TypedDict):
    """Who did what to whom, shared by a use case's several ``AuditLog.record`` calls (``**facts``)."""

    context: RequestContext
    practice_id: int | None
    actor_id: int | None
    subject_id: int | None


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    REUSED = "reused"  # right code, already used (replay)
    # Right code of the very step accepted last (the code that just confirmed the app, a double submit):
    # told apart so the member learns to wait for the next code, and not counted as a guess.
    JUST_USED = "just_used"
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

    def refusal(self, message: str | None = None) -> TwofoldError:
        """The one answer to a refused response: "check your phone's clock" when it was right but out of
        sync (Warehouse tells these apart too), else ``message``, the same for every other reason."""
        if self.outcome is Outcome.OUT_OF_SYNC:
            return ClockOutOfSync()
        if self.outcome is Outcome.JUST_USED:
            return CodeJustUsed()
        return InvalidCode(message)

    @property
    def counts_as_guess(self) -> bool:
        """Whether the refusal counts toward the lockout: the code just accepted, sent again, is not a guess."""
        return self.outcome is not Outcome.JUST_USED


def run_after_commit(work: Callable[[RequestContext], None] | None, context: RequestContext) -> None:
    """Run a factor's follow-up (a notice email) once its change is committed; it never fails the request."""
    if work is None:
        return
    try:
        work(context)
    except Exception:
        log.exception("follow-up after a second factor failed")


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"
    message = "This set-up was not found or has expired. Start the set-up again."


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
    """A second factor as the sign-in flow and re-authentication use it (a strategy, looked up by kind)."""

    kind: ClassVar[str]  # stable: stored in policies, audit events and the API (never renamed)
    label: ClassVar[str]  # what people call it: "Authenticator app"
    described_as: ClassVar[str]  # how a sentence names it: "with an authenticator app"
    always_allowed: ClassVar[bool]  # True: usable whatever a practice's policy lists
    # True: a fake site cannot relay it (WebAuthn binds the response to our origin); roles a practice names in
    # ``phishing_resistant_roles`` sign in only with such a factor once they have one.
    phishing_resistant: ClassVar[bool]
    # True: the way back in when the usual factor is lost (backup codes); kept even where sign-in is limited to
    # phishing-resistant factors.
    for_recovery: ClassVar[bool]
    code_format: ClassVar[str]  # how a response looks, for "enter ..." messages
    wrong_code_message: ClassVar[str]  # the one answer to every refused response of this factor
    amr: ClassVar[str]  # its RFC 8176 authentication method reference: "otp", "hwk", "swk"

    def normalize(self, response: FactorResponse) -> str | None:
        """The response in canonical form, or None when it cannot be one of this factor's (no lookup)."""

    def is_enabled_for(self, session: Session, user: User) -> bool:
        """True when ``user`` has this factor set up and may sign in with it."""

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> Challenge | None:
        """Start a challenge in a sign-in (make a code to send, say); None for app codes.

        May raise ``Throttled`` (a send limit); nothing it wrote is kept then.
        """

    def verify(
        self, session: Session, *, user: User, response: FactorResponse, flow: SignInFlow | None = None
    ) -> Verification:
        """Check ``response``; on acceptance consume it in ``session``'s transaction, atomically.

        ``flow`` is the sign-in flow it answers (None: a re-authentication); a factor whose
        challenges are bound to a flow (a security key's) accepts only that flow's.

        A response of the wrong shape is ``Outcome.MALFORMED`` and changes nothing;
        one accepted response is never accepted again (REUSED).
        """

    def remove(self, session: Session, *, user: User) -> None:
        """Delete this factor's credentials for ``user``."""

    def enabled_user_ids(self) -> Select:
        """A query of one column, the ids of users with this factor enabled (for lists and filters)."""


class FactorEnrollment(Protocol):
    """Setting up one factor for a member, as core's use cases drive it (the set-up link's app step,
    the admin's screen). Each method works in the caller's transaction and writes its audit event."""

    kind: ClassVar[str]

    def start(
        self,
        session: Session,
        *,
        user: User,
        context: RequestContext,
        actor_id: int | None,
        details: dict | None = None,
    ) -> Any:
        """A new pending set-up of ``user`` (what to show them: a QR code, say); audited as started."""

    def pending(self, session: Session, *, user: User, enrollment_id: str) -> Any | None:
        """The pending set-up ``enrollment_id`` of ``user`` again, or None when unknown or expired."""

    def confirm(
        self,
        session: Session,
        *,
        user: User,
        enrollment_id: str,
        response: FactorResponse,
        context: RequestContext,
        actor_id: int | None,
    ) -> Verification:
        """Finish the set-up with its first response. Raises ``Throttled`` before checking while guesses are
        blocked and ``EnrollmentNotFound`` for an unknown or expired set-up; a wrong response is counted and
        audited, then refused with ``Refusal`` (the count commits)."""


class BackupCodeIssuer(Protocol):
    def issue_first_set(self, session: Session, *, user: User, context: RequestContext) -> list[str]:
        """The first backup codes of ``user``, as 2FA is turned on (audited); returned to be shown once."""


class PendingSetups(Protocol):
    def discard_pending(self, session: Session, *, user: User) -> None:
        """Drop ``user``'s unconfirmed set-ups (when 2FA was turned on some other way)."""


class FactorRegistry:
    """The available factors by kind; the sign-in flow asks it, never names a factor.

    The only list of factor kinds and labels (see the module docstring for what a
    factor must pass to be registered). Order matters: it is the order methods are
    offered and listed in.
    """

    def __init__(self, factors: list[SecondFactor]) -> None:
        self._factors = {factor.kind: factor for factor in factors}
        if len(self._factors) != len(factors):
            raise ValueError("two factors share a kind")
        self._always = tuple(kind for kind, factor in self._factors.items() if factor.always_allowed)
        self._allowed: dict[tuple[str, ...], tuple[str, ...]] = {}

    def get(self, kind: str) -> SecondFactor | None:
        return self._factors.get(kind)

    def __getitem__(self, kind: str) -> SecondFactor:
        """The factor of a registered ``kind`` (one ``kinds`` or ``enabled_for`` returned); KeyError otherwise."""
        return self._factors[kind]

    def kinds(self) -> list[str]:
        return list(self._factors)

    def labels(self) -> dict[str, str]:
        """Every kind with its human label, in registry order (for pages and emails)."""
        return {kind: factor.label for kind, factor in self._factors.items()}

    def label(self, kind: str) -> str:
        """The human label of ``kind``; the kind itself when no such factor is registered."""
        factor = self._factors.get(kind)
        return factor.label if factor is not None else kind

    def __iter__(self) -> Iterator[SecondFactor]:
        return iter(self._factors.values())

    def allowed(self, chosen: Sequence[str]) -> tuple[str, ...]:
        """The kinds a practice's members may use: those always allowed, then the practice's ``chosen``."""
        key = tuple(chosen)
        found = self._allowed.get(key)
        if found is None:
            found = self._allowed[key] = tuple(dict.fromkeys(self._always + key))
        return found

    def for_member(
        self, session: Session, user: User, chosen: Sequence[str], phishing_resistant_roles: Sequence[str]
    ) -> tuple[str, ...]:
        """The kinds ``user`` may sign in with: ``allowed(chosen)``, limited to phishing-resistant factors (and
        backup codes) once a member of a role in ``phishing_resistant_roles`` has one of them."""
        allowed = self.allowed(chosen)
        if user.role not in phishing_resistant_roles:
            return allowed
        strong = tuple(kind for kind in allowed if self._factors[kind].phishing_resistant)
        if not strong or not self.enabled_for(session, user, strong):
            return allowed
        return tuple(
            kind for kind in allowed if self._factors[kind].phishing_resistant or self._factors[kind].for_recovery
        )

    def phishing_resistant_kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, factor in self._factors.items() if factor.phishing_resistant)

    def allows(self, chosen: Sequence[str], kind: str) -> bool:
        """True when ``kind`` may be used under a policy that lists ``chosen``."""
        return kind in self._always or kind in chosen

    def enabled_for(self, session: Session, user: User, allowed: tuple[str, ...] | None = None) -> list[str]:
        return [
            kind
            for kind, factor in self._factors.items()
            if (allowed is None or kind in allowed) and factor.is_enabled_for(session, user)
        ]

    def verify_any(
        self, session: Session, *, user: User, response: FactorResponse, allowed: tuple[str, ...] | None = None
    ) -> tuple[str | None, Verification]:
        """Re-authentication: accept a response of any factor the user has (app code, backup code, emailed code).

        Tries each enabled factor (of ``allowed``, when given) whose format ``response`` fits; returns the kind that
        accepted it (consumed, as in ``verify``), or None and the most telling refusal.
        """
        refusal = Verification(Outcome.MALFORMED)
        for kind in self.enabled_for(session, user, allowed):
            factor = self._factors[kind]
            if factor.normalize(response) is None:
                continue
            verification = factor.verify(session, user=user, response=response)
            if verification.accepted:
                return kind, verification
            if refusal.outcome is Outcome.MALFORMED or verification.outcome in (Outcome.OUT_OF_SYNC, Outcome.JUST_USED):
                refusal = verification
        return None, refusal

    def enabled_user_ids(self) -> CompoundSelect:
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
