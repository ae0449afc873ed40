"""Configuration, read from ``TWOFOLD_*`` environment variables.

Every option is documented in the README's configuration table. Development
keeps a generated secret key under the var directory so that sessions and
encrypted secrets survive a restart; production refuses to start without one.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from twofold.clock import is_time_zone

# Connections per process on PostgreSQL unless TWOFOLD_DB_MAX_CONNECTIONS says otherwise: four
# workers (the documented production setup) then use 80 of PostgreSQL's default 100.
DEFAULT_DB_MAX_CONNECTIONS = 20
# Bind addresses meaning "every interface": reached as localhost on this machine.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names them, binds nothing
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


class ConfigurationError(Exception):
    """The configuration cannot be used; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWOFOLD_", extra="ignore")

    env: Literal["development", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str | None = None
    # Earlier secret keys, newest first: encrypted secrets written under them
    # can still be read, and are re-encrypted under the current key on use.
    old_secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    host: str = "127.0.0.1"
    port: int = 8000
    # Where people reach Twofold (https://signin.example.org): every link in every email,
    # and the origin other apps are sent back to. Required in production.
    public_origin: str | None = None

    # The reverse proxies (addresses or CIDRs) whose X-Forwarded-For / Forwarded, X-Forwarded-Proto and
    # forward-auth headers are believed; from any other peer they are ignored (docs/protect-an-app.md).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # When set (riverside.example), the session cookie is sent to every host under it, so the
    # proxy in front of files.riverside.example can ask about it; unset, cookies stay host-only.
    cookie_domain: str | None = None

    # OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
    argon2_time_cost: int = Field(default=2, ge=2)
    argon2_memory_kib: int = Field(default=19456, ge=19456)
    argon2_parallelism: int = Field(default=1, ge=1)
    password_hash_concurrency: int = Field(default_factory=lambda: max(2, os.cpu_count() or 2), ge=1)

    # Request threads and database connections are sized together: a sync route
    # holds one connection for its whole run, so fewer connections than threads
    # makes threads queue on the pool (and overflow connections churn). Unset, they
    # are 8 on SQLite, where writers take turns anyway and more threads only fight
    # over the GIL (benchmarks/README.md), and TWOFOLD_DB_MAX_CONNECTIONS (20) on
    # PostgreSQL; the pool follows the threads.
    request_threads: int | None = Field(default=None, ge=1)
    db_pool_size: int | None = Field(default=None, ge=1)
    # The most connections one process opens to PostgreSQL: the budget the pool is sized from.
    # Every process (workers x machines) plus a few for the CLI must fit in the server's
    # max_connections; `twofold serve` checks that and warns (docs/operations.md).
    db_max_connections: int | None = Field(default=None, ge=1)
    # A database that does not answer must not hold requests: a connection is given up after
    # db_connect_timeout, a statement after db_statement_timeout (PostgreSQL's statement_timeout
    # and lock_timeout), a wait for a free pooled connection after db_pool_timeout. Each answers
    # 503 `unavailable` with Retry-After.
    db_connect_timeout: float = Field(default=5.0, gt=0, le=300)
    db_statement_timeout: float = Field(default=10.0, gt=0, le=3600)
    db_pool_timeout: float = Field(default=10.0, gt=0, le=300)
    # Seconds a Redis connect or command may take before the request answers 503.
    redis_timeout: float = Field(default=2.0, gt=0, le=60)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Slow or idle clients (docs/operations.md): an idle keep-alive connection is closed after
    # http_keepalive_timeout seconds; a request's headers must arrive within http_header_timeout
    # seconds of its first byte; past http_max_connections open connections per process a new
    # one is answered 503 and closed, with a log line, before the process runs out of file handles.
    http_keepalive_timeout: int = Field(default=5, ge=1, le=300)
    http_header_timeout: float = Field(default=10.0, gt=0, le=300)
    http_max_connections: int = Field(default=1000, ge=1)

    # FastAPI's own OpenTelemetry instrumentation. Off unless asked for: Twofold sets
    # up no exporter, and checking for one costs every request.
    opentelemetry: bool = False

    # How often (at most) an open page asks how long its session has left, to warn
    # a minute before the idle sign-out; asking does not count as activity.
    idle_check_seconds: float = Field(default=30.0, gt=0, le=300)

    # Ended sessions, remembered browsers and set-up links are kept this many days, then purged
    # with expired flows, codes and old throttle failures (never the audit log). Each server process
    # purges every purge_interval_seconds (0: only `twofold db purge` does).
    purge_after_days: int = Field(default=30, ge=1, le=3650)
    purge_interval_seconds: int = Field(default=3600, ge=0)
    # Admin alerts: each server process looks every alert_digest_interval_seconds for daily digests
    # due (the previous day of each practice's calendar, sent once); 0 leaves it to `twofold alerts digest`.
    alert_digest_interval_seconds: int = Field(default=900, ge=0)
    # OpenID Connect back-channel logout: each server process tries the logouts apps have not yet
    # confirmed every backchannel_retry_seconds (each on its own widening schedule); 0: only the
    # try right after the session ended.
    backchannel_retry_seconds: int = Field(default=60, ge=0)
    # The time zone a new practice starts with (an IANA name such as America/Chicago); each
    # practice's admin can change theirs on the policy page. Pages and emails show local time.
    default_time_zone: str = "UTC"
    # OpenID Connect provider: how long its tokens live. Access tokens are short (an app refreshes
    # them); refresh tokens (only with the offline_access scope) rotate on every use.
    oidc_access_token_seconds: int = Field(default=600, ge=60, le=86400)
    oidc_id_token_seconds: int = Field(default=600, ge=60, le=86400)
    oidc_refresh_token_days: int = Field(default=30, ge=1, le=365)

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    mail_from: str = "Twofold <no-reply@twofold.localhost>"
    # Without SMTP, mail is written to var_dir/outbox/. Set-up links in those files are live
    # credentials, so production does this only when asked to explicitly.
    mail_outbox: bool = False

    @model_validator(mode="after")
    def _size_threads_and_pool(self) -> Settings:
        sqlite = self.resolved_database_url.startswith("sqlite")
        if self.request_threads is None:
            self.request_threads = 8 if sqlite else (self.db_max_connections or DEFAULT_DB_MAX_CONNECTIONS)
        if self.db_pool_size is None:
            self.db_pool_size = self.request_threads
        if self.db_max_connections is not None:
            self.db_pool_size = min(self.db_pool_size, self.db_max_connections)
        return self

    @field_validator("default_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_time_zone(value):
            raise ValueError(f"{value!r} is not a time zone name (use an IANA name such as Europe/London or UTC)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"TWOFOLD_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR (such as 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return value

    @field_validator("cookie_domain")
    @classmethod
    def _check_cookie_domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        domain = value.strip().lower().lstrip(".")
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"TWOFOLD_COOKIE_DOMAIN: {value!r} is not a domain name (such as riverside.example)")
        return domain

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in self.trusted_proxies)

    @field_validator("old_secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'twofold.db').as_posix()}"

    def resolved_public_origin(self) -> str:
        """The one origin every emailed link and every redirect to Twofold is built from.

        ``TWOFOLD_PUBLIC_ORIGIN`` (scheme, host and port; no path) when set. Production
        refuses to run without it: a link built from the request's ``Host`` header would
        let anyone who can send a request choose where a set-up link points (OWASP
        "Host header injection"). In development it is the address ``twofold serve``
        really listens on (a wildcard bind address is reached as ``localhost``).
        """
        if self.public_origin:
            return _origin(self.public_origin, production=self.production)
        if self.production:
            raise ConfigurationError(
                "TWOFOLD_PUBLIC_ORIGIN is not set. In production every emailed link is built from it: set it to "
                "the address people use to reach Twofold, e.g. TWOFOLD_PUBLIC_ORIGIN=https://signin.example.org"
            )
        host = "localhost" if self.host in WILDCARD_HOSTS else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def resolved_secret_key(self) -> str:
        """The secret key; in development, generated once and kept under var_dir."""
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise ConfigurationError("TWOFOLD_SECRET_KEY must be at least 32 characters long.")
            return self.secret_key
        if self.production:
            raise ConfigurationError(
                "TWOFOLD_SECRET_KEY is not set. In production the secret key must come from "
                "the environment; generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key


def _origin(value: str, *, production: bool) -> str:
    """``value`` as an origin (``scheme://host[:port]``), or a ``ConfigurationError`` saying what is wrong."""
    from urllib.parse import urlsplit

    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"TWOFOLD_PUBLIC_ORIGIN must be an address such as https://signin.example.org, not {value!r}."
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            "TWOFOLD_PUBLIC_ORIGIN must be the origin only (scheme, host and port), without a path, query or "
            f"user: {value!r}."
        )
    if production and parts.scheme != "https":
        raise ConfigurationError(
            "TWOFOLD_PUBLIC_ORIGIN must start with https:// in production: cookies are sent over HTTPS only "
            f"there, so people could not sign in at {value!r}."
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"
