"""Access and refresh tokens: random values handed to apps, only their keyed hashes stored.

A refresh token is issued only with ``offline_access`` and is rotated on every use (RFC 9700
§4.14.2). The tokens from one authorisation code form a family: presenting a rotated refresh
token again, or the code again, revokes the whole family, since one of the two presenters is
not the app. Deactivation, an admin's 2FA reset and "sign out everywhere" revoke every token of
the member (``revoke_all_for``, called where those end the member's sessions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from twofold.crypto.secret_box import TokenHasher
from twofold.store.models import OidcToken, User


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token as the endpoints read it (Authlib's ``TokenMixin``)."""

    id: int
    client_pk: int
    client_id: str
    user_id: int
    session_id: int | None
    family: str
    scope: str
    issued_at: datetime
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    revoked: bool
    auth_time: datetime
    amr: tuple[str, ...]
    now: datetime
    kind: str  # "access_token" or "refresh_token": which of the row's two values was presented

    def check_client(self, client) -> bool:
        return client.id == self.client_pk

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    def is_expired(self) -> bool:
        end = self.access_expires_at if self.kind == "access_token" else self.refresh_expires_at
        return end is None or self.now >= end

    def is_revoked(self) -> bool:
        return self.revoked


def _record(row: OidcToken, *, client_id: str, now: datetime, kind: str) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        client_pk=row.client_pk,
        client_id=client_id,
        user_id=row.user_id,
        session_id=row.session_id,
        family=row.family,
        scope=row.scope,
        issued_at=row.issued_at,
        access_expires_at=row.access_expires_at,
        refresh_expires_at=row.refresh_expires_at,
        revoked=row.revoked_at is not None,
        auth_time=row.auth_time,
        amr=tuple(row.amr.split()),
        now=now,
        kind=kind,
    )


@dataclass(kw_only=True, slots=True)
class TokenStore:
    hasher: TokenHasher
    access_lifetime: timedelta
    refresh_lifetime: timedelta

    def save(
        self,
        s: Session,
        *,
        now: datetime,
        client_pk: int,
        user_id: int,
        session_id: int | None,
        family: str,
        code_id: int | None,
        scope: str,
        access_token: str,
        refresh_token: str | None,
        auth_time: datetime,
        amr: tuple[str, ...],
    ) -> None:
        s.add(
            OidcToken(
                client_pk=client_pk,
                user_id=user_id,
                session_id=session_id,
                family=family,
                code_id=code_id,
                scope=scope,
                access_token_hash=self.hasher.hash(access_token),
                refresh_token_hash=None if refresh_token is None else self.hasher.hash(refresh_token),
                issued_at=now,
                access_expires_at=now + self.access_lifetime,
                refresh_expires_at=None if refresh_token is None else now + self.refresh_lifetime,
                refresh_used_at=None,
                revoked_at=None,
                revoked_reason=None,
                auth_time=auth_time,
                amr=" ".join(amr),
            )
        )
        s.flush()

    def find(self, s: Session, *, token: str, now: datetime, hint: str | None = None) -> TokenRecord | None:
        """The token (access or refresh) whose value is ``token``, live or not; None when unknown."""
        if not token or len(token) > 256:
            return None
        token_hash = self.hasher.hash(token)
        kinds = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
        for kind in kinds:
            column = OidcToken.access_token_hash if kind == "access_token" else OidcToken.refresh_token_hash
            row = s.scalars(select(OidcToken).where(column == token_hash)).first()
            if row is not None:
                return _record(row, client_id="", now=now, kind=kind)
        return None

    def live_access(self, s: Session, *, token: str, now: datetime) -> tuple[TokenRecord, User] | None:
        """A live access token and its active member, in one indexed lookup; else None."""
        if not token or len(token) > 256:
            return None
        found = s.execute(
            select(OidcToken, User)
            .join(User, User.id == OidcToken.user_id)
            .where(OidcToken.access_token_hash == self.hasher.hash(token))
        ).first()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or now >= row.access_expires_at or not user.active:
            return None
        return _record(row, client_id="", now=now, kind="access_token"), user

    def claim_refresh(self, s: Session, *, token: str, client_pk: int, now: datetime) -> TokenRecord | str | None:
        """Use up a refresh token of ``client_pk``: its record, or the family of one already used (a replay)."""
        if not token or len(token) > 256:
            return None
        token_hash = self.hasher.hash(token)
        claimed = cast(
            CursorResult[Any],
            s.execute(
                update(OidcToken)
                .where(
                    OidcToken.refresh_token_hash == token_hash,
                    OidcToken.client_pk == client_pk,
                    OidcToken.refresh_used_at.is_(None),
                    OidcToken.revoked_at.is_(None),
                    OidcToken.refresh_expires_at > now,
                )
                .values(refresh_used_at=now)
            ),
        ).rowcount
        row = s.scalars(select(OidcToken).where(OidcToken.refresh_token_hash == token_hash)).first()
        if row is None or row.client_pk != client_pk:
            return None
        if not claimed:
            return row.family if row.refresh_used_at is not None else None
        return _record(row, client_id="", now=now, kind="refresh_token")

    def revoke(self, s: Session, *, token_id: int, now: datetime, reason: str) -> int:
        return self._revoke(s, OidcToken.id == token_id, now=now, reason=reason)

    def revoke_family(self, s: Session, *, family: str, now: datetime, reason: str) -> int:
        return self._revoke(s, OidcToken.family == family, now=now, reason=reason)

    def revoke_for_code(self, s: Session, *, code_id: int, now: datetime, reason: str) -> int:
        families = s.scalars(select(OidcToken.family).where(OidcToken.code_id == code_id)).all()
        return sum(self.revoke_family(s, family=family, now=now, reason=reason) for family in set(families))

    def revoke_for_user(self, s: Session, *, user_id: int, now: datetime, reason: str) -> int:
        return self._revoke(s, OidcToken.user_id == user_id, now=now, reason=reason)

    def _revoke(self, s: Session, condition, *, now: datetime, reason: str) -> int:
        result = s.execute(
            update(OidcToken)
            .where(condition, OidcToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        return cast(CursorResult[Any], result).rowcount
