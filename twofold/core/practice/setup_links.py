"""Bringing a member onto two-factor authentication, the two ways an admin can.

1. A one-time set-up link, emailed: valid 72 hours, used once, and revoked by a
   newer link for the same member. Opening it asks for the member's password
   (a member added by an admin chooses one here first), then takes them through
   setting up an authenticator app. The link is used up when the app's first code
   is accepted (or at once, for a member who already has 2FA).
2. "Set up on this screen": the admin's screen shows the QR code of a new app
   key, the member scans it with their phone and types its code on the same
   screen. The key is shown once; a wrong code asks for the next code, not the key.

Only a keyed hash of a link's token is stored, so a copy of the database holds no
working link.

A member added with an address that already has an account in another practice gets the
same pending row and the same link, but the email is an invitation (``invitation_message``)
and the link cannot set a password: its owner signs in as usual and accepts, which moves
their account here (``accept_invitation``). The admin who added the address sees the same
answer, list and audit events in both cases, so they learn nothing about other practices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import TwoFactorAlreadyEnabled, check_password_rules
from twofold.core.notifier import Message, Notifier
from twofold.core.practice.enforcement import TwoFactorEnforcement
from twofold.core.practice.mail import invitation_message, setup_link_message
from twofold.core.practice.members import TrustRevoker, member_in
from twofold.core.reauth import PasswordGate
from twofold.core.sessions import SessionService
from twofold.crypto.passwords import PasswordHasher
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import Conflict, InvalidCredentials, TwofoldError
from twofold.factors.base import BackupCodeIssuer, FactorEnrollment, FactorRegistry, FactorResponse
from twofold.store.db import Database, Refusal
from twofold.store.models import Practice, SetupLink, User
from twofold.throttle import password_checks

SETUP_LINK_TTL = timedelta(hours=72)


class SetupLinkInvalid(TwofoldError):
    """The link cannot be used; ``reason`` is one of REASONS' keys."""

    code = "setup_link_invalid"
    REASONS: ClassVar[dict[str, str]] = {
        "unknown": "This set-up link is not valid. Check that you opened the whole link from the email.",
        "expired": "This set-up link has expired (links work for 72 hours). Ask your practice admin for a new one.",
        "used": "This set-up link has already been used. Sign in with your password and authenticator app.",
        "revoked": "A newer set-up link was sent to you: use the link in the most recent email.",
        "inactive": "This account is not active. Ask your practice admin.",
    }

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.REASONS[reason])


class MemberAlreadySetUp(Conflict):
    code = "member_already_set_up"
    message = "This member already has a password and two-factor authentication: there is nothing to set up."


class MemberInactive(Conflict):
    code = "member_inactive"
    message = "This member is deactivated. Reactivate them first."


class InvitationNeedsSignIn(Conflict):
    code = "invitation_needs_sign_in"
    message = (
        "This address already has a Twofold account in another practice. Sign in with it as usual, "
        "then accept the invitation on this page."
    )


class InvitationNotForYou(Conflict):
    code = "invitation_not_for_you"
    message = (
        "This invitation is for another address. Sign out, then sign in with the account of the address "
        "the invitation was sent to."
    )


class LastAdminCannotMove(Conflict):
    code = "last_admin_cannot_move"
    message = (
        "You are the last active admin of your current practice, so your account cannot move yet. "
        "Ask your practice to make another member an admin, then accept again."
    )


class PasswordAlreadySet(Conflict):
    code = "password_already_set"
    message = "A password was already chosen for this account. Enter it to continue."


@dataclass(frozen=True, slots=True)
class SetupState:
    """What a live link still has to do for its member."""

    member_name: str
    member_email: str
    practice_name: str
    needs_password: bool
    needs_two_factor: bool
    expires_at: datetime
    time_zone: str = "UTC"  # the practice's, for showing ``expires_at``
    # The address has an account in another practice: its owner signs in and accepts (nothing to set up here).
    invitation: bool = False


@dataclass(frozen=True, slots=True)
class SetupStep:
    """After the password: an app to set up (``enrollment``, what ``FactorEnrollment.start`` made to show),
    or nothing left (``done``)."""

    enrollment: Any | None
    done: bool = False


@dataclass(frozen=True, slots=True)
class SetupDone:
    """2FA is on through a set-up link: the member is signed in (``session_token``) and gets their
    first backup codes (``recovery_codes``), to be shown once."""

    session_token: str
    recovery_codes: list[str]


