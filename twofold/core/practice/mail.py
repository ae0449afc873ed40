"""The emails practice administration sends: set-up links and the notice of an admin reset.

Plain templates for now; the security-email templates of the backup-codes issue can
replace ``reset_notice`` through ``ResetNotice`` (see core/resets.py).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from twofold.clock import local
from twofold.core.notifier import Message


def _when(moment: datetime, time_zone: str | None) -> str:
    shown = local(moment, time_zone)
    return f"{shown:%A} {shown.day} {shown:%B %Y, %H:%M} {shown:%Z}"


def setup_link_message(
    *, to: str, name: str, practice: str, url: str, expires_at: datetime, welcome: bool, time_zone: str | None = None
) -> Message:
    """The one-time set-up link: choose a password (for a new member), then set up an authenticator app."""
    if welcome:
        subject = f"You have been added to {practice} on Twofold"
        opening = f"You have been added to {practice}. Open this link to choose your password and set up two-factor authentication:"
    else:
        subject = f"Set up two-factor authentication for {practice}"
        opening = (
            f"Your practice admin at {practice} asked you to set up two-factor authentication. Open this link to start:"
        )
    text = (
        f"Hello {name},\n\n{opening}\n\n{url}\n\n"
        f"The link works once and until {_when(expires_at, time_zone)} (72 hours). A newer link replaces this one.\n"
        "If you did not expect this email, tell your practice admin and do not open the link.\n"
    )
    html = (
        f"<p>Hello {escape(name)},</p><p>{escape(opening)}</p>"
        f'<p><a href="{escape(url)}">Set up my sign-in</a></p>'
        f"<p>The link works once and until {escape(_when(expires_at, time_zone))} (72 hours). A newer link replaces this one.</p>"
        "<p>If you did not expect this email, tell your practice admin and do not open the link.</p>"
    )
    return Message(to=to, subject=subject, text=text, html=html, tags=("setup_link",))
