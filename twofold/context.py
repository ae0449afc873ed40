from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, for the audit log: the client's address and browser.

    ``flow_binding`` is the browser's sign-in flow cookie (a secret: never logged, never
    audited); a sign-in flow answers only the browser that passed its password step.
    ``workstation`` is the browser's shared-workstation cookie (a secret too): sign-in and
    sessions read it to apply the workstation's rules (core/workstations.py).
    """

    ip: str | None = None
    user_agent: str | None = None
    flow_binding: str | None = field(default=None, repr=False)
    workstation: str | None = field(default=None, repr=False)

    @classmethod
    def system(cls, actor: str = "cli") -> RequestContext:
        return cls(ip=None, user_agent=f"twofold-{actor}")
