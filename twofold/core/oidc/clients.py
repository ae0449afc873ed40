"""OpenID Connect clients: an app's registration (redirect URIs, public or confidential, roles).

A confidential client's secret is shown once and stored only as a keyed hash; a public client
(a mobile or single-page app) has no secret and must use PKCE. Redirect URIs match exactly
(RFC 9700 §4.1.1: no wildcards, no prefix matching).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import ROLES, OidcClient

SCOPES = ("openid", "profile", "email", "offline_access", "groups")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URIS = 20


class ClientNotFound(NotFound):
    message = "There is no such app registration in this practice."


def check_uri(uri: str, *, what: str) -> str:
    """An absolute https URI (http only on this machine), without fragment or wildcard; else InvalidInput."""
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        raise InvalidInput(f"The {what} {uri!r} is not a URL.") from None
    if len(uri) > 2000 or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise InvalidInput(f"The {what} must be a URL without spaces, of at most 2000 characters.")
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"The {what} {uri!r} must be an absolute https:// URL.")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InvalidInput(f"The {what} {uri!r} must use https:// (plain http only for localhost).")
    if parts.fragment or "#" in uri:
        raise InvalidInput(f"The {what} {uri!r} must not have a #fragment.")
    if "*" in uri:
        raise InvalidInput(f"The {what} {uri!r} must be exact: wildcards are not allowed.")
    return uri


def _uris(uris: list[str], *, what: str) -> list[str]:
    if len(uris) > MAX_URIS:
        raise InvalidInput(f"At most {MAX_URIS} {what}s.")
    checked: list[str] = []
    for uri in uris:
        value = check_uri(uri, what=what)
        if value not in checked:
            checked.append(value)
    return checked


def _roles(roles: list[str]) -> list[str]:
    unknown = [role for role in roles if role not in ROLES]
    if unknown:
        raise InvalidInput(f"Unknown role {unknown[0]!r}: use {', '.join(ROLES)}.")
    return [role for role in ROLES if role in roles]


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """A client as the protocol machinery sees it (Authlib's ``ClientMixin``)."""

    id: int
    practice_id: int
    app_id: int | None
    name: str
    client_id: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    roles: tuple[str, ...]
    enabled: bool
    created_at: datetime
    hasher: TokenHasher

    @classmethod
    def of(cls, row: OidcClient, hasher: TokenHasher) -> RegisteredClient:
        return cls(
            id=row.id,
            practice_id=row.practice_id,
            app_id=row.app_id,
            name=row.name,
            client_id=row.client_id,
            secret_hash=row.secret_hash,
            redirect_uris=tuple(row.redirect_uris or ()),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            roles=tuple(row.roles or ()),
            enabled=row.enabled,
            created_at=row.created_at,
            hasher=hasher,
        )

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    def allows_role(self, role: str) -> bool:
        return not self.roles or role in self.roles

    def describe(self) -> dict[str, Any]:
        """What the API and the CLI show (never the secret or its hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "app_id": self.app_id,
            "client_id": self.client_id,
            "public": self.public,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "roles": list(self.roles),
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
        }

    # -- Authlib's ClientMixin ---------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OpenID Connect requires redirect_uri in every request (Core §3.1.2.1): no default.
        return None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None or not client_secret or len(client_secret) > 256:
            return False
        return hmac.compare_digest(self.hasher.hash(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client: RegisteredClient
    client_secret: str | None  # shown once: only when it was just made


@dataclass(kw_only=True, slots=True)
class ClientRegistry:
    db: Database
    clock: Clock
    audit: AuditLog
    hasher: TokenHasher

    def register(
        self,
        *,
        practice_id: int,
        name: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        public: bool = False,
        roles: list[str] | None = None,
        app_id: int | None = None,
        context: RequestContext,
        actor_id: int | None = None,
        session: Session | None = None,
    ) -> ClientCredentials:
        """Register an app as a client; the answer carries the client secret, once (confidential clients)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("The app needs a name of at most 200 characters.")
        uris = _uris(redirect_uris, what="redirect URI")
        if not uris:
            raise InvalidInput("Give at least one redirect URI: where the app receives its sign-in.")
        logout_uris = _uris(post_logout_redirect_uris or [], what="post-logout redirect URI")
        allowed = _roles(roles or [])
        secret = None if public else random_token(32)
        row = OidcClient(
            practice_id=practice_id,
            app_id=app_id,
            name=name,
            client_id=random_token(18),
            secret_hash=None if secret is None else self.hasher.hash(secret),
            redirect_uris=uris,
            post_logout_redirect_uris=logout_uris,
            roles=allowed,
            enabled=True,
            created_at=self.clock.now(),
        )
        with self._transaction(session) as s:
            s.add(row)
            s.flush()
            self.audit.record(
                s,
                EventTag.OIDC_CLIENT_REGISTERED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={
                    "client": row.id,
                    "name": name,
                    "public": public,
                    "redirect_uris": uris,
                    "post_logout_redirect_uris": logout_uris,
                    "roles": allowed,
                },
            )
            return ClientCredentials(RegisteredClient.of(row, self.hasher), secret)

    def rotate_secret(
        self, *, practice_id: int, client_pk: int, context: RequestContext, actor_id: int | None = None
    ) -> ClientCredentials:
        """A new client secret (shown once); the old one stops working at once."""
        with self.db.transaction() as s:
            row = self._row(s, practice_id, client_pk)
            if row.secret_hash is None:
                raise InvalidInput("This app is a public client: it has no secret to rotate (it uses PKCE).")
            secret = random_token(32)
            row.secret_hash = self.hasher.hash(secret)
            self.audit.record(
                s,
                EventTag.OIDC_CLIENT_SECRET_ROTATED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"client": row.id, "name": row.name},
            )
            s.flush()
            return ClientCredentials(RegisteredClient.of(row, self.hasher), secret)

    def set_enabled(
        self, *, practice_id: int, client_pk: int, enabled: bool, context: RequestContext, actor_id: int | None = None
    ) -> RegisteredClient:
        """Disable (no new sign-ins, no token requests) or enable again."""
        with self.db.transaction() as s:
            row = self._row(s, practice_id, client_pk)
            if row.enabled != enabled:
                row.enabled = enabled
                self.audit.record(
                    s,
                    EventTag.OIDC_CLIENT_ENABLED if enabled else EventTag.OIDC_CLIENT_DISABLED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=actor_id,
                    details={"client": row.id, "name": row.name},
                )
            s.flush()
            return RegisteredClient.of(row, self.hasher)

    def remove(self, *, practice_id: int, client_pk: int, context: RequestContext, actor_id: int | None = None) -> None:
        """Remove a client; its codes and tokens go with it (they stop working at once)."""
        with self.db.transaction() as s:
            self.remove_in(s, practice_id=practice_id, client_pk=client_pk, context=context, actor_id=actor_id)

    def remove_in(
        self, s: Session, *, practice_id: int, client_pk: int, context: RequestContext, actor_id: int | None = None
    ) -> None:
        row = self._row(s, practice_id, client_pk)
        self.audit.record(
            s,
            EventTag.OIDC_CLIENT_REMOVED,
            context=context,
            practice_id=practice_id,
            actor_id=actor_id,
            details={"client": row.id, "name": row.name},
        )
        s.delete(row)

    def list_for(self, *, practice_id: int) -> list[RegisteredClient]:
        with self.db.reading() as s:
            rows = s.scalars(
                select(OidcClient).where(OidcClient.practice_id == practice_id).order_by(OidcClient.id)
            ).all()
            return [RegisteredClient.of(row, self.hasher) for row in rows]

    def get(self, *, practice_id: int, client_pk: int) -> RegisteredClient:
        with self.db.reading() as s:
            return RegisteredClient.of(self._row(s, practice_id, client_pk), self.hasher)

    def find(self, s: Session, client_id: str | None) -> RegisteredClient | None:
        """The client with this ``client_id`` (enabled or not), in the caller's transaction."""
        if not client_id or len(client_id) > 64:
            return None
        row = s.scalars(select(OidcClient).where(OidcClient.client_id == client_id)).one_or_none()
        return None if row is None else RegisteredClient.of(row, self.hasher)

    def by_pk(self, s: Session, client_pk: int) -> RegisteredClient | None:
        row = s.get(OidcClient, client_pk)
        return None if row is None else RegisteredClient.of(row, self.hasher)

    def _row(self, s: Session, practice_id: int, client_pk: int) -> OidcClient:
        row = s.get(OidcClient, client_pk)
        if row is None or row.practice_id != practice_id:
            raise ClientNotFound()
        return row

    def _transaction(self, session: Session | None):
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self.db.transaction()
