"""``twofold alerts digest``: the daily digests from cron, sent once per admin and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.recovery import wait_for_subject
from twofold.audit import AlertKind
from twofold.context import RequestContext


def test_the_digest_command_sends_yesterdays_alerts_once(run, services, clock, make_user, mailbox):
    admin = make_user(role="admin", email="admin@riverside.example")
    member = make_user(role="staff", email="sam@riverside.example")
    services.alerts.set_preferences(
        practice_id=admin.practice_id, user_id=admin.id, changes={"locked_out": "digest"}, context=RequestContext()
    )
    # The command runs on the system clock: the alert is from yesterday, by that clock, in UTC.
    clock.set(datetime.now(UTC).replace(hour=12, minute=0) - timedelta(days=1))
    with services.db.transaction() as s:
        services.audit.alerts.raise_alert(
            s, kind=AlertKind.LOCKED_OUT, practice_id=member.practice_id, subject_id=member.id
        )
    first = run("alerts", "digest")
    assert first.exit_code == 0, first.output
    assert "1 digest email sent." in first.output
    (digest,) = wait_for_subject(mailbox, admin.email, f"Twofold daily alerts: 1 on {clock.now():%d %b %Y}")
    assert "Sam (sam@riverside.example). Locked out after too many wrong tries." in digest.text
    assert "https://signin.example.org/admin/members/" in digest.text  # links from the one public origin
    again = run("alerts", "digest")
    assert again.exit_code == 0 and "0 digest emails sent." in again.output
