"""Forward-auth: a reverse proxy asks, before each request to a practice's app, "may this browser
see this URL, and as whom?" (nginx ``auth_request``, Caddy ``forward_auth``, Traefik ``forwardAuth``).

The answer follows the member's Twofold session and the app's rules:

- the URL's host names the app (``AppService.app_at``); an unknown host is refused;
- a path under one of the app's bypass prefixes is let through without a session or identity;
- without a live session the browser must sign in (then comes back to the same URL);
- a session of another practice, a role the app does not allow, a disabled app, or a member the
  practice holds at 2FA enrolment is refused;
- an app with ``reauth_minutes`` sends a member whose last sign-in is older back to sign in;
- otherwise the request is let through with the member's identity.

The proxy asks on every request, so the check reads no more than it must: in one short reading
transaction, one indexed read of the app and one of the session (with its member and practice),
both plain columns through prepared statements. Activity is written at most once
per ``sessions.TOUCH_INTERVAL`` per session (``SessionService.resolve``). The audit log gets the
first access of a session to an app (once, remembered in ``app_accesses``) and denials, each at
most once per session, host and reason every ``DENIAL_AUDIT_INTERVAL`` in a process: not one row
per proxied request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import unquote, urlsplit

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.practice.apps import DEFAULT_PORTS, AppService, AppView, host_key
from twofold.core.practice.enforcement import TwoFactorEnforcement
from twofold.core.sessions import SessionIdentity, SessionService
from twofold.errors import InvalidInput, TwoFactorRequired
from twofold.store.db import Database
from twofold.store.models import AppAccess

MAX_URI_LENGTH = 8192
DENIAL_AUDIT_INTERVAL = timedelta(minutes=5)
_REMEMBERED = 50_000  # (session, app) pairs and recent denials kept in memory per process

Outcome = Literal["allow", "bypass", "sign_in", "deny"]


class BadForwardedRequest(InvalidInput):
    code = "bad_forwarded_request"
    message = (
        "The proxy did not say which URL was asked for: it must send X-Forwarded-Proto, X-Forwarded-Host and "
        "X-Forwarded-Uri (Caddy, Traefik) or X-Original-URL (nginx), without control characters."
    )


class ForwardedUriTooLong(InvalidInput):
    code = "uri_too_long"
    message = f"The URL asked for is longer than {MAX_URI_LENGTH} characters."


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """The request the proxy is asking about, as the proxy described it."""

    scheme: str
    host: str  # the Host as sent, possibly with a port
    uri: str  # the path and query as sent
    method: str = "GET"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.uri}"

    @classmethod
    def from_parts(cls, *, proto: str | None, host: str | None, uri: str | None, method: str | None) -> ProxiedRequest:
        """From X-Forwarded-Proto/-Host/-Uri/-Method; ``BadForwardedRequest`` when one is missing or malformed."""
        if not host or not uri:
            raise BadForwardedRequest()
        scheme = (proto or "https").split(",")[0].strip().lower()
        host = host.split(",")[0].strip()
        return cls._checked(scheme, host, uri, method)

    @classmethod
    def from_url(cls, url: str | None, method: str | None) -> ProxiedRequest:
        """From nginx's X-Original-URL (``$scheme://$http_host$request_uri``)."""
        if not url:
            raise BadForwardedRequest()
        if len(url) > MAX_URI_LENGTH:
            raise ForwardedUriTooLong()
        try:
            parts = urlsplit(url)
        except ValueError:
            raise BadForwardedRequest() from None
        uri = url[len(f"{parts.scheme}://{parts.netloc}") :] if parts.netloc else ""
        return cls._checked(parts.scheme.lower(), parts.netloc, uri or "/", method)

    @classmethod
    def _checked(cls, scheme: str, host: str, uri: str, method: str | None) -> ProxiedRequest:
        if len(uri) > MAX_URI_LENGTH or len(host) > 300:
            raise ForwardedUriTooLong()
        text = scheme + host + uri + (method or "")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
            raise BadForwardedRequest()  # control characters or spaces: never part of a real request line
        if scheme not in DEFAULT_PORTS or not uri.startswith("/") or "@" in host or "/" in host:
            raise BadForwardedRequest()
        return cls(scheme=scheme, host=host, uri=uri, method=(method or "GET").upper()[:16])

    def host_key(self) -> str | None:
        """The app address this request is for (as ``host_key`` makes it), or None when the host is malformed."""
        try:
            parts = urlsplit(f"{self.scheme}://{self.host}/")
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        return host_key(self.scheme, parts.hostname, port)

    def path(self) -> str | None:
        """The path, percent-decoded, or None when it climbs with ``..`` or hides a separator (never bypassed)."""
        raw = self.uri.split("?", 1)[0].split("#", 1)[0]
        decoded = unquote(raw)
        if "\\" in decoded or any(segment in (".", "..") for segment in decoded.split("/")):
            return None
        if "%2f" in raw.lower() or "%5c" in raw.lower() or "//" in decoded:
            return None
        return decoded


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to answer the proxy. ``reason`` says why (``no_session``, ``reauth``, ``role``, ...)."""

    outcome: Outcome
    reason: str = ""
    session: SessionIdentity | None = None
    app: AppView | None = None


class _Recent:
    """A bounded, thread-safe memory of keys seen (with when), oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._seen: OrderedDict[tuple, datetime] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def seen_since(self, key: tuple, since: datetime | None) -> bool:
        with self._lock:
            at = self._seen.get(key)
            if at is None or (since is not None and at < since):
                return False
            self._seen.move_to_end(key)
            return True

    def add(self, key: tuple, at: datetime) -> None:
        with self._lock:
            self._seen[key] = at
            self._seen.move_to_end(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)


