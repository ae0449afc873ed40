"""A practice's web apps: the ones Twofold stands in front of (a file share, a wiki, a portal).

Admins list, add, change, disable and remove them; every change is audited in the same
transaction. Like members, every use case takes the admin's ``practice_id`` and finds apps
only inside it: another practice's app id is simply "not found".

An app is reached at one address (its URL's host and port): the reverse proxy's question
"may this browser see https://files.riverside.example/x?" is answered for the app at that
address, so one address belongs to one app, whatever the practice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.errors import Conflict, InvalidInput, NotFound
from twofold.store.db import Database
from twofold.store.models import ROLES, App, Practice, User
from twofold.store.prepared import Prepared, QuickReads

MAX_BYPASS_PATHS = 50
MAX_REAUTH_MINUTES = 7 * 24 * 60
MAX_URL_LENGTH = 2048
MAX_ROW_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
DEFAULT_PORTS = {"http": 80, "https": 443}

# -- errors -----------------------------------------------------------------------


class AppNotFound(NotFound):
    code = "app_not_found"
    message = "There is no such app in your practice."


class InvalidAppName(InvalidInput):
    code = "invalid_name"
    message = "An app needs a name of 1 to 200 characters."


class InvalidAppUrl(InvalidInput):
    code = "invalid_url"
    message = (
        "The app's URL must be a full http or https address without a user name, query or fragment, "
        "such as https://files.riverside.example."
    )


class AppUrlRequired(InvalidInput):
    code = "url_required"
    message = "Give the app's URL, such as https://files.riverside.example."


class InvalidAppRoles(InvalidInput):
    code = "unknown_role"
    message = f"Allowed roles must be one or more of: {', '.join(ROLES)}."


class InvalidBypassPath(InvalidInput):
    code = "invalid_bypass_path"
    message = (
        f"Each path without sign-in must start with / (such as /health or /static/), "
        f"have no spaces or control characters, and there may be {MAX_BYPASS_PATHS} at most."
    )


class InvalidReauthMinutes(InvalidInput):
    code = "invalid_reauth_minutes"
    message = f"Minutes before asking again must be a whole number from 1 to {MAX_REAUTH_MINUTES}, or empty."


class DuplicateAppUrl(Conflict):
    code = "duplicate_app_url"
    message = "Another app already uses this address. Each address can belong to one app only."


# -- checks -----------------------------------------------------------------------


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def host_key(scheme: str, hostname: str, port: int | None) -> str:
    """How an app's address is matched: the lower-cased host name, with its port unless it is the scheme's default."""
    host = hostname.lower().rstrip(".")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        return f"{host}:{port}"
    return host


def checked_url(url: str) -> tuple[str, str]:
    """An app's URL, normalised (no trailing slash), and its address key; ``InvalidAppUrl`` otherwise."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or _has_control(url) or " " in url or "\\" in url:
        raise InvalidAppUrl()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidAppUrl() from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidAppUrl()
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InvalidAppUrl()
    key = host_key(scheme, parts.hostname, port)
    return f"{scheme}://{key}{parts.path.rstrip('/')}", key


def checked_roles(roles: Sequence[str] | None) -> list[str]:
    """The roles allowed to use an app, in the product's order; none given means every role."""
    if roles is None:
        return list(ROLES)
    wanted = {str(role).strip().lower() for role in roles}
    if not wanted or not wanted <= set(ROLES):
        raise InvalidAppRoles()
    return [role for role in ROLES if role in wanted]


def checked_bypass_paths(paths: Sequence[str] | None) -> list[str]:
    """Path prefixes served without sign-in, each starting with "/", in the order given, without repeats."""
    found: list[str] = []
    for raw in paths or []:
        path = str(raw).strip(" ")
        if (
            not path.startswith("/")
            or len(path) > 200
            or _has_control(path)
            or " " in path
            or "\\" in path
            or "?" in path
            or "#" in path
            or ".." in path
        ):
            raise InvalidBypassPath()
        if path not in found:
            found.append(path)
    if len(found) > MAX_BYPASS_PATHS:
        raise InvalidBypassPath()
    return found


def checked_reauth_minutes(minutes: int | None) -> int | None:
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_REAUTH_MINUTES:
        raise InvalidReauthMinutes()
    return minutes


