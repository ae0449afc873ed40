"""Every security email: right recipient, subject and facts, a text and an HTML part, over real SMTP."""

from __future__ import annotations

import pytest

from tests.support.recovery import CHROME_ON_WINDOWS, wait_for_subject
from twofold.context import RequestContext
from twofold.core.security_mail import format_when
from twofold.store.models import User

CONTEXT = RequestContext(ip="203.0.113.7", user_agent=CHROME_ON_WINDOWS["user-agent"])

# (how the service is called, subject, facts the text must state)
NOTICES = [
    (
        lambda mail, u: mail.notify_two_factor_enabled(u, CONTEXT, method_label="an authenticator app"),
        "Two-factor authentication is on",
        ["turned on", "an authenticator app", "10 backup codes"],
    ),
    (
        lambda mail, u: mail.notify_two_factor_disabled(u, CONTEXT),
        "Two-factor authentication was turned off",
        ["password only", "backup codes no longer work"],
    ),
    (
        lambda mail, u: mail.notify_recovery_code_used(u, CONTEXT, codes_left=2),
        "A backup code was used to sign in",
        ["You have 2 backup codes left.", "generate new codes"],
    ),
    (
        lambda mail, u: mail.notify_recovery_code_used(u, CONTEXT, codes_left=1),
        "A backup code was used to sign in",
        ["You have 1 backup code left."],
    ),
    (
        lambda mail, u: mail.notify_recovery_codes_generated(u, CONTEXT),
        "New backup codes were generated",
        ["All earlier backup codes stopped working"],
    ),
    (
        lambda mail, u: mail.notify_email_method_added(u, CONTEXT),
        "Email codes were added to your sign-in methods",
        ["sign-in codes by email at", "weakest"],
    ),
    (
        lambda mail, u: mail.notify_email_method_removed(u, CONTEXT),
        "Email codes were removed from your sign-in methods",
        ["no longer receives sign-in codes by email"],
    ),
    (
        lambda mail, u: mail.notify_authenticator_replaced(u, CONTEXT),
        "Your authenticator app was replaced",
        ["previous app no longer work"],
    ),
    (
        lambda mail, u: mail.notify_authenticator_added(u, CONTEXT),
        "An authenticator app was added to your sign-in methods",
        ["6-digit codes"],
    ),
    (
        lambda mail, u: mail.notify_password_changed(u, CONTEXT),
        "Your password was changed",
        ["password of your account was just changed"],
    ),
    (
        lambda mail, u: mail.notify_browser_remembered(u, CONTEXT, days=30),
        "A browser was remembered for two-factor authentication",
        ["up to 30 days", "forget remembered browsers"],
    ),
    (
        lambda mail, u: mail.notify_admin_reset(u, CONTEXT, admin_name="Alex Admin"),
        "Your two-factor authentication was reset by an admin",
        ["Alex Admin reset two-factor authentication", "By:         Alex Admin"],
    ),
]


@pytest.mark.parametrize(("send", "subject", "facts"), NOTICES, ids=[n[1] + f"-{i}" for i, n in enumerate(NOTICES)])
def test_each_security_email_states_what_when_where_and_what_to_do(
    services, make_user, mailbox, clock, send, subject, facts
):
    member = make_user()
    with services.db.reading() as s:
        user = s.get(User, member.id)
    send(services.mail, user)
    [message] = wait_for_subject(mailbox, member.email, subject)
    assert message.to == member.email and message.rcpt_tos == [member.email]
    assert message.message["From"] == "Twofold <no-reply@twofold.test>"
    when = format_when(clock.now())
    for part in (message.text, message.html):
        for fact in (when, "Chrome on Windows", "203.0.113.7", "If this was not you", "Riverside Family Practice"):
            assert fact in part, (fact, subject)
    for fact in facts:
        assert fact.replace("&", "&amp;") in message.text or fact in message.html, (fact, subject)
    assert "http://127.0.0.1:8000/account/security" in message.text
    assert f"Hello {user.name}," in message.text


def test_the_html_part_escapes_what_it_shows(services, make_user, mailbox):
    member = make_user()
    with services.db.reading() as s:
        user = s.get(User, member.id)
    services.mail.notify_password_changed(
        user, RequestContext(ip="198.51.100.1", user_agent="<script>alert(1)</script>")
    )
    [message] = wait_for_subject(mailbox, member.email, "Your password was changed")
    assert "<script>" not in message.html and "&lt;" not in message.text


def test_an_unknown_browser_and_address_are_said_plainly(services, make_user, mailbox):
    member = make_user()
    with services.db.reading() as s:
        user = s.get(User, member.id)
    services.mail.notify_two_factor_disabled(user, RequestContext())
    [message] = wait_for_subject(mailbox, member.email, "Two-factor authentication was turned off")
    assert "Unknown browser" in message.text and "IP address: not known" in message.text


@pytest.mark.parametrize(
    ("purpose", "subject"),
    [
        ("sign_in", "Your Twofold sign-in code"),
        ("reauth", "Your Twofold confirmation code"),
        ("confirm_address", "Confirm your email for sign-in codes"),
    ],
)
def test_code_emails_carry_the_code_in_both_parts_but_not_the_subject(services, make_user, mailbox, purpose, subject):
    member = make_user()
    with services.db.reading() as s:
        user = s.get(User, member.id)
    assert services.mail.send_code(user, code="31415926", purpose=purpose, minutes=10, context=CONTEXT) is True
    [message] = mailbox.wait_for(1, to=member.email)  # sent synchronously: already there
    assert message.subject == subject and "31415926" not in message.subject
    assert "31415926" in message.text and "31415926" in message.html
    assert "10 minutes" in message.text and "Chrome on Windows" in message.text and "Never share" in message.text


def test_security_emails_say_the_time_in_the_practice_time_zone(services, make_user, mailbox, practice):
    services.policies.update(
        practice_id=practice.id, actor_id=None, changes={"time_zone": "America/Chicago"}, context=RequestContext()
    )
    member = make_user()
    with services.db.reading() as s:
        user = s.get(User, member.id)
        services.mail.notify_password_changed(user, RequestContext())
    [message] = wait_for_subject(mailbox, member.email, "Your password was changed")
    assert "Monday 2 November 2026, 03:00 CST" in message.text  # 09:00 UTC
    assert "UTC" not in message.text
