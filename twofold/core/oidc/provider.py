"""Twofold as an OpenID Connect provider: the authorisation code flow and its endpoints.

The protocol machinery is Authlib's (``AuthorizationServer``, its authorisation code and refresh
token grants, PKCE, RFC 9207's ``iss``, RFC 7009 revocation, RFC 7662 introspection) and ID tokens
are signed with joserfc; this module supplies what Authlib leaves to the application: the storage
(codes, tokens, clients: core/oidc/), the member (from the Twofold session), the claims, and the
rules of a practice (an app is for its own practice's members, and for the roles it allows).

Authlib calls back into this module while it handles a request; those calls read the request's
database transaction, issuer and time from ``_CALL``, set for exactly the duration of the request.
Nothing here knows HTTP: the web layer hands in a ``ProtocolRequest`` and gets back a
``ProtocolResponse`` or an ``AuthorizeOutcome``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    AuthorizationServer,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749 import grants as oauth2_grants
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core.errors import LoginRequiredError
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.oidc.clients import SCOPES, ClientRegistry, RegisteredClient
from twofold.core.oidc.codes import ACR_PASSWORD, ACR_TWO_FACTOR, CodeStore, IssuedCode, acr_for
from twofold.core.oidc.keys import ALGORITHM, SigningKeys
from twofold.core.oidc.tokens import TokenRecord, TokenStore
from twofold.core.sessions import ActiveSession
from twofold.crypto.secret_box import TokenHasher, random_token
from twofold.store.db import Database
from twofold.store.models import OidcSubject, User

CLAIMS = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "amr",
    "acr",
    "at_hash",
    "email",
    "email_verified",
    "name",
    "groups",
    "practice",
)
ACR_VALUES = (ACR_PASSWORD, ACR_TWO_FACTOR)
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
# Parameters an app's authorisation request may carry; anything else is not kept while the member signs in.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "ui_locales",
    "response_mode",
)


# -- what crosses the boundary to the web layer ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolRequest:
    """One HTTP request to a protocol endpoint, as the core needs it."""

    method: str
    path: str
    issuer: str  # the public origin: every URL Authlib sees is built on it
    headers: Mapping[str, str]
    params: Mapping[str, list[str]]  # query and form parameters, each with every value given
    context: RequestContext = field(default_factory=RequestContext)

    def first(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class ProtocolResponse:
    status: int
    body: Any  # a dict (JSON) or a string
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None

    @location.setter
    def location(self, value: str) -> None:  # RFC 9207's extension rewrites it to add ``iss``
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]


@dataclass(frozen=True, slots=True)
class ToApp:
    """Send the browser back to the app: with a code, or with an error the app understands."""

    location: str


@dataclass(frozen=True, slots=True)
class SignInFirst:
    """The member must sign in (again, when ``again``); then continue with the held request ``request_id``."""

    request_id: str
    again: bool


@dataclass(frozen=True, slots=True)
class NotForYou:
    """The member may not use this app: Twofold says why, and offers the way back (``access_denied``)."""

    app_name: str
    reason: str
    back_to_app: str


@dataclass(frozen=True, slots=True)
class BadRequest:
    """The request names no valid client or redirect URI: an error page, never a redirect (RFC 6749 §4.1.2.1)."""

    message: str


AuthorizeOutcome = ToApp | SignInFirst | NotForYou | BadRequest


@dataclass(frozen=True, slots=True)
class LogoutOutcome:
    """Where RP-initiated logout goes: ``redirect_to`` (a registered post-logout URI) or Twofold's page;
    ``confirm`` when the request did not prove it came from the member's app (no valid id_token_hint)."""

    redirect_to: str | None
    confirm: bool
    app_name: str | None


