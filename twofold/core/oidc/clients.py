"""OpenID Connect clients: an app's registration (redirect URIs, public or confidential, roles).

A confidential client's secret is shown once and stored only as a keyed hash; a public client
(a mobile or single-page app) has no secret and must use PKCE. Redirect URIs match exactly
(RFC 9700 §4.1.1: no wildcards, no prefix matching).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.practice.apps import AppService, AppView, app_in
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.errors import Conflict, InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import App, OidcClient

SCOPES = ("openid", "profile", "email", "offline_access", "groups")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URIS = 20


class ClientNotFound(NotFound):
    message = "This app is not an OpenID Connect client."


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


def origin_of(url: str) -> str | None:
    """The origin a browser would send for a page at ``url`` (RFC 6454: lower-case scheme and
    host, the port only when it is not the scheme's default); None for anything else."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def _uris(uris: list[str], *, what: str) -> list[str]:
    if len(uris) > MAX_URIS:
        raise InvalidInput(f"At most {MAX_URIS} {what}s.")
    checked: list[str] = []
    for uri in uris:
        value = check_uri(uri, what=what)
        if value not in checked:
            checked.append(value)
    return checked


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """A client as the protocol machinery sees it (Authlib's ``ClientMixin``)."""

    id: int
    practice_id: int
    app_id: int
    name: str
    client_id: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    backchannel_logout_uri: str | None
    roles: tuple[str, ...]
    enabled: bool
    created_at: datetime
    hasher: TokenHasher

    @classmethod
    def of(cls, row: OidcClient, app: App, hasher: TokenHasher) -> RegisteredClient:
        return cls(
            id=row.id,
            practice_id=app.practice_id,
            app_id=app.id,
            name=app.name,
            client_id=row.client_id,
            secret_hash=row.secret_hash,
            redirect_uris=tuple(row.redirect_uris or ()),
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            backchannel_logout_uri=row.backchannel_logout_uri,
            roles=tuple(app.allowed_roles or ()),
            enabled=app.enabled,
            created_at=row.created_at,
            hasher=hasher,
        )

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    def allows_role(self, role: str) -> bool:
        return role in self.roles

    def describe(self) -> dict[str, Any]:
        """The OpenID Connect fields of an app, as the API and the CLI show them (never the secret)."""
        return {
            "client_id": self.client_id,
            "public": self.public,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "backchannel_logout_uri": self.backchannel_logout_uri,
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


def check_logout_uri(uri: str | None) -> str | None:
    """A back-channel logout URI checked as redirect URIs are (https, exact); None or "" for none."""
    return check_uri(uri, what="back-channel logout URI") if uri and uri.strip() else None


def check_client_fields(
    redirect_uris: list[str], post_logout_redirect_uris: list[str] | None
) -> tuple[list[str], list[str]]:
    """The redirect URIs checked (at least one) and the post-logout ones; InvalidInput otherwise."""
    uris = _uris(redirect_uris, what="redirect URI")
    if not uris:
        raise InvalidInput("Give at least one redirect URI: where the app receives its sign-in.")
    return uris, _uris(post_logout_redirect_uris or [], what="post-logout redirect URI")


@dataclass(kw_only=True, slots=True)
class ClientRegistry:
    db: Database
    clock: Clock
    audit: AuditLog
    hasher: TokenHasher
    apps: AppService

    def add_app(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        context: RequestContext,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        public: bool = False,
        backchannel_logout_uri: str | None = None,
        **app_fields: Any,
    ) -> tuple[AppView, ClientCredentials | None]:
        """Add an app (``AppService.add_app``'s fields) and, with ``redirect_uris``, its OpenID Connect
        client. An app with redirect URIs needs no address of its own (it is not behind the proxy)."""
        if redirect_uris or post_logout_redirect_uris or public or backchannel_logout_uri:
            check_client_fields(redirect_uris, post_logout_redirect_uris)  # refused before anything is written
            check_logout_uri(backchannel_logout_uri)
        view = self.apps.add_app(
            practice_id=practice_id,
            actor_id=actor_id,
            context=context,
            url_required=not redirect_uris,
            **app_fields,
        )
        if not redirect_uris:
            return view, None
        credentials = self.register(
            practice_id=practice_id,
            app_id=view.id,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            public=public,
            backchannel_logout_uri=backchannel_logout_uri,
            context=context,
            actor_id=actor_id,
        )
        return view, credentials

    def register(
        self,
        *,
        practice_id: int,
        app_id: int,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str] | None = None,
        public: bool = False,
        backchannel_logout_uri: str | None = None,
        context: RequestContext,
        actor_id: int | None = None,
    ) -> ClientCredentials:
        """Make an app of the practice an OpenID Connect client; the answer carries the client
        secret, once (confidential clients), and only its keyed hash is kept."""
        uris, logout_uris = check_client_fields(redirect_uris, post_logout_redirect_uris)
        backchannel = check_logout_uri(backchannel_logout_uri)
        secret = None if public else random_token(32)
        with self.db.transaction() as s:
            app = app_in(s, practice_id=practice_id, app_id=app_id, lock=True)
            if s.scalars(select(OidcClient.id).where(OidcClient.app_id == app.id)).first() is not None:
                raise Conflict("This app is already an OpenID Connect client.")
            row = OidcClient(
                app_id=app.id,
                client_id=random_token(18),
                secret_hash=None if secret is None else self.hasher.hash(secret),
                redirect_uris=uris,
                post_logout_redirect_uris=logout_uris,
                backchannel_logout_uri=backchannel,
                created_at=self.clock.now(),
            )
            s.add(row)
            s.flush()
            self.audit.record(
                s,
                EventTag.OIDC_CLIENT_REGISTERED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={
                    "app_id": app.id,
                    "name": app.name,
                    "public": public,
                    "redirect_uris": uris,
                    "post_logout_redirect_uris": logout_uris,
                    "backchannel_logout_uri": backchannel,
                },
            )
            return ClientCredentials(RegisteredClient.of(row, app, self.hasher), secret)

    def rotate_secret(
        self, *, practice_id: int, app_id: int, context: RequestContext, actor_id: int | None = None
    ) -> ClientCredentials:
        """A new client secret for the app (shown once); the old one stops working at once."""
        with self.db.transaction() as s:
            app = app_in(s, practice_id=practice_id, app_id=app_id, lock=True)
            row = s.scalars(select(OidcClient).where(OidcClient.app_id == app.id)).one_or_none()
            if row is None:
                raise ClientNotFound("This app is not an OpenID Connect client.")
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
                details={"app_id": app.id, "name": app.name},
            )
            s.flush()
            return ClientCredentials(RegisteredClient.of(row, app, self.hasher), secret)

    def change_uris(
        self,
        *,
        practice_id: int,
        app_id: int,
        redirect_uris: list[str] | None,
        post_logout_redirect_uris: list[str] | None,
        context: RequestContext,
        actor_id: int | None = None,
        backchannel_logout_uri: str | None = None,
    ) -> RegisteredClient:
        """Replace the app's redirect URIs and/or post-logout redirect URIs (None: keep them), and its
        back-channel logout URI (None: keep it; "": none from now on). Codes
        already issued to a removed redirect URI can no longer be redeemed there (the token request
        must repeat it). Audited with the lists before and after."""
        with self.db.transaction() as s:
            app = app_in(s, practice_id=practice_id, app_id=app_id, lock=True)
            row = s.scalars(select(OidcClient).where(OidcClient.app_id == app.id)).one_or_none()
            if row is None:
                raise ClientNotFound("This app is not an OpenID Connect client.")
            uris, logout_uris = check_client_fields(
                list(row.redirect_uris) if redirect_uris is None else redirect_uris,
                list(row.post_logout_redirect_uris or ())
                if post_logout_redirect_uris is None
                else post_logout_redirect_uris,
            )
            backchannel = (
                row.backchannel_logout_uri
                if backchannel_logout_uri is None
                else check_logout_uri(backchannel_logout_uri)
            )
            before = {
                "redirect_uris": list(row.redirect_uris),
                "post_logout_redirect_uris": list(row.post_logout_redirect_uris or ()),
                "backchannel_logout_uri": row.backchannel_logout_uri,
            }
            after = {
                "redirect_uris": uris,
                "post_logout_redirect_uris": logout_uris,
                "backchannel_logout_uri": backchannel,
            }
            changed = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
            if changed:
                row.redirect_uris, row.post_logout_redirect_uris = uris, logout_uris
                row.backchannel_logout_uri = backchannel
                self.audit.record(
                    s,
                    EventTag.OIDC_CLIENT_CHANGED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=actor_id,
                    details={"app_id": app.id, "name": app.name, "changes": changed},
                )
            s.flush()
            return RegisteredClient.of(row, app, self.hasher)

    def change_app(
        self,
        *,
        practice_id: int,
        app_id: int,
        changes: Mapping[str, Any],
        redirect_uris: list[str] | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        backchannel_logout_uri: str | None = None,
        context: RequestContext,
        actor_id: int | None = None,
    ) -> tuple[AppView, RegisteredClient | None]:
        """Change an app's fields (``AppService.update_app``) and, if it is an OpenID Connect client,
        its redirect URIs (None: kept). The lists are checked before anything is written, so a
        refusal changes nothing; asking to change them on an app that is no client is ClientNotFound."""
        view = self.apps.get_app(practice_id=practice_id, app_id=app_id)  # NotFound before anything else
        client = self.of_apps(practice_id=practice_id).get(view.id)
        new_uris = any(
            value is not None for value in (redirect_uris, post_logout_redirect_uris, backchannel_logout_uri)
        )
        if new_uris:
            if client is None:
                raise ClientNotFound("This app is not an OpenID Connect client: it has no redirect URIs to change.")
            check_logout_uri(backchannel_logout_uri)
            check_client_fields(
                list(client.redirect_uris) if redirect_uris is None else redirect_uris,
                list(client.post_logout_redirect_uris)
                if post_logout_redirect_uris is None
                else post_logout_redirect_uris,
            )
        if changes or not new_uris:
            view = self.apps.update_app(
                practice_id=practice_id, actor_id=actor_id, app_id=app_id, changes=changes, context=context
            )
        if new_uris:
            client = self.change_uris(
                practice_id=practice_id,
                app_id=app_id,
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
                backchannel_logout_uri=backchannel_logout_uri,
                context=context,
                actor_id=actor_id,
            )
        return view, client

    def of_apps(self, *, practice_id: int) -> dict[int, RegisteredClient]:
        """The practice's clients by app id."""
        with self.db.reading() as s:
            rows = s.execute(
                select(OidcClient, App).join(App, App.id == OidcClient.app_id).where(App.practice_id == practice_id)
            ).all()
            return {app.id: RegisteredClient.of(row, app, self.hasher) for row, app in rows}

    def allows_origin(self, origin: str | None) -> bool:
        """True when ``origin`` (a browser's ``Origin`` header) is the origin of a redirect URI of an
        enabled app: a single-page app there may read the answers of the token, userinfo and
        revocation endpoints (CORS). Its requests still carry their own credentials (a code and its
        PKCE verifier, a token); no cookie is ever accepted from another origin."""
        if not origin or len(origin) > 2000:
            return False
        wanted = origin_of(origin)
        if wanted is None or wanted != origin.strip().lower().rstrip("/"):
            return False  # only an exact origin, as browsers send it: no path, no user, no "null"
        with self.db.reading() as s:
            lists = s.scalars(
                select(OidcClient.redirect_uris).join(App, App.id == OidcClient.app_id).where(App.enabled.is_(True))
            ).all()
        return any(origin_of(uri) == wanted for uris in lists for uri in uris or ())

    def find(self, s: Session, client_id: str | None) -> RegisteredClient | None:
        """The client with this ``client_id`` (its app enabled or not), in the caller's transaction."""
        if not client_id or len(client_id) > 64:
            return None
        found = s.execute(
            select(OidcClient, App).join(App, App.id == OidcClient.app_id).where(OidcClient.client_id == client_id)
        ).one_or_none()
        return None if found is None else RegisteredClient.of(found[0], found[1], self.hasher)

    def by_pk(self, s: Session, client_pk: int) -> RegisteredClient | None:
        found = s.execute(
            select(OidcClient, App).join(App, App.id == OidcClient.app_id).where(OidcClient.id == client_pk)
        ).one_or_none()
        return None if found is None else RegisteredClient.of(found[0], found[1], self.hasher)
