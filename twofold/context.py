from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for the audit log: the client's address and browser."""

    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, actor: str = "cli") -> RequestContext:
        return cls(ip=None, user_agent=f"twofold-{actor}")
