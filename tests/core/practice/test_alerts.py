"""Admin alerts: each kind is raised where it happens, in that transaction, and its email reaches the
practice's admins over real SMTP after the commit; each admin's choice (off, digest) is kept; the daily
digest goes once per admin and day of the practice's calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.support.base import backends
from tests.support.practice_admin import user_row
from tests.support.recovery import wait_for_subject
from twofold.audit import AlertKind, EventTag
from twofold.context import RequestContext
from twofold.core.practice.alerts import LOW_BACKUP_CODES, AlertDeliveryUnknown, AlertKindUnknown
from twofold.errors import NotFound
from twofold.factors.recovery_codes.factor import LOW_WATER
from twofold.store.models import Alert, AlertDigest, AlertPreference, AuditEvent, User

CONTEXT = RequestContext(ip="203.0.113.7", user_agent="pytest")
PRACTICE = "Riverside Family Practice"


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def admins(make_user):
    """Two admins of the practice (each with an authenticator app)."""
    return make_user(role="admin", email="ada@riverside.example"), make_user(role="admin", email="bo@riverside.example")


@pytest.fixture
def member(make_user):
    return make_user(role="provider", with_totp=True, email="dr.lee@riverside.example")


def alert_subject(name: str, label: str) -> str:
    return f"Twofold alert: {name} - {label.lower()}"


def alerts_of(services) -> list[Alert]:
    with services.db.reading() as s:
        return list(s.scalars(select(Alert).order_by(Alert.id)).all())


def no_alert_to(services, mailbox, address: str) -> bool:
    """Nothing but the admin's own security emails reached ``address`` (once every queued email is out)."""
    assert services.notifier.flush(timeout=10)
    return [m.subject for m in mailbox.to(address) if m.subject.startswith("Twofold")] == []


def use_backup_codes(services, member, count: int) -> None:
    """Claim ``count`` of the member's backup codes through the factor, one transaction each."""
    for code in member.recovery_codes[:count]:
        with services.db.transaction() as s:
            user = s.get(User, member.id)
            assert services.recovery_codes.verify(s, user=user, response=code).accepted
    member.recovery_codes = member.recovery_codes[count:]


def test_turning_two_factor_off_emails_every_admin(services, mailbox, admins, member, clock):
    services.accounts.disable_two_factor(
        user=user_row(services, member.id), password=member.password, code=member.code(clock), context=CONTEXT
    )
    subject = alert_subject("Dr.Lee", "Turned two-factor authentication off")
    for admin in admins:
        (message,) = wait_for_subject(mailbox, admin.email, subject)
        assert "Dr.Lee (dr.lee@riverside.example). Turned two-factor authentication off." in message.text
        assert f"/admin/members/{member.id}" in message.text
        assert "02 Nov 2026, 09:" in message.text  # the practice's zone (UTC here), with the time
        assert (
            f'/admin/members/{member.id}"' in message.html and "Turned two-factor authentication off." in message.html
        )
    (alert,) = alerts_of(services)
    assert (alert.kind, alert.subject_id, alert.practice_id) == ("two_factor_disabled", member.id, member.practice_id)
    # The member is told by their own security email, not by an admin alert.
    assert all(not m.subject.startswith("Twofold alert") for m in mailbox.to(member.email))


def test_a_backup_code_used_at_sign_in_emails_the_admins_without_the_code(
    services, client, mailbox, admins, member, clock
):
    started = client.post("/api/v1/sign-in", json={"email": member.email, "password": member.password}).json()
    code = member.recovery_codes[0]
    done = client.post(
        f"/api/v1/sign-in/{started['flow_id']}/second-factor", json={"method": "recovery_code", "code": code}
    )
    assert done.json()["status"] == "signed_in"
    (message,) = wait_for_subject(mailbox, admins[0].email, alert_subject("Dr.Lee", "Used a backup code"))
    assert "Used a backup code (9 left)." in message.text
    assert code not in message.text and code.replace("-", "") not in message.text
    assert code not in message.html and code.replace("-", "") not in message.html
    (alert,) = alerts_of(services)
    assert alert.kind == "backup_code_used" and alert.details == {"codes_left": 9}


def test_running_low_on_backup_codes_comes_with_the_use_in_one_email(services, mailbox, admins, member):
    assert LOW_BACKUP_CODES == LOW_WATER  # the admins' "low" is the member's own Security page warning
    use_backup_codes(services, member, 10 - LOW_WATER - 1)
    assert [a.kind for a in alerts_of(services)] == ["backup_code_used"] * (10 - LOW_WATER - 1)
    use_backup_codes(services, member, 1)
    assert [a.kind for a in alerts_of(services)][-2:] == ["backup_code_used", "backup_codes_low"]
    (message,) = wait_for_subject(mailbox, admins[1].email, "Twofold alerts: Dr.Lee")
    assert f"Used a backup code ({LOW_WATER} left)." in message.text
    assert f"Has {LOW_WATER} backup codes left." in message.text


