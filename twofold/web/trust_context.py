"""Template context for the issue-3 parts of shared pages (code step, security page)."""

from __future__ import annotations

from fastapi import Request

from twofold import errors as core
from twofold.core.sessions import ActiveSession


def security_context(request: Request, active: ActiveSession, services) -> dict:
    """What the security page's session and remembered-browser sections show."""
    return {
        "sessions": services.account_security.sessions_of(active=active),
        "browsers": services.account_security.browsers_of(user=active.user, cookies=request.cookies),
    }


def remember_option(services, flow_id: str, checked: bool = False) -> dict:
    """What the code page's "Remember this browser" checkbox needs (none when the policy says 0 days)."""
    try:
        _flow, user, _methods = services.sign_in.flow_methods(flow_id)
    except core.TwofoldError:
        return {"remember_days": 0}
    return {"remember_days": services.accounts.policy_for(user).remember_browser_days, "remember_checked": checked}
