"""A practice's members as its admins see them: list, search, add, change, import and export.

Every use case takes the admin's ``practice_id`` and finds members only inside it,
so an admin of one practice can neither see nor change a member of another: a
member id of another practice is simply "not found".

Members added by an admin have no password yet. They get a one-time set-up link
by email (see core/practice/setup_links.py) that asks them to choose a password and then
to set up two-factor authentication. Until then their password hash is that of a
random secret nobody knows (so signing in costs the same argon2 work as for
anyone else, and answers reveal nothing), and ``password_changed_at`` is None,
which is what "has no password yet" means.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Protocol

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.account import check_email, check_name
from twofold.core.csv_stream import csv_line
from twofold.core.notifier import Message
from twofold.core.paging import PAGE_SIZE, Page
from twofold.core.sessions import SessionService
from twofold.crypto.passwords import PasswordHasher
from twofold.crypto.secret_box import random_token
from twofold.errors import Conflict, InvalidInput, NotFound
from twofold.factors.base import AuditFacts, FactorRegistry
from twofold.store.db import Database
from twofold.store.models import ROLES, Practice, User

IMPORT_BATCH = 500
# The operator's CLI only (``tell_invitations``): an admin's import answers the same for every new address.
INVITED_NOTE = (
    "This email has an account in another practice: its owner gets an invitation to move here, not a set-up link."
)
IMPORT_COLUMNS = ("email", "name", "role")
EXPORT_COLUMNS = (
    "email",
    "name",
    "role",
    "active",
    "two_factor",
    "methods",
    "recovery_codes_left",
    "remembered_browsers",
    "last_sign_in_at",
    "added_at",
)

# Counts per member that other features own (backup codes, remembered browsers):
# called with a session and the ids of one page, they answer {user_id: count}.
CountsByMember = Callable[[Session, Sequence[int]], Mapping[int, int]]


def no_recovery_codes(session: Session, user_ids: Sequence[int]) -> Mapping[int, int]:
    """Until backup codes exist every member has none; the wiring replaces this."""
    return {}


def no_remembered_browsers(session: Session, user_ids: Sequence[int]) -> Mapping[int, int]:
    """Until remembered browsers exist every member has none; the wiring replaces this."""
    return {}


class TrustRevoker(Protocol):
    """What ends a member's standing trust besides sessions (remembered browsers, for one).

    Called on deactivation and on an admin reset; the wiring adds each feature's revoker.
    """

    def revoke_all_for(self, session: Session, *, user_id: int, reason: str) -> int:
        """Revoke everything of ``user_id`` in the caller's transaction; return how many were revoked."""


class SignInLocks(Protocol):
    """Clearing a member's sign-in lockout (core/signin.py), as the admin's "unlock" needs it."""

    def clear_lockout(self, s: Session, *, user: User) -> None:
        """Forget the member's failed passwords and codes in the caller's transaction."""


class SetupLinks(Protocol):
    """Issuing a member's set-up link (core/practice/setup_links.py), as adding members needs it."""

    def issue(self, session: Session, *, member: User, created_by_id: int | None, context: RequestContext) -> str:
        """A new link for ``member`` in the caller's transaction; returns its token."""

    def claimed_elsewhere(self, session: Session, *, practice_id: int, emails: list[str]) -> set[str]:
        """Which of ``emails`` have an account (with a password) in another practice: one query, always run."""

    def pending_message(self, *, member: User, token: str, link_base: str, invitation: bool = False) -> Message:
        """The email carrying the link (``invitation``: the address has an account elsewhere), to send once committed."""

    def deliver(self, message: Message) -> None:
        """Send ``message`` (queued; never raises for a delivery problem)."""


# -- errors -----------------------------------------------------------------------


class InvalidEmail(InvalidInput):
    code = "invalid_email"
    message = "Enter a valid email address, such as name@example.org."


class UnknownRole(InvalidInput):
    code = "unknown_role"
    message = f"The role must be one of: {', '.join(ROLES)}."