def test_a_lockout_alerts_the_admins_once(services, client, mailbox, admins, member):
    for _ in range(6):
        client.post("/api/v1/sign-in", json={"email": member.email, "password": "not the password"})
    locked = [e for e in _events(services) if e.event == EventTag.LOCKED_OUT]
    assert len(locked) == 1
    (alert,) = [a for a in alerts_of(services) if a.kind == "locked_out"]
    assert alert.subject_id == member.id
    (message,) = wait_for_subject(
        mailbox, admins[0].email, alert_subject("Dr.Lee", "Locked out after too many wrong tries")
    )
    assert "Locked out after too many wrong tries (for 5 min)." in message.text


def test_a_reset_tells_the_other_admins_but_not_the_one_who_did_it(services, mailbox, admins, member, clock):
    acting, other = admins
    services.resets.reset_member_two_factor(
        practice_id=member.practice_id,
        admin=user_row(services, acting.id),
        member_id=member.id,
        password=acting.password,
        code=acting.code(clock),
        reason="lost phone",
        context=CONTEXT,
    )
    (message,) = wait_for_subject(
        mailbox, other.email, alert_subject("Dr.Lee", "Two-factor authentication reset by an admin")
    )
    assert "Two-factor authentication reset by Ada." in message.text
    assert no_alert_to(services, mailbox, acting.email)
    (alert,) = alerts_of(services)
    assert (alert.kind, alert.actor_id) == ("two_factor_reset", acting.id)


def test_an_alert_whose_transaction_rolls_back_is_neither_kept_nor_sent(services, mailbox, admins, member):
    def failing_change() -> None:
        with services.db.transaction() as s:
            services.audit.record(
                s, EventTag.TWO_FACTOR_DISABLED, context=CONTEXT, practice_id=member.practice_id, subject_id=member.id
            )
            raise RuntimeError("the change failed after its event was written")

    with pytest.raises(RuntimeError):
        failing_change()
    assert alerts_of(services) == []
    assert no_alert_to(services, mailbox, admins[0].email)


def test_off_and_digest_send_nothing_as_it_happens(services, mailbox, admins, member, clock):
    quiet, digest = admins
    services.alerts.set_preferences(
        practice_id=member.practice_id, user_id=quiet.id, changes={"two_factor_disabled": "off"}, context=CONTEXT
    )
    services.alerts.set_preferences(
        practice_id=member.practice_id, user_id=digest.id, changes={"two_factor_disabled": "digest"}, context=CONTEXT
    )
    assert services.alerts.preferences(user_id=quiet.id)["two_factor_disabled"] == "off"
    assert services.alerts.preferences(user_id=quiet.id)["locked_out"] == "immediate"  # the default, unchanged
    services.accounts.disable_two_factor(
        user=user_row(services, member.id), password=member.password, code=member.code(clock), context=CONTEXT
    )
    assert len(alerts_of(services)) == 1  # still recorded, and shown on the Members page
    assert no_alert_to(services, mailbox, quiet.email)
    assert no_alert_to(services, mailbox, digest.email)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"two_factor_disabled": "weekly"}, AlertDeliveryUnknown),
        ({"unknown_kind": "off"}, AlertKindUnknown),
        ({"locked_out": "off", "two_factor_reset": "sometimes"}, AlertDeliveryUnknown),
    ],
)
def test_bad_choices_are_refused_and_change_nothing(services, admins, changes, error):
    with pytest.raises(error):
        services.alerts.set_preferences(
            practice_id=admins[0].practice_id, user_id=admins[0].id, changes=changes, context=CONTEXT
        )
    with services.db.reading() as s:
        assert s.scalars(select(AlertPreference)).all() == []


def test_the_daily_digest_goes_once_per_day_in_the_practice_time_zone(
    services, mailbox, admins, member, clock, make_user
):
    ada, bo = admins
    services.policies.update(
        practice_id=member.practice_id, actor_id=None, changes={"time_zone": "America/Chicago"}, context=CONTEXT
    )
    for kind in ("two_factor_disabled", "backup_code_used"):
        services.alerts.set_preferences(
            practice_id=member.practice_id, user_id=bo.id, changes={kind: "digest"}, context=CONTEXT
        )
    # 2 Nov 2026 23:30 in Chicago (CST, UTC-6) is 3 Nov 05:30 UTC: Chicago's 2 November.
    clock.set(datetime(2026, 11, 3, 5, 30, tzinfo=UTC))
    use_backup_codes(services, member, 1)
    services.accounts.disable_two_factor(
        user=user_row(services, member.id), password=member.password, code=member.code(clock), context=CONTEXT
    )
    assert services.alerts.send_digests() == 0  # Chicago's 2 November is not over yet
    clock.set(datetime(2026, 11, 3, 6, 30, tzinfo=UTC))  # 00:30 on 3 November in Chicago
    assert services.alerts.send_digests() == 1
    (digest,) = wait_for_subject(mailbox, bo.email, "Twofold daily alerts: 2 on 02 Nov 2026")
    assert "02 Nov 2026, 23:30 CST: Dr.Lee (dr.lee@riverside.example). Used a backup code (9 left)." in digest.text
    assert "Turned two-factor authentication off." in digest.text
    clock.advance(hours=5)
    assert services.alerts.send_digests() == 0  # the same day again: already sent
    clock.advance(days=1)
    assert services.alerts.send_digests() == 0  # a day without alerts sends nothing
    assert services.notifier.flush(timeout=10)
    assert len([m for m in mailbox.to(bo.email) if m.subject.startswith("Twofold daily")]) == 1
    assert [m.subject for m in mailbox.to(bo.email) if "alert" in m.subject] == [digest.subject]
    # Ada kept "immediately": she had both as they happened, and no digest.
    assert not [m for m in mailbox.to(ada.email) if m.subject.startswith("Twofold daily")]