def checked_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or _has_control(name):
        raise InvalidAppName()
    return name


# -- views ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppView:
    id: int
    practice_id: int
    name: str
    url: str | None
    host: str | None
    allowed_roles: list[str]
    bypass_paths: list[str]
    reauth_minutes: int | None
    enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, app: App) -> AppView:
        return cls(
            id=app.id,
            practice_id=app.practice_id,
            name=app.name,
            url=app.url,
            host=app.host,
            allowed_roles=list(app.allowed_roles or []),
            bypass_paths=list(app.bypass_paths or []),
            reauth_minutes=app.reauth_minutes,
            enabled=app.enabled,
            created_at=app.created_at,
            updated_at=app.updated_at,
        )

    def bypasses(self, path: str) -> bool:
        """Whether ``path`` (already normalised by the caller) is under one of the bypass prefixes."""
        return any(path.startswith(prefix) for prefix in self.bypass_paths)


_APP_FIELDS = tuple(AppView.__dataclass_fields__)
_APP_AT = Prepared(select(*(getattr(App, name) for name in _APP_FIELDS)).where(App.host == bindparam("host")))


def app_in(session: Session, *, practice_id: int, app_id: int, lock: bool = False) -> App:
    """The app ``app_id`` of ``practice_id``, or ``AppNotFound`` (also for other practices' apps)."""
    if not 1 <= app_id <= MAX_ROW_ID:
        raise AppNotFound()  # no such row, and PostgreSQL would refuse to compare a larger number
    query = select(App).where(App.id == app_id, App.practice_id == practice_id)
    app = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if app is None:
        raise AppNotFound()
    return app


# The fields an admin may change, and how each is checked.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": checked_name,
    "allowed_roles": checked_roles,
    "bypass_paths": checked_bypass_paths,
    "reauth_minutes": checked_reauth_minutes,
}


