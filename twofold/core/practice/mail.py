"""The emails practice administration sends: set-up links, invitations and the notice of an admin reset.

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


def invitation_message(
    *, to: str, name: str, practice: str, url: str, expires_at: datetime, time_zone: str | None = None
) -> Message:
    """An invitation to move an existing account to another practice: only its owner can accept it,
    by signing in as usual and confirming."""
    subject = f"{practice} invites you to move your Twofold account"
    opening = (
        f"{practice} added this address as a member. You already have a Twofold account with it, in another "
        "practice. One account belongs to one practice: to move yours to "
        f"{practice}, open this link, sign in with your password and second factor as usual, and confirm:"
    )
    after = (
        "Moving ends your sessions everywhere; your password, authenticator app, security keys and backup "
        "codes stay yours. If you do nothing, your account stays where it is and the invitation expires."
    )
    until = f"The link works once and until {_when(expires_at, time_zone)} (72 hours)."
    text = (
        f"Hello {name},\n\n{opening}\n\n{url}\n\n{after}\n{until}\n"
        "If you did not expect this email, ignore it: nothing changes unless you accept.\n"
    )
    html = (
        f"<p>Hello {escape(name)},</p><p>{escape(opening)}</p>"
        f'<p><a href="{escape(url)}">See the invitation</a></p>'
        f"<p>{escape(after)}</p><p>{escape(until)}</p>"
        "<p>If you did not expect this email, ignore it: nothing changes unless you accept.</p>"
    )
    return Message(to=to, subject=subject, text=text, html=html, tags=("setup_link",))


def audit_anchor_message(*, to: str, practice: str, statement: str | None, problem: str | None) -> Message:
    """The weekly audit anchor for a practice's admins: its signed head to keep, or why it could not be signed."""
    if problem is None and statement is not None:
        subject = f"Audit log anchor for {practice}"
        body = (
            f"This is the signed state of {practice}'s audit log in Twofold. Keep this email (or save the "
            "statement below to a file) somewhere other than the Twofold server.\n\n"
            "If anyone later removes or rewrites recent audit events, your Twofold operator can prove it with:\n"
            "    twofold audit verify --anchor <saved statement>\n\n"
            f"{statement}"
        )
    else:
        subject = f"Audit log check FAILED for {practice}"
        body = (
            f"Twofold checked {practice}'s audit log and it does not verify: {problem}\n\n"
            "Someone may have changed the audit log in the database. Tell your Twofold operator, and keep "
            "the earlier anchor emails: they show what the log held before.\n"
        )
    html = f"<pre>{escape(body)}</pre>"
    return Message(to=to, subject=subject, text=body, html=html, tags=("audit_anchor",))