class LogoutRefused(Exception):
    """The logout request names a post-logout URI that is not registered, or an unknown app."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidToken(Exception):
    """An access token that is unknown, expired or revoked (RFC 6750 §3.1 ``invalid_token``)."""


# -- the member, as Authlib carries it ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grantee:
    user: User
    session_id: int | None
    auth_time: datetime
    amr: tuple[str, ...]


@dataclass(slots=True)
class _Call:
    s: Session
    issuer: str
    now: datetime
    context: RequestContext
    signer: tuple[str, Any] | None = None
    code: IssuedCode | None = None
    refreshed: TokenRecord | None = None


_CALL: ContextVar[_Call] = ContextVar("twofold_oidc_call")


def _call() -> _Call:
    return _CALL.get()


# -- Authlib's server, grants and endpoints, on Twofold's storage ---------------------------------


class _Request(OAuth2Request):
    def __init__(self, request: ProtocolRequest) -> None:
        headers = {name.title(): value for name, value in request.headers.items()}  # "Authorization", as Authlib reads
        super().__init__(request.method, request.issuer + request.path, headers=headers)
        single = {name: values[0] for name, values in request.params.items() if values}
        self.payload = BasicOAuth2Payload(single)
        self.payload._datalist = {name: list(values) for name, values in request.params.items()}
        self._single = single

    @property
    def args(self) -> dict[str, str]:
        return self._single

    @property
    def form(self) -> dict[str, str]:
        return self._single


class _Server(AuthorizationServer):
    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.provider = provider

    def query_client(self, client_id):
        client = self.provider.clients.find(_call().s, client_id)
        return client if client is not None and client.enabled else None

    def save_token(self, token, request):
        self.provider._save_token(token, request)

    def create_oauth2_request(self, request):
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request):
        return _Request(request)

    def handle_response(self, status, body, headers):
        return ProtocolResponse(status, body, list(headers))

    def send_signal(self, name, *args, **kwargs):
        pass


class _AuthorizationCodeGrant(oauth2_grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_AUTH_METHODS)

    def save_authorization_code(self, code, request):
        provider: OidcProvider = self.server.provider
        grantee: Grantee = request.user
        call = _call()
        provider.subject(call.s, grantee.user.id)  # made now, in a writing transaction, for userinfo to read
        provider.codes.issue(
            call.s,
            now=call.now,
            client_pk=request.client.id,
            user_id=grantee.user.id,
            session_id=grantee.session_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "",
            nonce=request.payload.data.get("nonce"),
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
            auth_time=grantee.auth_time,
            amr=grantee.amr,
            code=code,
        )

    def query_authorization_code(self, code, client):
        provider: OidcProvider = self.server.provider
        call = _call()
        found = provider.codes.claim(call.s, code=code, client_pk=client.id, now=call.now)
        if isinstance(found, int):
            # RFC 6749 §4.1.2: a code used twice is refused, and what it issued is revoked.
            revoked = provider.tokens.revoke_for_code(call.s, code_id=found, now=call.now, reason="code_replayed")
            provider._audit_replay(client, what="authorization_code", revoked=revoked)
            return None
        call.code = found
        return found

    def delete_authorization_code(self, authorization_code):
        pass  # claimed (used_at set) in query_authorization_code, in the same transaction

    def authenticate_user(self, authorization_code):
        user = _call().s.get(User, authorization_code.user_id)
        if user is None or not user.active:
            return None
        return Grantee(user, authorization_code.session_id, authorization_code.auth_time, authorization_code.amr)


class _RefreshTokenGrant(oauth2_grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotated on every use

    def authenticate_refresh_token(self, refresh_token):
        provider: OidcProvider = self.server.provider
        call = _call()
        client = self.request.client
        found = provider.tokens.claim_refresh(call.s, token=refresh_token, client_pk=client.id, now=call.now)
        if isinstance(found, str):
            # A rotated refresh token came back: the app or a thief holds a copy. End the whole family.
            revoked = provider.tokens.revoke_family(call.s, family=found, now=call.now, reason="refresh_replayed")
            provider._audit_replay(client, what="refresh_token", revoked=revoked)
            return None
        call.refreshed = found
        return found

    def authenticate_user(self, refresh_token):
        user = _call().s.get(User, refresh_token.user_id)
        if user is None or not user.active:
            return None
        return Grantee(user, refresh_token.session_id, refresh_token.auth_time, refresh_token.amr)

    def revoke_old_credential(self, refresh_token):
        pass  # marked used when claimed; its access token runs out on its own (minutes)


class _Pkce(CodeChallenge):
    """PKCE with S256 only (RFC 9700 §2.1.1: ``plain`` is refused), required of public clients."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must use PKCE: send code_challenge with S256.")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.code_challenge_method