class InvalidName(InvalidInput):
    code = "invalid_name"
    message = "A member needs a name of 1 to 200 characters, without line breaks, tabs or other control characters."


class DuplicateEmail(Conflict):
    """The address is already a member of this practice (the admin sees their own members anyway).

    An address with an account in another practice is not a duplicate: it is added like a new
    one, and its owner is invited (see core/practice/setup_links.py)."""

    code = "duplicate_email"
    message = "A member of your practice already has this email."


class LastAdmin(Conflict):
    code = "last_admin"
    message = "This is the practice's last active admin. Make another member an admin first."


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = "There is no such member in your practice."


def checked_fields(email: str | None, name: str | None, role: str | None) -> tuple[str, str, str]:
    """A new member's email, name and role, normalised; each problem has its own error."""
    try:
        email = check_email(email or "")
    except InvalidInput:
        raise InvalidEmail() from None
    try:
        name = check_name(name or "")
    except InvalidInput:
        raise InvalidName() from None
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise UnknownRole()
    return email, name, role


def member_in(session: Session, *, practice_id: int, member_id: int, lock: bool = False) -> User:
    """The member ``member_id`` of ``practice_id``, or ``MemberNotFound`` (also for other practices' members)."""
    query = select(User).where(User.id == member_id, User.practice_id == practice_id)
    member = session.execute(query.with_for_update(of=User) if lock else query).scalar_one_or_none()
    if member is None:
        raise MemberNotFound()
    return member


# -- views ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberView:
    id: int
    email: str
    name: str
    role: str
    active: bool
    methods: list[str]
    recovery_codes_left: int
    remembered_browsers: int
    last_sign_in_at: datetime | None
    created_at: datetime
    has_password: bool

    @property
    def two_factor_enabled(self) -> bool:
        return bool(self.methods)


@dataclass(frozen=True, slots=True)
class MemberFilter:
    q: str | None = None
    without_two_factor: bool = False
    role: str | None = None
    roles: tuple[str, ...] | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class RowResult:
    """One CSV row's outcome: ``status`` is "imported" or "failed" (with ``error`` and ``message``)."""

    row: int
    email: str
    status: str
    error: str | None = None
    message: str | None = None


@dataclass
class ImportSummary:
    imported: int = 0
    failed: int = 0