@dataclass(kw_only=True, slots=True)
class SetupService:
    """Set-up links and set-up on the admin's screen.

    ``enrollment`` is the factor a member sets up here (the wiring passes the
    authenticator app's); this module never names it.
    """

    db: Database
    clock: Clock
    passwords: PasswordHasher
    gate: PasswordGate
    audit: AuditLog
    factors: FactorRegistry
    enrollment: FactorEnrollment
    enforcement: TwoFactorEnforcement
    hasher: TokenHasher
    notifier: Notifier
    sessions: SessionService
    backup_codes: BackupCodeIssuer
    trust_revokers: list[TrustRevoker]

    # -- sending -------------------------------------------------------------------

    def issue(self, session: Session, *, member: User, created_by_id: int | None, context: RequestContext) -> str:
        """A new link for ``member`` in the caller's transaction; every older live link is revoked."""
        now = self.clock.now()
        session.execute(
            update(SetupLink)
            .where(SetupLink.user_id == member.id, SetupLink.used_at.is_(None), SetupLink.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="superseded")
        )
        token = random_token(32)
        link = SetupLink(
            token_hash=self.hasher.hash(token),
            user_id=member.id,
            created_by_id=created_by_id,
            created_at=now,
            expires_at=now + SETUP_LINK_TTL,
        )
        session.add(link)
        self.audit.record(
            session,
            EventTag.SETUP_LINK_SENT,
            context=context,
            practice_id=member.practice_id,
            actor_id=created_by_id,
            subject_id=member.id,
            details={"expires_at": link.expires_at.isoformat(), "welcome": member.password_changed_at is None},
        )
        return token

    def claimed_elsewhere(self, session: Session, *, practice_id: int, emails: list[str]) -> set[str]:
        """Which of ``emails`` belong to a claimed account (one with a password) of another practice.

        One query whatever the answer, asked for every address added, so adding a new address and
        one that exists elsewhere cost the admin's request the same work.
        """
        if not emails:
            return set()
        return set(
            session.execute(
                select(User.email).where(
                    User.email.in_(emails),
                    User.practice_id != practice_id,
                    User.password_changed_at.is_not(None),
                )
            ).scalars()
        )

    def pending_message(self, *, member: User, token: str, link_base: str, invitation: bool = False) -> Message:
        """The set-up link's email, or (``invitation``: the address has an account elsewhere) the invitation."""
        if invitation:
            return invitation_message(
                to=member.email,
                name=member.name,
                practice=member.practice.name,
                url=f"{link_base.rstrip('/')}/setup/{token}",
                expires_at=self.clock.now() + SETUP_LINK_TTL,
                time_zone=member.practice.time_zone,
            )
        return setup_link_message(
            to=member.email,
            name=member.name,
            practice=member.practice.name,
            url=f"{link_base.rstrip('/')}/setup/{token}",
            expires_at=self.clock.now() + SETUP_LINK_TTL,
            welcome=member.password_changed_at is None,
            time_zone=member.practice.time_zone,
        )

    def deliver(self, message: Message) -> None:
        self.notifier.send(message)

    def send_link(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        member_id: int,
        context: RequestContext,
        link_base: str,
    ) -> datetime:
        """Email ``member_id`` a new set-up link; returns when it expires."""
        with self.db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            if not member.active:
                raise MemberInactive()
            if member.password_changed_at is not None and self.factors.enabled_for(s, member):
                raise MemberAlreadySetUp()
            token = self.issue(s, member=member, created_by_id=actor_id, context=context)
            elsewhere = self.claimed_elsewhere(s, practice_id=practice_id, emails=[member.email])
            message = self.pending_message(
                member=member, token=token, link_base=link_base, invitation=member.email in elsewhere
            )
        self.deliver(message)
        return self.clock.now() + SETUP_LINK_TTL

    # -- following a link -------------------------------------------------------------

    def open(self, *, token: str, context: RequestContext) -> SetupState:
        """What the link at ``token`` still has to do; ``SetupLinkInvalid`` (audited) when it cannot be used."""
        with self.db.transaction() as s:
            link, member = self._live(s, token, context)
            if self._owner_elsewhere(s, member) is not None:
                return SetupState(
                    member_name=member.name,
                    member_email=member.email,
                    practice_name=member.practice.name,
                    needs_password=False,
                    needs_two_factor=False,
                    expires_at=link.expires_at,
                    time_zone=member.practice.time_zone,
                    invitation=True,
                )
            needs_two_factor = not self.factors.enabled_for(s, member)
            if member.password_changed_at is None or needs_two_factor:
                return SetupState(
                    member_name=member.name,
                    member_email=member.email,
                    practice_name=member.practice.name,
                    needs_password=member.password_changed_at is None,
                    needs_two_factor=needs_two_factor,
                    expires_at=link.expires_at,
                    time_zone=member.practice.time_zone,
                )
            # Set up by other means since the link was sent: nothing left, the link is spent.
            self._use(s, link, member, context)
            raise Refusal(SetupLinkInvalid("used"))

    def choose_password(self, *, token: str, password: str, context: RequestContext) -> SetupStep:
        """For a member without a password: set it, then go on to the app."""
        check_password_rules(password)
        password_hash = self.passwords.hash(password)
        with self.db.transaction() as s:
            link, member = self._live(s, token, context)
            if member.password_changed_at is not None:
                raise PasswordAlreadySet()
            if self._owner_elsewhere(s, member) is not None:
                raise InvitationNeedsSignIn()  # only the owner's own password opens their address
            member.password_hash = password_hash
            member.password_changed_at = self.clock.now()
            try:
                s.flush()
            except IntegrityError:  # the address was claimed in another practice a moment ago
                raise InvitationNeedsSignIn() from None
            self.audit.record(
                s,
                EventTag.PASSWORD_SET,
                context=context,
                practice_id=member.practice_id,
                actor_id=member.id,
                subject_id=member.id,
                details={"via": "setup_link"},
            )
            return self._next_step(s, link, member, context)

    def verify_password(self, *, token: str, password: str, context: RequestContext) -> SetupStep:
        """For a member who has a password: check it (throttled like sign-in), then go on to the app.

        Guesses about one account take turns with its sign-in guesses (the same
        password gate), so a parallel burst is judged no more often than the limit.
        """
        with self.db.transaction() as s:
            _link, member = self._live(s, token, context)
            if self._owner_elsewhere(s, member) is not None:
                raise InvitationNeedsSignIn()  # the password that counts is the owner's, at sign-in
            email, member_id = member.email, member.id
        checks = password_checks(email, context.ip)
        with (
            self.gate.guess(email=email, user_id=member_id, password=password, counted=checks) as check,
            self.db.transaction() as s,
        ):
            link, member = self._live(s, token, context)
            if check.ok:
                return self._next_step(s, link, member, context)
            check.count_failure(s)
            self.audit.record(
                s,
                EventTag.SIGN_IN_PASSWORD_FAILED,
                context=context,
                practice_id=member.practice_id,
                subject_id=member.id,
                details={"reason": "wrong_password", "via": "setup_link"},
            )
            raise Refusal(InvalidCredentials("That password is not right."))

    def pending_enrollment(self, *, token: str, enrollment_id: str) -> Any | None:
        """The set-up begun through this link, again (after a wrong first code, on the member's own screen)."""
        with self.db.reading() as s:
            link = self._link(s, token)
            if link is None:
                return None
            member = s.get_one(User, link.user_id)
            # A used, revoked or expired link shows nothing again: the key on that page is a credential.
            if self._dead_because(link, member):
                return None
            return self.enrollment.pending(s, user=member, enrollment_id=enrollment_id)

    def confirm(self, *, token: str, enrollment_id: str, code: FactorResponse, context: RequestContext) -> SetupDone:
        """Accept the first code of the member's new factor: 2FA is on, the link is used up, the member
        gets their first backup codes and is signed in, in one transaction.

        The member has just proved their password and their new app's code on this link, the
        same proof a sign-in asks for, so the set-up ends signed in (on the backup codes page).
        """
        with self.db.transaction() as s:
            link, member = self._live(s, token, context)
            self._confirm_enrollment(s, member, enrollment_id, code, context, actor_id=member.id)
            self.audit.record(
                s,
                EventTag.TWO_FACTOR_ENABLED,
                context=context,
                practice_id=member.practice_id,
                actor_id=member.id,
                subject_id=member.id,
                details={"method": self.enrollment.kind, "via": "setup_link"},
            )
            self._use(s, link, member, context)
            codes = self.backup_codes.issue_first_set(s, user=member, context=context)
            factor = self.factors.get(self.enrollment.kind)
            amr = ("pwd", factor.amr, "mfa") if factor else ("pwd", "mfa")
            session_token = self.sessions.start(s, user=member, context=context, amr=amr)
            self.audit.record(
                s,
                EventTag.SIGN_IN_SUCCEEDED,
                context=context,
                practice_id=member.practice_id,
                actor_id=member.id,
                subject_id=member.id,
                details={"method": self.enrollment.kind, "via": "setup_link"},
            )
        return SetupDone(session_token, codes)

    # -- set up on the admin's screen ----------------------------------------------------

    def start_on_admin_screen(self, *, practice_id: int, admin_id: int, member_id: int, context: RequestContext) -> Any:
        """A new set-up for the member (an app key), to show once as a QR code on the admin's screen."""
        with self.db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            if not member.active:
                raise MemberInactive()
            if self.factors.enabled_for(s, member):
                raise TwoFactorAlreadyEnabled(
                    "This member already has two-factor authentication. Reset it first to set up a new app."
                )
            return self.enrollment.start(
                s, user=member, context=context, actor_id=admin_id, details={"on_admin_screen": True}
            )

    def pending_on_admin_screen(self, *, practice_id: int, member_id: int, enrollment_id: str) -> Any | None:
        """The set-up begun on the admin's screen, again (its QR code, after a wrong code); None once it
        is confirmed, replaced or expired."""
        with self.db.reading() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id)
            return self.enrollment.pending(s, user=member, enrollment_id=enrollment_id)

    def confirm_on_admin_screen(
        self,
        *,
        practice_id: int,
        admin_id: int,
        member_id: int,
        enrollment_id: str,
        code: FactorResponse,
        context: RequestContext,
    ) -> None:
        """The member typed their app's code on the admin's screen: turn 2FA on for them."""
        with self.db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            self._confirm_enrollment(s, member, enrollment_id, code, context, actor_id=admin_id)
            self.audit.record(
                s,
                EventTag.TWO_FACTOR_SET_UP_BY_ADMIN,
                context=context,
                practice_id=practice_id,
                actor_id=admin_id,
                subject_id=member.id,
                details={"method": self.enrollment.kind, "via": "admin_screen"},
            )

    # -- invitations: an address that has an account in another practice ------------------

    def accept_invitation(self, *, token: str, user_id: int, context: RequestContext) -> str:
        """The signed-in owner of the invited address accepts: their account moves to the inviting practice.

        ``user_id`` is the signed-in member; only the claimed account of the invited address may
        accept. The account keeps its password and second factors (they are the person's); its
        sessions end everywhere, and its remembered browsers and app tokens are revoked (they were
        trusted under the old practice). It takes the role the inviting admin chose. The pending
        row and its links are deleted. Refused while the account is its practice's last active
        admin. Both practices' audit logs record the move. Returns the new practice's name.
        """
        with self.db.transaction() as s:
            link, member = self._live(s, token, context)
            owner = self._owner_elsewhere(s, member)
            if owner is None or owner.id != user_id:
                raise InvitationNotForYou()
            old_practice_id, new_practice_id = owner.practice_id, member.practice_id
            # Both practices in id order (two moves at once cannot deadlock), then the account again.
            for practice_id in sorted((old_practice_id, new_practice_id)):
                s.execute(select(Practice.id).where(Practice.id == practice_id).with_for_update())
            owner = s.execute(select(User).where(User.id == owner.id).with_for_update(of=User)).scalar_one()
            if not owner.active or owner.email != member.email or owner.practice_id != old_practice_id:
                raise InvitationNotForYou()
            if owner.role == "admin" and self._other_admins(s, owner) == 0:
                self.audit.record(
                    s,
                    EventTag.MEMBER_MOVE_REFUSED,
                    context=context,
                    practice_id=old_practice_id,
                    actor_id=owner.id,
                    subject_id=owner.id,
                    details={"reason": "last_admin", "to_practice_id": new_practice_id},
                )
                raise Refusal(LastAdminCannotMove())
            ended = self.sessions.end_all_for(s, user_id=owner.id, reason="moved_practice")
            revoked = sum(r.revoke_all_for(s, user_id=owner.id, reason="moved_practice") for r in self.trust_revokers)
            self.audit.record(
                s,
                EventTag.MEMBER_MOVED_OUT,
                context=context,
                practice_id=old_practice_id,
                actor_id=owner.id,
                subject_id=owner.id,
                details={
                    "to_practice_id": new_practice_id,
                    "role": owner.role,
                    "sessions_ended": ended,
                    "trust_revoked": revoked,
                },
            )
            pending_id, role, link_id = member.id, member.role, link.id
            self.audit.record(
                s,
                EventTag.SETUP_LINK_USED,
                context=context,
                practice_id=new_practice_id,
                actor_id=owner.id,
                subject_id=pending_id,
                details={"link_id": link_id},
            )
            # The pending row goes first (its links and any demand with it): the address is unique per practice.
            s.expunge(link)
            s.expunge(member)
            s.execute(delete(SetupLink).where(SetupLink.user_id == pending_id))
            s.execute(delete(User).where(User.id == pending_id))
            from_role = owner.role
            owner.practice_id = new_practice_id
            owner.role = role
            s.flush()
            s.expire(owner, ["practice"])
            self.audit.record(
                s,
                EventTag.MEMBER_MOVED_IN,
                context=context,
                practice_id=new_practice_id,
                actor_id=owner.id,
                subject_id=owner.id,
                details={
                    "from_practice_id": old_practice_id,
                    "role": role,
                    "previous_role": from_role,
                    "invited_as": pending_id,
                    "link_id": link_id,
                },
            )
            return owner.practice.name

    def _owner_elsewhere(self, s: Session, member: User) -> User | None:
        """For a pending member row: the claimed account of the same address in another practice, if any."""
        if member.password_changed_at is not None:
            return None
        return s.execute(
            select(User).where(
                User.email == member.email,
                User.id != member.id,
                User.practice_id != member.practice_id,
                User.password_changed_at.is_not(None),
            )
        ).scalar_one_or_none()

    @staticmethod
    def _other_admins(s: Session, user: User) -> int:
        return s.execute(
            select(func.count())
            .select_from(User)
            .where(
                User.practice_id == user.practice_id,
                User.role == "admin",
                User.active.is_(True),
                User.id != user.id,
            )
        ).scalar_one()

    # -- steps ------------------------------------------------------------------------

    def _link(self, s: Session, token: str, *, lock: bool = False) -> SetupLink | None:
        """The link whose token this is (only its hash is stored), row-locked with ``lock``."""
        if not token or len(token) > 128:
            return None
        query = select(SetupLink).where(SetupLink.token_hash == self.hasher.hash(token))
        return s.execute(query.with_for_update() if lock else query).scalar_one_or_none()

    def _live(self, s: Session, token: str, context: RequestContext) -> tuple[SetupLink, User]:
        """The live link (row-locked) and its member; a refusal is audited in ``s`` and raised as a
        ``Refusal``, so its audit event commits with the caller's transaction."""
        link = self._link(s, token, lock=True)
        if link is None:
            raise Refusal(SetupLinkInvalid("unknown"))
        member = s.get_one(User, link.user_id)
        reason = self._dead_because(link, member)
        if reason:
            self.audit.record(
                s,
                EventTag.SETUP_LINK_REFUSED,
                context=context,
                practice_id=member.practice_id,
                subject_id=member.id,
                details={"reason": reason, "link_id": link.id},
            )
            raise Refusal(SetupLinkInvalid(reason))
        return link, member

    def _dead_because(self, link: SetupLink, member: User) -> str | None:
        """Why the link can no longer be used (a key of ``SetupLinkInvalid.REASONS``), or None while it is live."""
        if link.used_at is not None:
            return "used"
        if link.revoked_at is not None:
            return "revoked"
        if self.clock.now() >= link.expires_at:
            return "expired"
        if not member.active:
            return "inactive"
        return None

    def _next_step(self, s: Session, link: SetupLink, member: User, context: RequestContext) -> SetupStep:
        if self.factors.enabled_for(s, member):
            self._use(s, link, member, context)
            return SetupStep(None, done=True)
        return SetupStep(
            self.enrollment.start(s, user=member, context=context, actor_id=member.id, details={"via": "setup_link"})
        )

    def _use(self, s: Session, link: SetupLink, member: User, context: RequestContext) -> None:
        link.used_at = self.clock.now()
        self.audit.record(
            s,
            EventTag.SETUP_LINK_USED,
            context=context,
            practice_id=member.practice_id,
            actor_id=member.id,
            subject_id=member.id,
            details={"link_id": link.id},
        )

    def _confirm_enrollment(
        self,
        s: Session,
        member: User,
        enrollment_id: str,
        code: FactorResponse,
        context: RequestContext,
        *,
        actor_id: int,
    ) -> None:
        """Finish the member's set-up (throttled, audited and refused by the enrolment) and meet any
        demand to enrol."""
        self.enrollment.confirm(
            s, user=member, enrollment_id=enrollment_id, response=code, context=context, actor_id=actor_id
        )
        self.enforcement.clear_demand(s, user_id=member.id)
        # 2FA is on: a session opened with the password alone (here or anywhere) ends with it.
        self.sessions.end_all_for(s, user_id=member.id, reason="two_factor_enabled")