def test_each_practice_sees_and_dismisses_only_its_own_alerts(
    services, admins, member, clock, make_practice, make_user
):
    other = make_practice("Hillside Clinic")
    stranger = make_user(role="admin", practice_id=other.id, email="admin@hillside.example")
    services.accounts.disable_two_factor(
        user=user_row(services, member.id), password=member.password, code=member.code(clock), context=CONTEXT
    )
    assert services.alerts.recent(practice_id=other.id) == []
    (view,) = services.alerts.recent(practice_id=member.practice_id)
    with pytest.raises(NotFound):
        services.alerts.acknowledge(practice_id=other.id, actor_id=stranger.id, alert_id=view.id, context=CONTEXT)
    assert services.alerts.recent(practice_id=member.practice_id)[0].acknowledged_at is None
    services.alerts.acknowledge(
        practice_id=member.practice_id, actor_id=admins[0].id, alert_id=view.id, context=CONTEXT
    )
    assert services.alerts.recent(practice_id=member.practice_id)[0].acknowledged_at == clock.now()
    # Dismissed ones leave the list after 7 days; ones not dismissed stay until they are.
    clock.advance(days=8)
    assert services.alerts.recent(practice_id=member.practice_id) == []


def _events(services) -> list[AuditEvent]:
    with services.db.reading() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all())


def test_the_digest_is_claimed_before_it_is_sent(services, admins, member, clock):
    """A second process running the digest at the same moment finds the day claimed."""
    services.alerts.set_preferences(
        practice_id=member.practice_id, user_id=admins[1].id, changes={"locked_out": "digest"}, context=CONTEXT
    )
    clock.advance(days=1)
    assert services.alerts.send_digests() == 0
    with services.db.reading() as s:
        (claim,) = s.scalars(select(AlertDigest)).all()
    assert (claim.user_id, claim.day, claim.alerts) == (
        admins[1].id,
        (clock.now() - timedelta(days=1)).date().isoformat(),
        0,
    )


def test_dismissed_alerts_are_purged_after_the_keeping_period_and_others_kept(services, admins, member, clock):
    for kind in (AlertKind.LOCKED_OUT, AlertKind.BACKUP_CODE_USED):
        with services.db.transaction() as s:
            services.audit.alerts.raise_alert(s, kind=kind, practice_id=member.practice_id, subject_id=member.id)
    dismissed, kept = sorted(services.alerts.recent(practice_id=member.practice_id), key=lambda v: v.id)
    services.alerts.acknowledge(
        practice_id=member.practice_id, actor_id=admins[0].id, alert_id=dismissed.id, context=CONTEXT
    )
    clock.advance(days=29)
    assert services.retention.purge()["dismissed alerts"] == 0
    clock.advance(days=2)
    assert services.retention.purge()["dismissed alerts"] == 1
    assert [a.id for a in alerts_of(services)] == [kept.id]  # never dismissed: kept until it is


def test_the_alert_emails_html_part_escapes_what_members_typed(services):
    from datetime import UTC, datetime

    from twofold.core.practice.alerts import AlertView

    view = AlertView(
        id=1,
        kind="backup_code_used",
        subject_id=7,
        subject_name='<img src=x onerror="alert(1)">',
        subject_email="a@riverside.example",
        actor_name=None,
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        details={"codes_left": 4},
        acknowledged_at=None,
    )
    message = services.alerts.recorder.message(
        to="admin@riverside.example", name="Ada <b>", practice="R & D", time_zone="UTC", views=[view]
    )
    assert "<img" not in message.html and "&lt;img src=x" in message.html
    assert "Ada &lt;b&gt;" in message.html and "R &amp; D" in message.html
    assert '<img src=x onerror="alert(1)">' in message.text  # the text part is text
    assert "/admin/members/7" in message.html and "Used a backup code (4 left)." in message.html