def _like_term(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(kw_only=True, slots=True)
class MemberService:
    db: Database
    clock: Clock
    passwords: PasswordHasher
    audit: AuditLog
    factors: FactorRegistry
    sessions: SessionService
    setup: SetupLinks
    trust_revokers: list[TrustRevoker]
    sign_in_locks: SignInLocks
    recovery_codes_left: CountsByMember = no_recovery_codes
    remembered_browsers: CountsByMember = no_remembered_browsers
    _invited_hash: str | None = field(default=None, init=False, repr=False)

    # -- reading ---------------------------------------------------------------

    def list_members(
        self, *, practice_id: int, filter: MemberFilter = MemberFilter(), page: int = 1
    ) -> Page[MemberView]:
        page = max(1, page)
        query = self._filtered(practice_id, filter)
        with self.db.reading() as s:
            total = s.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            users = (
                s.execute(
                    query.order_by(func.lower(User.name), User.id).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
                )
                .scalars()
                .all()
            )
            items = self._views(s, users)
        return Page(items, total, page)

    def get_member(self, *, practice_id: int, member_id: int) -> MemberView:
        with self.db.reading() as s:
            return self._views(s, [member_in(s, practice_id=practice_id, member_id=member_id)])[0]

    def admins_without_two_factor(self, *, practice_id: int) -> int:
        with self.db.reading() as s:
            query = self._filtered(practice_id, MemberFilter(role="admin", without_two_factor=True, active=True))
            return s.execute(select(func.count()).select_from(query.subquery())).scalar_one()

    def _filtered(self, practice_id: int, f: MemberFilter) -> Select:
        query = select(User).where(User.practice_id == practice_id)
        if f.q and f.q.strip():
            term = _like_term(f.q.strip())
            query = query.where(
                or_(func.lower(User.name).like(term, escape="\\"), func.lower(User.email).like(term, escape="\\"))
            )
        if f.without_two_factor:
            query = query.where(User.id.not_in(self.factors.enabled_user_ids()))
        if f.role:
            query = query.where(User.role == f.role)
        if f.roles is not None:
            query = query.where(User.role.in_(f.roles))
        if f.active is not None:
            query = query.where(User.active.is_(f.active))
        return query

    def _views(self, session: Session, users: Sequence[User]) -> list[MemberView]:
        ids = [user.id for user in users]
        methods = self.factors.methods_for(session, ids)
        codes = self.recovery_codes_left(session, ids) if ids else {}
        browsers = self.remembered_browsers(session, ids) if ids else {}
        return [
            MemberView(
                id=user.id,
                email=user.email,
                name=user.name,
                role=user.role,
                active=user.active,
                methods=methods.get(user.id, []),
                recovery_codes_left=int(codes.get(user.id, 0)),
                remembered_browsers=int(browsers.get(user.id, 0)),
                last_sign_in_at=user.last_sign_in_at,
                created_at=user.created_at,
                has_password=user.password_changed_at is not None,
            )
            for user in users
        ]

    # -- adding ----------------------------------------------------------------

    def invited_password_hash(self) -> str:
        """The hash of a random secret, thrown away: nobody can sign in with it (see the module docstring)."""
        if self._invited_hash is None:
            self._invited_hash = self.passwords.hash(random_token(32))
        return self._invited_hash

    def add_member(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        email: str,
        name: str,
        role: str,
        context: RequestContext,
        link_base: str,
    ) -> MemberView:
        """Add a member without a password and email them a set-up link (valid 72 hours).

        An address that has an account in another practice is added the same way and gets the
        same answer; its email is an invitation its owner may accept instead (core/practice/setup_links.py).
        Only an address already in this practice is refused (``DuplicateEmail``).
        """
        email, name, role = checked_fields(email, name, role)
        password_hash = self.invited_password_hash()
        try:
            with self.db.transaction() as s:
                practice = s.get(Practice, practice_id)
                if practice is None:
                    raise NotFound("No such practice.")
                if s.execute(select(User.id).where(User.email == email, User.practice_id == practice_id)).first():
                    raise DuplicateEmail()
                # Asked for every address, so a new one and one with an account elsewhere cost the same.
                invitation = email in self.setup.claimed_elsewhere(s, practice_id=practice_id, emails=[email])
                user = self._new_member(s, practice, email, name, role, password_hash, actor_id, context, via="admin")
                token = self.setup.issue(s, member=user, created_by_id=actor_id, context=context)
                link = self.setup.pending_message(member=user, token=token, link_base=link_base, invitation=invitation)
                view = self._views(s, [user])[0]
        except IntegrityError:
            raise DuplicateEmail() from None
        self.setup.deliver(link)
        return view

    def _new_member(
        self,
        s: Session,
        practice: Practice,
        email: str,
        name: str,
        role: str,
        password_hash: str,
        actor_id: int | None,
        context: RequestContext,
        via: str,
    ) -> User:
        user = _member_row(
            practice, email=email, name=name, role=role, password_hash=password_hash, now=self.clock.now()
        )
        s.add(user)
        s.flush()
        self.audit.record(
            s,
            EventTag.MEMBER_ADDED,
            context=context,
            practice_id=practice.id,
            actor_id=actor_id,
            subject_id=user.id,
            details={"role": role, "via": via},
        )
        return user

    # -- changing --------------------------------------------------------------

    def update_member(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        member_id: int,
        context: RequestContext,
        role: str | None = None,
        active: bool | None = None,
    ) -> MemberView:
        """Change a member's role and/or deactivate or reactivate them.

        Deactivation ends the member's sessions and remembered browsers at once. The
        practice's last active admin can be neither demoted nor deactivated; the
        practice row is locked first, so two admins demoting each other at the same
        moment cannot both succeed.
        """
        if role is None and active is None:
            raise InvalidInput("Give a new role or active state.")
        if role is not None and role not in ROLES:
            raise UnknownRole()
        with self.db.transaction() as s:
            s.execute(select(Practice.id).where(Practice.id == practice_id).with_for_update())
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            stays_admin = (role or member.role) == "admin" and (member.active if active is None else active)
            if member.role == "admin" and member.active and not stays_admin:
                others = s.execute(
                    select(func.count())
                    .select_from(User)
                    .where(
                        User.practice_id == practice_id,
                        User.role == "admin",
                        User.active.is_(True),
                        User.id != member.id,
                    )
                ).scalar_one()
                if others == 0:
                    raise LastAdmin()
            audit: AuditFacts = {
                "context": context,
                "practice_id": practice_id,
                "actor_id": actor_id,
                "subject_id": member.id,
            }
            if role is not None and role != member.role:
                # A session proves who the member is, not what they may do: a new role starts from a new
                # sign-in (OWASP Session Management: renew the session on a privilege change).
                ended = self.sessions.end_all_for(s, user_id=member.id, reason="role_changed")
                self.audit.record(
                    s,
                    EventTag.MEMBER_ROLE_CHANGED,
                    **audit,
                    details={"from": member.role, "to": role, "sessions_ended": ended},
                )
                member.role = role
            if active is False and member.active:
                member.active = False
                ended = self.sessions.end_all_for(s, user_id=member.id, reason="deactivated")
                revoked = sum(r.revoke_all_for(s, user_id=member.id, reason="deactivated") for r in self.trust_revokers)
                self.audit.record(
                    s, EventTag.MEMBER_DEACTIVATED, **audit, details={"sessions_ended": ended, "trust_revoked": revoked}
                )
            elif active is True and not member.active:
                member.active = True
                self.audit.record(s, EventTag.MEMBER_REACTIVATED, **audit)
            s.flush()
            return self._views(s, [member])[0]

    def unlock_member(self, *, practice_id: int, actor_id: int | None, member_id: int, context: RequestContext) -> None:
        """Let a locked-out member sign in again at once: forget their failed passwords (from every client)
        and codes. Audited as ``practice:member:unlocked``."""
        with self.db.transaction() as s:
            member = member_in(s, practice_id=practice_id, member_id=member_id, lock=True)
            self.sign_in_locks.clear_lockout(s, user=member)
            self.audit.record(
                s,
                EventTag.MEMBER_UNLOCKED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                subject_id=member.id,
            )

    # -- CSV ---------------------------------------------------------------------

    def import_csv(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        lines: Iterable[str],
        context: RequestContext,
        send_setup_links: bool,
        link_base: str | None,
        tell_invitations: bool = False,
    ) -> Iterator[RowResult]:
        """Import members from CSV text (columns email, name, role; any order; more are ignored).

        A row whose address has an account in another practice is imported like any other (its
        owner gets an invitation instead of a set-up link). Only the operator's CLI passes
        ``tell_invitations``, which says so in that row's message; a practice admin's answer is
        the same for both.

        Streams: rows are read, checked and written ``IMPORT_BATCH`` at a time, so
        memory does not grow with the file. Each row is imported whole or not at
        all; a bad row (bad address, unknown role, a duplicate email, in the file or
        already a member of this practice) is reported and the others are imported. Yields one
        result per row, in file order; the header's problems raise ``InvalidInput``
        before anything is written.
        """
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidInput("The file is empty. The first line must name the columns: email,name,role.") from None
        except csv.Error as exc:
            raise InvalidInput(f"The file is not valid CSV ({exc}).") from None
        columns = [name.strip().lower() for name in header]
        missing = [name for name in IMPORT_COLUMNS if name not in columns]
        if missing:
            raise InvalidInput(
                f"The first line must name the columns email, name and role (missing: {', '.join(missing)})."
            )
        where = {name: columns.index(name) for name in IMPORT_COLUMNS}
        with self.db.reading() as s:
            if s.get(Practice, practice_id) is None:
                raise NotFound("No such practice.")
        if send_setup_links and not link_base:
            raise InvalidInput("Set TWOFOLD_PUBLIC_ORIGIN so set-up links can be sent.")
        password_hash = self.invited_password_hash()
        summary = ImportSummary()

        def records() -> Iterator[tuple[int, list[str] | None, str | None]]:
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield reader.line_num, None, str(exc)
                    continue
                if any(cell.strip() for cell in record):
                    yield reader.line_num, record, None

        rows = records()
        while batch := list(islice(rows, IMPORT_BATCH)):
            for result in self._import_batch(
                practice_id,
                actor_id,
                batch,
                where,
                password_hash,
                context,
                send_setup_links,
                link_base,
                tell_invitations,
            ):
                if result.status == "imported":
                    summary.imported += 1
                else:
                    summary.failed += 1
                yield result
        with self.db.transaction() as s:
            self.audit.record(
                s,
                EventTag.MEMBERS_IMPORTED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"imported": summary.imported, "failed": summary.failed},
            )

    def _import_batch(
        self,
        practice_id: int,
        actor_id: int | None,
        batch: list,
        where: dict[str, int],
        password_hash: str,
        context: RequestContext,
        send_setup_links: bool,
        link_base: str | None,
        tell_invitations: bool = False,
    ) -> list[RowResult]:
        results: dict[int, RowResult] = {}
        candidates: list[tuple[int, str, str, str]] = []
        seen: set[str] = set()
        for line, record, problem in batch:
            if record is None:
                results[line] = RowResult(line, "", "failed", "invalid_row", f"The line is not valid CSV ({problem}).")
                continue
            email, name, role = (record[where[c]] if where[c] < len(record) else "" for c in IMPORT_COLUMNS)
            try:
                email, name, role = checked_fields(email, name, role)
            except InvalidInput as exc:
                results[line] = RowResult(line, email.strip(), "failed", exc.code, exc.message)
                continue
            if email in seen:
                results[line] = RowResult(
                    line, email, "failed", DuplicateEmail.code, "This email appears earlier in the file."
                )
                continue
            seen.add(email)
            candidates.append((line, email, name, role))
        with self.db.reading() as s:
            emails = [c[1] for c in candidates]
            taken = set(
                s.execute(select(User.email).where(User.email.in_(emails), User.practice_id == practice_id)).scalars()
            )
            # Asked for every batch, whatever it holds: a row's answer and cost do not depend on it.
            elsewhere = self.setup.claimed_elsewhere(s, practice_id=practice_id, emails=emails)

        def imported(line: int, email: str) -> RowResult:
            if tell_invitations and email in elsewhere:
                return RowResult(line, email, "imported", message=INVITED_NOTE)
            return RowResult(line, email, "imported")

        fresh = []
        for candidate in candidates:
            if candidate[1] in taken:
                results[candidate[0]] = RowResult(
                    candidate[0], candidate[1], "failed", DuplicateEmail.code, DuplicateEmail.message
                )
            else:
                fresh.append(candidate)
        messages = []
        try:
            messages = self._write_members(
                practice_id, actor_id, fresh, password_hash, context, send_setup_links, link_base, elsewhere
            )
            for line, email, _name, _role in fresh:
                results[line] = imported(line, email)
        except IntegrityError:
            # Someone registered one of these emails since we looked: write row by row,
            # so each row still succeeds or fails on its own.
            for candidate in fresh:
                try:
                    messages += self._write_members(
                        practice_id,
                        actor_id,
                        [candidate],
                        password_hash,
                        context,
                        send_setup_links,
                        link_base,
                        elsewhere,
                    )
                    results[candidate[0]] = imported(candidate[0], candidate[1])
                except IntegrityError:
                    results[candidate[0]] = RowResult(
                        candidate[0], candidate[1], "failed", DuplicateEmail.code, DuplicateEmail.message
                    )
        for message in messages:
            self.setup.deliver(message)
        return [results[line] for line in sorted(results)]

    def _write_members(
        self,
        practice_id: int,
        actor_id: int | None,
        rows: list[tuple[int, str, str, str]],
        password_hash: str,
        context: RequestContext,
        send_setup_links: bool,
        link_base: str | None,
        elsewhere: set[str],
    ) -> list:
        """Insert ``rows`` and their audit events in one transaction (one statement each, not one per row).

        ``elsewhere``: the addresses with an account in another practice, whose email is an invitation."""
        if not rows:
            return []
        messages = []
        with self.db.transaction() as s:
            practice = s.get_one(Practice, practice_id)
            now = self.clock.now()
            users = [
                _member_row(practice, email=email, name=name, role=role, password_hash=password_hash, now=now)
                for _line, email, name, role in rows
            ]
            s.add_all(users)
            s.flush()
            self.audit.record_many(
                s,
                [(EventTag.MEMBER_ADDED, user.id, {"role": user.role, "via": "csv"}) for user in users],
                context=context,
                practice_id=practice.id,
                actor_id=actor_id,
            )
            if send_setup_links:
                if link_base is None:  # import_csv refuses set-up links without a base first
                    raise InvalidInput("Set TWOFOLD_PUBLIC_ORIGIN so set-up links can be sent.")
                for user in users:
                    token = self.setup.issue(s, member=user, created_by_id=actor_id, context=context)
                    messages.append(
                        self.setup.pending_message(
                            member=user, token=token, link_base=link_base, invitation=user.email in elsewhere
                        )
                    )
        return messages

    def export_csv(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        context: RequestContext,
        filter: MemberFilter = MemberFilter(),
    ) -> Iterator[str]:
        """The members as CSV lines (header first), read in chunks so memory stays flat.

        The export itself is audited before the first line is produced.
        """
        with self.db.transaction() as s:
            if s.get(Practice, practice_id) is None:
                raise NotFound("No such practice.")
            self.audit.record(
                s,
                EventTag.MEMBERS_EXPORTED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
            )
        query = self._filtered(practice_id, filter).order_by(User.id)
        return self._export_lines(query)

    def count(self, *, practice_id: int, filter: MemberFilter = MemberFilter()) -> int:
        with self.db.reading() as s:
            return s.execute(
                select(func.count()).select_from(self._filtered(practice_id, filter).subquery())
            ).scalar_one()

    def _export_lines(self, query: Select) -> Iterator[str]:
        yield csv_line(EXPORT_COLUMNS)
        with self.db.reading() as s:
            result = s.execute(query.execution_options(yield_per=IMPORT_BATCH))
            for chunk in result.scalars().partitions():
                for view in self._views(s, chunk):
                    yield csv_line(
                        [
                            view.email,
                            view.name,
                            view.role,
                            "yes" if view.active else "no",
                            "on" if view.two_factor_enabled else "off",
                            " ".join(view.methods),
                            view.recovery_codes_left,
                            view.remembered_browsers,
                            view.last_sign_in_at.isoformat() if view.last_sign_in_at else "",
                            view.created_at.isoformat(),
                        ]
                    )


def _member_row(practice: Practice, *, email: str, name: str, role: str, password_hash: str, now: datetime) -> User:
    """A new active member added by an admin: no password chosen yet (the set-up link asks for one)."""
    return User(
        practice_id=practice.id,
        practice=practice,
        email=email,
        name=name,
        role=role,
        password_hash=password_hash,
        active=True,
        created_at=now,
        password_changed_at=None,
    )
