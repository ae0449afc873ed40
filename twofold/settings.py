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
    # over the GIL (benchmarks/README.md), and 32 on PostgreSQL; the pool follows
    # the threads.
    request_threads: int | None = Field(default=None, ge=1)
    db_pool_size: int | None = Field(default=None, ge=1)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # FastAPI's own OpenTelemetry instrumentation. Off unless asked for: Twofold sets
    # up no exporter, and checking for one costs every request.
    opentelemetry: bool = False

    # How often (at most) an open page asks how long its session has left, to warn
    # a minute before the idle sign-out; asking does not count as activity.
    idle_check_seconds: float = Field(default=30.0, gt=0, le=300)

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
        if self.request_threads is None:
            self.request_threads = 8 if self.resolved_database_url.startswith("sqlite") else 32
        if self.db_pool_size is None:
            self.db_pool_size = self.request_threads
        return self

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
