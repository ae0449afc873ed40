"""Authorisation codes and the authorisation requests that wait for a sign-in.

A code is single use and lives 60 seconds; it is bound to its client, its redirect URI and its
PKCE challenge (RFC 6749 §4.1.2, RFC 7636). Claiming a code is one conditional UPDATE, so two
concurrent token requests with one code cannot both win. Only the code's keyed hash is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.store.models import OidcAuthorizationCode, OidcAuthorizationRequest

CODE_LIFETIME = timedelta(seconds=60)
# How long an app's request waits for the member to sign in (the sign-in flow's own limit).
PENDING_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A claimed code, as the token endpoint reads it (Authlib's ``AuthorizationCodeMixin``)."""

    id: int
    client_pk: int
    user_id: int
    session_id: int | None
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    amr: tuple[str, ...]

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str:
        return acr_for(self.amr)

    def get_amr(self) -> list[str]:
        return list(self.amr)


def acr_for(amr: tuple[str, ...] | list[str]) -> str:
    """The authentication context class: two-factor when the session's proof had a second factor."""
    return ACR_TWO_FACTOR if "mfa" in amr else ACR_PASSWORD


ACR_TWO_FACTOR = "urn:twofold:acr:2fa"
ACR_PASSWORD = "urn:twofold:acr:password"


@dataclass(kw_only=True, slots=True)
class CodeStore:
    hasher: TokenHasher

    def issue(
        self,
        s: Session,
        *,
        now: datetime,
        client_pk: int,
        user_id: int,
        session_id: int | None,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        auth_time: datetime,
        amr: tuple[str, ...],
        code: str,
    ) -> None:
        s.add(
            OidcAuthorizationCode(
                code_hash=self.hasher.hash(code),
                client_pk=client_pk,
                user_id=user_id,
                session_id=session_id,
                redirect_uri=redirect_uri,
                scope=scope,
                nonce=nonce,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                auth_time=auth_time,
                amr=" ".join(amr),
                created_at=now,
                expires_at=now + CODE_LIFETIME,
                used_at=None,
            )
        )
        s.flush()

    def claim(self, s: Session, *, code: str, client_pk: int, now: datetime) -> IssuedCode | int | None:
        """Use up ``code`` for ``client_pk``: the code, or the id of a code used before (a replay), or None."""
        if not code or len(code) > 128:
            return None
        code_hash = self.hasher.hash(code)
        claimed = cast(
            CursorResult[Any],
            s.execute(
                update(OidcAuthorizationCode)
                .where(
                    OidcAuthorizationCode.code_hash == code_hash,
                    OidcAuthorizationCode.client_pk == client_pk,
                    OidcAuthorizationCode.used_at.is_(None),
                    OidcAuthorizationCode.expires_at > now,
                )
                .values(used_at=now)
            ),
        ).rowcount
        row = s.scalars(select(OidcAuthorizationCode).where(OidcAuthorizationCode.code_hash == code_hash)).first()
        if row is None or row.client_pk != client_pk:
            return None
        if not claimed:
            return row.id if row.used_at is not None else None
        return IssuedCode(
            id=row.id,
            client_pk=row.client_pk,
            user_id=row.user_id,
            session_id=row.session_id,
            redirect_uri=row.redirect_uri,
            scope=row.scope,
            nonce=row.nonce,
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            auth_time=row.auth_time,
            amr=tuple(row.amr.split()),
        )

    def nonce_used(self, s: Session, *, client_pk: int, nonce: str) -> bool:
        return (
            s.scalars(
                select(OidcAuthorizationCode.id).where(
                    OidcAuthorizationCode.client_pk == client_pk, OidcAuthorizationCode.nonce == nonce
                )
            ).first()
            is not None
        )

    # -- authorisation requests waiting for a sign-in -------------------------------------------

    def hold(
        self, s: Session, *, client_pk: int, params: dict[str, str], now: datetime, login_after: datetime | None
    ) -> str:
        """Keep an app's request while the member signs in; returns its id for the browser to carry."""
        s.execute(delete(OidcAuthorizationRequest).where(OidcAuthorizationRequest.expires_at <= now))
        request_id = random_token(18)
        s.add(
            OidcAuthorizationRequest(
                id=request_id,
                client_pk=client_pk,
                params=params,
                created_at=now,
                expires_at=now + PENDING_LIFETIME,
                login_after=login_after,
            )
        )
        s.flush()
        return request_id

    def held(self, s: Session, *, request_id: str, now: datetime) -> OidcAuthorizationRequest | None:
        if not request_id or len(request_id) > 32:
            return None
        row = s.get(OidcAuthorizationRequest, request_id)
        if row is None or row.expires_at <= now:
            return None
        return row

    def release(self, s: Session, *, request_id: str) -> None:
        s.execute(delete(OidcAuthorizationRequest).where(OidcAuthorizationRequest.id == request_id))