class _OpenIDCode(OpenIDCode):
    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce, request):
        return self.provider.codes.nonce_used(_call().s, client_pk=request.client.id, nonce=nonce)

    def _signer(self):
        call = _call()
        if call.signer is None:
            call.signer = self.provider.keys.signer(call.s)
        return call.signer

    def resolve_client_private_key(self, client):
        return self._signer()[1]

    def get_client_algorithm(self, client):
        return ALGORITHM  # never "none": every ID token is signed

    def get_encode_header(self, client):
        return {"alg": ALGORITHM, "kid": self._signer()[0], "typ": "JWT"}

    def get_client_claims(self, client):
        call = _call()
        now = int(call.now.timestamp())
        return {
            "iss": call.issuer,
            "aud": [client.client_id],
            "iat": now,
            "exp": now + int(self.provider.id_token_lifetime.total_seconds()),
        }

    def get_authorization_code_claims(self, authorization_code):
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.session_id is not None:
            claims["sid"] = self.provider.sid(authorization_code.session_id)
        return claims

    def generate_user_info(self, user, scope):
        return self.provider.claims(_call().s, user.user, scope)


class _Issuer(IssuerParameter):
    def get_issuer(self):
        return _call().issuer


class _Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        call = _call()
        return self.server.provider.tokens.find(call.s, token=token_string, now=call.now, hint=token_type_hint)

    def check_permission(self, token, client, request):
        return token.client_pk == client.id  # an app sees only its own tokens

    def introspect_token(self, token):
        provider: OidcProvider = self.server.provider
        call = _call()
        user = call.s.get(User, token.user_id)
        if user is None or not user.active:
            return {"active": False}
        end = token.access_expires_at if token.kind == "access_token" else token.refresh_expires_at
        return {
            "active": True,
            "client_id": provider.client_id_of(call.s, token.client_pk),
            "scope": token.scope,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "sub": provider.subject(call.s, token.user_id),
            "iss": call.issuer,
            "iat": int(token.issued_at.timestamp()),
            "exp": int(end.timestamp()) if end else None,
        }