@dataclass(kw_only=True, slots=True)
class ForwardAuthService:
    db: Database
    clock: Clock
    audit: AuditLog
    sessions: SessionService
    apps: AppService
    enforcement: TwoFactorEnforcement
    _accessed: _Recent = field(default_factory=lambda: _Recent(_REMEMBERED), init=False, repr=False)
    _denied: _Recent = field(default_factory=lambda: _Recent(_REMEMBERED), init=False, repr=False)

    def check(self, *, request: ProxiedRequest, session_token: str | None, context: RequestContext) -> Verdict:
        """The verdict on ``request`` for the browser holding ``session_token`` (None: no cookie)."""
        key = request.host_key()
        with self.db.quick_reads() as s:  # two prepared reads on one pooled connection, no ORM session
            app = self.apps.read_app_at(s, key) if key else None
            if app is not None and app.bypass_paths:
                path = request.path()
                if path is not None and app.bypasses(path):
                    return Verdict("bypass", "bypass_path", app=app)
            found = self.sessions.read(s, session_token)
        active = self.sessions.identify(found)
        if app is None or app.host is None:
            if active is None:
                return Verdict("deny", "unknown_host")  # not sent to sign in for an address we do not guard
            return self._deny(active, app, request, "unknown_host", context)
        if active is None:
            return Verdict("sign_in", "no_session", app=app)
        if app.practice_id != active.member.practice_id:
            return self._deny(active, app, request, "other_practice", context)
        if not app.enabled:
            return self._deny(active, app, request, "app_disabled", context)
        if active.member.role not in app.allowed_roles:
            return self._deny(active, app, request, "role", context)
        if "mfa" not in active.amr and not self._enrolment_met(session_token):
            return self._deny(active, app, request, "two_factor_required", context)
        if app.reauth_minutes and self.clock.now() - active.authenticated_at > timedelta(minutes=app.reauth_minutes):
            return Verdict("sign_in", "reauth", session=active, app=app)
        self._first_access(active, app, context)
        return Verdict("allow", session=active, app=app)

    def _enrolment_met(self, session_token: str | None) -> bool:
        """Whether a member signed in without a second factor is not held at 2FA enrolment (the rare path)."""
        full = self.sessions.resolve(session_token, touch=False)
        if full is None:
            return False
        try:
            self.enforcement.check(full)
        except TwoFactorRequired:
            return False
        return True

    def _first_access(self, active: SessionIdentity, app: AppView, context: RequestContext) -> None:
        pair = (active.session_id, app.id)
        if self._accessed.seen_since(pair, None):
            return
        now = self.clock.now()
        try:
            with self.db.transaction() as s:
                known = s.execute(
                    select(AppAccess.at).where(AppAccess.session_id == active.session_id, AppAccess.app_id == app.id)
                ).first()
                if known is None:
                    s.execute(insert(AppAccess).values(session_id=active.session_id, app_id=app.id, at=now))
                    self.audit.record(
                        s,
                        EventTag.APP_ACCESSED,
                        context=context,
                        practice_id=active.member.practice_id,
                        actor_id=active.member.id,
                        subject_id=active.member.id,
                        details={"app_id": app.id, "app": app.name, "session_id": active.session_id},
                    )
        except IntegrityError:
            pass  # another process recorded the same first access at the same moment
        self._accessed.add(pair, now)

    def _deny(
        self,
        active: SessionIdentity,
        app: AppView | None,
        request: ProxiedRequest,
        reason: str,
        context: RequestContext,
    ) -> Verdict:
        now = self.clock.now()
        host = request.host_key()
        key = (active.session_id, host, reason)
        if not self._denied.seen_since(key, now - DENIAL_AUDIT_INTERVAL):
            self._denied.add(key, now)
            details: dict[str, object] = {"reason": reason, "host": (host or "")[:262]}
            if app is not None and app.practice_id == active.member.practice_id:
                details.update(app_id=app.id, app=app.name)  # another practice's app is not named in this log
            with self.db.transaction() as s:
                self.audit.record(
                    s,
                    EventTag.APP_ACCESS_DENIED,
                    context=context,
                    practice_id=active.member.practice_id,
                    actor_id=active.member.id,
                    subject_id=active.member.id,
                    details=details,
                )
        return Verdict("deny", reason, session=active, app=app)