@dataclass(kw_only=True, slots=True)
class AppService:
    db: Database
    clock: Clock
    audit: AuditLog

    # -- reading ---------------------------------------------------------------

    def list_apps(self, *, practice_id: int) -> list[AppView]:
        with self.db.reading() as s:
            apps = s.execute(select(App).where(App.practice_id == practice_id).order_by(App.name, App.id)).scalars()
            return [AppView.of(app) for app in apps]

    def get_app(self, *, practice_id: int, app_id: int) -> AppView:
        with self.db.reading() as s:
            return AppView.of(app_in(s, practice_id=practice_id, app_id=app_id))

    def app_at(self, host: str) -> AppView | None:
        """The app reached at ``host`` (as ``host_key`` makes it), enabled or not; None when none is."""
        with self.db.reading() as s:
            return self.read_app_at(s, host)

    def read_app_at(self, session: Session | QuickReads, host: str) -> AppView | None:
        """``app_at`` in the caller's transaction."""
        # Columns through a prepared statement, not ORM objects: the proxy asks this before every request.
        row = _APP_AT.execute(session, {"host": host}).one_or_none()
        return AppView(**dict(zip(_APP_FIELDS, row, strict=True))) if row is not None else None

    def is_app_address(self, url: str) -> bool:
        """Whether ``url`` is an address of any enabled app (before sign-in, when the practice is not known yet)."""
        app = self._app_of_url(url)
        return app is not None and app.enabled

    def is_app_url_of(self, *, practice_id: int, url: str) -> bool:
        """Whether ``url`` is an address of an enabled app of ``practice_id`` (where a sign-in may return to)."""
        app = self._app_of_url(url)
        return app is not None and app.enabled and app.practice_id == practice_id

    def _app_of_url(self, url: str) -> AppView | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
            return None
        return self.app_at(host_key(scheme, parts.hostname, port))

    def may_return_to(self, *, user_id: int, url: str) -> bool:
        """Whether a sign-in of ``user_id`` may end at ``url``: an address of an enabled app of their practice."""
        with self.db.reading() as s:
            practice_id = s.execute(select(User.practice_id).where(User.id == user_id)).scalar_one_or_none()
        return practice_id is not None and self.is_app_url_of(practice_id=practice_id, url=url)

    # -- changing --------------------------------------------------------------

    def add_app(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        name: str,
        url: str | None,
        context: RequestContext,
        allowed_roles: Sequence[str] | None = None,
        bypass_paths: Sequence[str] | None = None,
        reauth_minutes: int | None = None,
        enabled: bool = True,
        url_required: bool = True,
    ) -> AppView:
        """Register an app. ``url_required=False`` is for apps that are only signed in to by another
        protocol (OpenID Connect), which the proxy never asks about."""
        name = checked_name(name)
        if url is None or not url.strip():
            if url_required:
                raise AppUrlRequired()
            normalised, host = None, None
        else:
            normalised, host = checked_url(url)
        roles = checked_roles(allowed_roles)
        paths = checked_bypass_paths(bypass_paths)
        minutes = checked_reauth_minutes(reauth_minutes)
        now = self.clock.now()
        try:
            with self.db.transaction() as s:
                if s.get(Practice, practice_id) is None:
                    raise NotFound("No such practice.")
                if host is not None and s.execute(select(App.id).where(App.host == host)).first():
                    raise DuplicateAppUrl()
                app = App(
                    practice_id=practice_id,
                    name=name,
                    url=normalised,
                    host=host,
                    allowed_roles=roles,
                    bypass_paths=paths,
                    reauth_minutes=minutes,
                    enabled=bool(enabled),
                    created_at=now,
                    updated_at=now,
                )
                s.add(app)
                s.flush()
                self.audit.record(
                    s,
                    EventTag.APP_ADDED,
                    context=context,
                    practice_id=practice_id,
                    actor_id=actor_id,
                    details={"app_id": app.id, "name": name, "url": normalised, "enabled": app.enabled},
                )
                return AppView.of(app)
        except IntegrityError:
            raise DuplicateAppUrl() from None

    def update_app(
        self,
        *,
        practice_id: int,
        actor_id: int | None,
        app_id: int,
        changes: Mapping[str, Any],
        context: RequestContext,
    ) -> AppView:
        """Change some of ``name``, ``url``, ``allowed_roles``, ``bypass_paths``, ``reauth_minutes``
        and ``enabled``; fields left out keep their value. Audited with the names of the fields changed."""
        unknown = set(changes) - {*_CHECKS, "url", "enabled"}
        if unknown:
            raise InvalidInput(f"Unknown field: {sorted(unknown)[0]}.")
        checked: dict[str, Any] = {}
        for field_name, value in changes.items():
            if field_name == "url":
                checked["url"], checked["host"] = checked_url(value) if value else (None, None)
            elif field_name == "enabled":
                if not isinstance(value, bool):
                    raise InvalidInput("enabled must be true or false.")
                checked["enabled"] = value
            else:
                checked[field_name] = _CHECKS[field_name](value)
        try:
            with self.db.transaction() as s:
                app = app_in(s, practice_id=practice_id, app_id=app_id, lock=True)
                if "url" in checked and checked["url"] is None and app.url is not None:
                    raise AppUrlRequired()
                host = checked.get("host")
                taken = select(App.id).where(App.host == host, App.id != app.id)
                if host is not None and host != app.host and s.execute(taken).first():
                    raise DuplicateAppUrl()
                changed = sorted(name for name, value in checked.items() if getattr(app, name) != value)
                for name in changed:
                    setattr(app, name, checked[name])
                if changed:
                    app.updated_at = self.clock.now()
                    details: dict[str, Any] = {"app_id": app.id, "name": app.name, "changed": changed}
                    if "enabled" in changed:
                        details["enabled"] = app.enabled
                    self.audit.record(
                        s,
                        EventTag.APP_CHANGED,
                        context=context,
                        practice_id=practice_id,
                        actor_id=actor_id,
                        details=details,
                    )
                s.flush()
                return AppView.of(app)
        except IntegrityError:
            raise DuplicateAppUrl() from None

    def remove_app(self, *, practice_id: int, actor_id: int | None, app_id: int, context: RequestContext) -> None:
        """Remove an app: the proxy's next question about its address is answered "unknown"."""
        with self.db.transaction() as s:
            app = app_in(s, practice_id=practice_id, app_id=app_id, lock=True)
            self.audit.record(
                s,
                EventTag.APP_REMOVED,
                context=context,
                practice_id=practice_id,
                actor_id=actor_id,
                details={"app_id": app.id, "name": app.name, "url": app.url},
            )
            s.delete(app)