class _Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = list(TOKEN_AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        call = _call()
        return self.server.provider.tokens.find(call.s, token=token_string, now=call.now, hint=token_type_hint)

    def revoke_token(self, token, request):
        provider: OidcProvider = self.server.provider
        call = _call()
        if token.kind == "refresh_token":
            # RFC 7009 §2.1: revoking a refresh token also ends the access tokens of the same grant.
            provider.tokens.revoke_family(call.s, family=token.family, now=call.now, reason="revoked_by_app")
        else:
            provider.tokens.revoke(call.s, token_id=token.id, now=call.now, reason="revoked_by_app")


# -- the provider's use cases ------------------------------------------------------------------------


@dataclass(kw_only=True)
class OidcProvider:
    db: Database
    clock: Clock
    audit: AuditLog
    clients: ClientRegistry
    codes: CodeStore
    tokens: TokenStore
    keys: SigningKeys
    sid_hasher: TokenHasher
    id_token_lifetime: timedelta
    server: _Server = field(init=False, repr=False)

    def __post_init__(self) -> None:
        server = _Server(self)
        server.register_grant(_AuthorizationCodeGrant, [_OpenIDCode(self), _Pkce(required=True)])
        server.register_grant(_RefreshTokenGrant)
        server.register_endpoint(_Introspection)
        server.register_endpoint(_Revocation)
        server.register_extension(_Issuer())
        server.register_token_generator("default", self._generate_token)
        self.server = server

    # -- the authorisation endpoint --------------------------------------------------------------

    def authorize(self, request: ProtocolRequest, *, active: ActiveSession | None) -> AuthorizeOutcome:
        """Answer an app's authorisation request for the member of ``active`` (None: not signed in)."""
        return self._authorize(request, active=active, login_after=None)

    def resume(self, request_id: str, *, issuer: str, active: ActiveSession | None, context: RequestContext):
        """Continue a held authorisation request once the member has signed in."""
        now = self.clock.now()
        with self.db.transaction() as s:
            held = self.codes.held(s, request_id=request_id, now=now)
            if held is None:
                return BadRequest("This sign-in request has expired. Go back to the app and sign in again.")
            params = {name: [str(value)] for name, value in held.params.items()}
            login_after = held.login_after
            self.codes.release(s, request_id=request_id)
        request = ProtocolRequest("GET", "/authorize", issuer, {}, params, context)
        return self._authorize(request, active=active, login_after=login_after)

    def _authorize(
        self, request: ProtocolRequest, *, active: ActiveSession | None, login_after: datetime | None
    ) -> AuthorizeOutcome:
        now = self.clock.now()
        with self.db.transaction() as s, self._calling(s, request.issuer, now, request.context):
            try:
                grant = self.server.get_consent_grant(request, end_user=active)
            except OAuth2Error as error:
                return self._error(error, request.issuer)
            client: RegisteredClient = grant.request.client
            prompts = (request.first("prompt") or "").split()
            try:
                max_age = _max_age(request.first("max_age"))
            except OAuth2Error as error:
                error.redirect_uri, error.state = grant.redirect_uri, request.first("state")
                return self._error(error, request.issuer)
            fresh_after = login_after
            if "login" in prompts and fresh_after is None:
                fresh_after = now  # prompt=login: only a sign-in from now on will do
            if max_age is not None and active is not None and now - active.authenticated_at > max_age:
                fresh_after = max(fresh_after or now, now)
            stale = active is not None and fresh_after is not None and active.authenticated_at < fresh_after
            if active is None or stale:
                if "none" in prompts:
                    login = LoginRequiredError(redirect_uri=grant.redirect_uri, state=request.first("state"))
                    return self._error(login, request.issuer)
                params = {name: request.first(name) for name in AUTHORIZE_PARAMS if request.first(name) is not None}
                if "prompt" in params:  # the fresh sign-in it asked for is now the held request's login_after
                    params["prompt"] = " ".join(p for p in prompts if p != "login")
                    if not params["prompt"]:
                        del params["prompt"]
                held = self.codes.hold(
                    s, client_pk=client.id, params=cast(dict[str, str], params), now=now, login_after=fresh_after
                )
                return SignInFirst(held, again=active is not None)
            if active is None:  # for the type checker: handled just above
                raise RuntimeError("unreachable")
            user = active.user
            reason = None
            if user.practice_id != client.practice_id:
                reason = f"{client.name} belongs to another practice: your account cannot sign in to it."
            elif not client.allows_role(user.role):
                reason = f"{client.name} is not open to your role. Ask your practice admin if you need it."
            if reason is not None:
                self.audit.record(
                    s,
                    EventTag.OIDC_ACCESS_DENIED,
                    context=request.context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"client": client.id, "app": client.name, "role": user.role},
                )
                denied = AccessDeniedError(redirect_uri=grant.redirect_uri, state=request.first("state"))
                return NotForYou(client.name, reason, self._error_location(denied, request.issuer))
            grantee = Grantee(user, active.session_id, active.authenticated_at, active.amr)
            response = self.server.create_authorization_response(grant.request, grant_user=grantee, grant=grant)
            location = response.location
            if response.status != 302 or not location:
                return BadRequest("The sign-in request could not be completed.")
            if "code=" in location:
                self.audit.record(
                    s,
                    EventTag.OIDC_SIGNED_IN,
                    context=request.context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"client": client.id, "app": client.name, "scope": grant.request.scope or ""},
                )
            return ToApp(location)

    # -- the token, introspection and revocation endpoints (client-authenticated) ----------------------

    def token(self, request: ProtocolRequest) -> ProtocolResponse:
        return self._endpoint(request, lambda: self.server.create_token_response(request))

    def introspect(self, request: ProtocolRequest) -> ProtocolResponse:
        return self._endpoint(request, lambda: self.server.create_endpoint_response("introspection", request))

    def revoke(self, request: ProtocolRequest) -> ProtocolResponse:
        return self._endpoint(request, lambda: self.server.create_endpoint_response("revocation", request))

    def _endpoint(self, request: ProtocolRequest, handle) -> ProtocolResponse:
        now = self.clock.now()
        try:
            with self.db.transaction() as s, self._calling(s, request.issuer, now, request.context):
                return cast(ProtocolResponse, handle())
        except IntegrityError:  # a token value collided (never, at 256 bits) or a race lost: the app retries
            body = {"error": "temporarily_unavailable", "error_description": "Try again."}
            return ProtocolResponse(503, body, [("Content-Type", "application/json")])

    # -- userinfo ------------------------------------------------------------------------------------

    def userinfo(self, *, access_token: str | None) -> dict[str, Any]:
        """The claims of the member an access token was issued for, by its scope; InvalidToken otherwise."""
        if not access_token:
            raise InvalidToken()
        now = self.clock.now()
        with self.db.reading() as s:
            found = self.tokens.live_access(s, token=access_token, now=now)
            if found is None:
                raise InvalidToken()
            record, user = found
            if "openid" not in record.scope.split():
                raise InvalidToken()
            return dict(self.claims(s, user, record.scope))

    # -- RP-initiated logout --------------------------------------------------------------------------

    def logout_target(
        self,
        *,
        id_token_hint: str | None,
        client_id: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
        issuer: str,
        active: ActiveSession | None,
    ) -> LogoutOutcome:
        """Check an app's logout request (OpenID Connect RP-Initiated Logout 1.0 §2, §3).

        A ``post_logout_redirect_uri`` must be registered for the app named by ``client_id`` or the
        hint's ``aud``; otherwise LogoutRefused (an error page, never a redirect). The hint proves
        the request comes from the member's own app only when its signature is ours and its
        ``sub`` is the signed-in member: then the sign-out needs no confirmation.
        """
        hint = self._verify_hint(id_token_hint, issuer) if id_token_hint else None
        if id_token_hint and hint is None:
            raise LogoutRefused("The id_token_hint is not an ID token from this server.")
        audience = hint.get("aud") if hint else None
        hinted = audience[0] if isinstance(audience, list) and audience else audience
        if client_id and hinted and client_id != hinted:
            raise LogoutRefused("The client_id does not match the id_token_hint.")
        client_id = client_id or (hinted if isinstance(hinted, str) else None)
        with self.db.reading() as s:
            client = self.clients.find(s, client_id) if client_id else None
            if client_id and client is None:
                raise LogoutRefused("The app of this sign-out request is not registered.")
            target = None
            if post_logout_redirect_uri:
                if client is None:
                    raise LogoutRefused("A post_logout_redirect_uri needs client_id or id_token_hint.")
                if post_logout_redirect_uri not in client.post_logout_redirect_uris:
                    raise LogoutRefused("This post_logout_redirect_uri is not registered for the app.")
                target = (
                    add_params_to_uri(post_logout_redirect_uri, [("state", state)])
                    if state
                    else (post_logout_redirect_uri)
                )
            proven = bool(hint and active and hint.get("sub") == self.subject(s, active.user.id, create=False))
        return LogoutOutcome(
            target, confirm=active is not None and not proven, app_name=client.name if client else None
        )

    def _verify_hint(self, token: str, issuer: str) -> dict[str, Any] | None:
        if len(token) > 8192:
            return None
        try:
            decoded = jwt.decode(token, KeySet(self.keys.verification_keys()), algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            return None
        claims = dict(decoded.claims)
        return claims if claims.get("iss") == issuer else None  # expired hints are fine (§2)

    # -- claims, subjects, sessions --------------------------------------------------------------------

    def claims(self, s: Session, user: User, scope: str) -> UserInfo:
        scopes = set(scope.split())
        info = UserInfo(sub=self.subject(s, user.id))
        if "email" in scopes:
            # Members are added by their admin and confirm the address through an emailed set-up link.
            info["email"] = user.email
            info["email_verified"] = True
        if "profile" in scopes:
            info["name"] = user.name
            info["practice"] = user.practice.name
        if "groups" in scopes:
            info["groups"] = [user.role]
            info["practice"] = user.practice.name
        return info

    def subject(self, s: Session, user_id: int, *, create: bool = True) -> str | None:
        """The member's ``sub``: random, stable, made the first time an app needs it."""
        found = s.scalars(select(OidcSubject.subject).where(OidcSubject.user_id == user_id)).first()
        if found is not None or not create:
            return found
        subject = random_token(24)
        s.add(OidcSubject(user_id=user_id, subject=subject))
        s.flush()
        return subject

    def sid(self, session_id: int) -> str:
        """The ``sid`` claim: the Twofold session, opaquely (it changes with the secret key, as sessions do)."""
        return self.sid_hasher.hash(str(session_id))[:32]

    def client_id_of(self, s: Session, client_pk: int) -> str:
        client = self.clients.by_pk(s, client_pk)
        return client.client_id if client is not None else ""

    def revoke_all_for(self, session: Session, *, user_id: int, reason: str) -> int:
        """Revoke every token of a member, in the caller's transaction (a ``TrustRevoker``)."""
        return self.tokens.revoke_for_user(session, user_id=user_id, now=self.clock.now(), reason=reason)

    # -- internals -------------------------------------------------------------------------------------

    @contextmanager
    def _calling(self, s: Session, issuer: str, now: datetime, context: RequestContext) -> Iterator[_Call]:
        call = _Call(s, issuer, now, context)
        reset = _CALL.set(call)
        try:
            yield call
        finally:
            _CALL.reset(reset)

    def _generate_token(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        scope = scope or ""
        token = {
            "token_type": "Bearer",
            "access_token": random_token(32),
            "expires_in": int(self.tokens.access_lifetime.total_seconds()),
            "scope": scope,
        }
        if "offline_access" in scope.split():  # refresh tokens only for offline access
            token["refresh_token"] = random_token(32)
        return token

    def _save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        call = _call()
        grantee: Grantee = request.user
        if call.code is not None:
            family, code_id = random_token(16)[:22], call.code.id
        elif call.refreshed is not None:
            family, code_id = call.refreshed.family, None
        else:
            raise RuntimeError("a token without a code or a refresh token")
        self.tokens.save(
            call.s,
            now=call.now,
            client_pk=request.client.id,
            user_id=grantee.user.id,
            session_id=grantee.session_id,
            family=family,
            code_id=code_id,
            scope=token.get("scope", ""),
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            auth_time=grantee.auth_time,
            amr=grantee.amr,
        )

    def _audit_replay(self, client: RegisteredClient, *, what: str, revoked: int) -> None:
        call = _call()
        self.audit.record(
            call.s,
            EventTag.OIDC_TOKEN_REPLAYED,
            context=call.context,
            practice_id=client.practice_id,
            details={"client": client.id, "app": client.name, "presented": what, "tokens_revoked": revoked},
        )

    def _error(self, error: OAuth2Error, issuer: str) -> ToApp | BadRequest:
        if error.redirect_uri:
            return ToApp(self._error_location(error, issuer))
        return BadRequest(_describe(error))

    def _error_location(self, error: OAuth2Error, issuer: str) -> str:
        _status, _body, headers = error()
        location = dict(headers)["Location"]
        return add_params_to_uri(location, [("iss", issuer)])  # RFC 9207 §2: on error answers too


def _max_age(value: str | None) -> timedelta | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidRequestError("max_age must be a number of seconds.")
    return timedelta(seconds=int(value))


def _describe(error: OAuth2Error) -> str:
    known = {
        "invalid_client": "This app is not registered with Twofold, or it is disabled. Tell the app's administrator.",
        "invalid_request": "The app sent a sign-in request Twofold cannot accept. Tell the app's administrator.",
    }
    message = known.get(error.error or "", "The app's sign-in request could not be completed.")
    if error.description:
        message = f"{message} ({error.description})"
    return message


def discovery_fields() -> dict[str, Any]:
    """What the provider supports, for ``/.well-known/openid-configuration`` (endpoints added by the web layer)."""
    return {
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "subject_types_supported": ["public"],
        "scopes_supported": list(SCOPES),
        "claims_supported": list(CLAIMS),
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


__all__ = [
    "AuthorizeOutcome",
    "BadRequest",
    "InvalidToken",
    "LogoutOutcome",
    "LogoutRefused",
    "NotForYou",
    "OidcProvider",
    "ProtocolRequest",
    "ProtocolResponse",
    "SignInFirst",
    "ToApp",
    "acr_for",
    "discovery_fields",
]
