"""When mail cannot be sent: the person waiting for a code is told at once, failed sends are retried,
and a notice that never arrives is shown on the member's Security page."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from tests.support.mail import Mailbox, _free_port
from tests.support.recovery import (
    SIGN_IN_CODE,
    add_email_method,
    emailed_code,
    second_factor,
    start_flow,
    wait_for_subject,
)
from twofold.core.notifier import SmtpConfig, SmtpNotifier
from twofold.store.models import AuditEvent


class FlakyMailbox(Mailbox):
    """The real SMTP server, refusing the first ``failures`` messages with a temporary error (451)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        handler = self._controller.handler
        original = handler.handle_DATA

        async def handle_data(server, session, envelope):
            if self.failures > 0:
                self.failures -= 1
                return "451 Try again later"
            return await original(server, session, envelope)

        handler.handle_DATA = handle_data


@pytest.fixture
def flaky():
    box = FlakyMailbox(failures=0).start()
    yield box
    box.stop()


@pytest.fixture
def mailbox(flaky):
    return flaky


@pytest.fixture
def notifier(flaky):
    sender = SmtpNotifier(
        SmtpConfig(host=flaky.host, port=flaky.port), "Twofold <no-reply@twofold.test>", retry_delays=(0.05, 0.1)
    )
    yield sender
    sender.flush(timeout=5)


def test_a_code_whose_first_send_fails_is_reported_then_retried(client, anonymous, make_user, clock, flaky, services):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    clock.advance(seconds=30)
    add_email_method(client, flaky, member, clock)
    flow = start_flow(anonymous, member)["flow_id"]
    flaky.failures = 1
    response = anonymous.post(f"/api/v1/sign-in/{flow}/email-code")
    assert response.status_code == 503 and response.json()["error"] == "email_not_sent"
    assert "could not send the email" in response.json()["message"] and "keep trying" in response.json()["message"]
    # The background retry delivers it; the code in it works.
    code = emailed_code(wait_for_subject(flaky, member.email, SIGN_IN_CODE)[-1])
    assert second_factor(anonymous, flow, "email", code).status_code == 200


def test_a_code_page_says_when_the_email_could_not_be_sent(client, anonymous, make_user, clock, flaky):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    clock.advance(seconds=30)
    add_email_method(client, flaky, member, clock)
    flow = start_flow(anonymous, member)["flow_id"]
    flaky.failures = 1
    page = anonymous.post(f"/sign-in/{flow}/email-code")
    assert page.status_code == 503 and "We could not send the email just now" in page.text
    assert 'value="recovery_code"' in page.text  # the other ways in are still offered


def test_a_notice_given_up_on_is_shown_on_the_security_page(client, make_user, clock, flaky, services, caplog):
    flaky.failures = 100
    with caplog.at_level(logging.INFO, logger="twofold.mail"):
        member = make_user(with_totp=True)  # "Two-factor authentication is on" cannot be delivered
        assert services.notifier.flush(timeout=10)
    assert services.notifier.failed == 1
    assert "mail not delivered after 3 attempts" in caplog.text
    with services.db.reading() as s:
        [event] = (
            s.execute(select(AuditEvent).where(AuditEvent.event == "account:security_email:undelivered"))
            .scalars()
            .all()
        )
    assert event.subject_id == member.id and event.details == {"kind": "two_factor_enabled", "attempts": 3}
    sign_in(client, member, clock)
    page = client.get("/account/security")
    assert "Emails we could not deliver" in page.text and "Two-factor authentication is on" in page.text
    dismissed = client.post("/account/security/undelivered/dismiss", follow_redirects=True)
    assert "Emails we could not deliver" not in dismissed.text


def test_sending_never_fails_a_sign_in(anonymous, make_user, clock, flaky):
    member = make_user(with_totp=True)
    flaky.failures = 100
    flow = start_flow(anonymous, member)["flow_id"]
    response = second_factor(anonymous, flow, "recovery_code", member.recovery_codes[0])
    assert response.status_code == 200  # its "backup code used" notice fails in the background


def test_no_code_reaches_the_log(client, anonymous, make_user, clock, flaky, caplog):
    member = make_user(with_totp=True)
    sign_in(client, member, clock)
    clock.advance(seconds=30)
    with caplog.at_level(logging.DEBUG):
        add_email_method(client, flaky, member, clock)
        flow = start_flow(anonymous, member)["flow_id"]
        flaky.failures = 1
        anonymous.post(f"/api/v1/sign-in/{flow}/email-code")
        code = emailed_code(wait_for_subject(flaky, member.email, SIGN_IN_CODE)[-1])
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("twofold"))
    assert "mail send failed" in ours and "mail sent" in ours
    assert code not in ours and member.email not in ours  # addresses are masked, codes never logged


def test_without_smtp_mail_goes_to_the_outbox_and_the_log_says_where(tmp_path, caplog):
    from twofold.core.notifier import Message, OutboxNotifier

    outbox = OutboxNotifier(tmp_path / "outbox", "Twofold <no-reply@twofold.test>")
    with caplog.at_level(logging.INFO, logger="twofold.mail"):
        assert outbox.send_now(Message(to="a@b.example", subject="Code", text="12345678", html="<p>12345678</p>"))
    [path] = (tmp_path / "outbox").glob("*.eml")
    assert str(path) in caplog.text and b"12345678" in path.read_bytes()


def test_a_dead_smtp_server_fails_send_now_quickly():
    sender = SmtpNotifier(
        SmtpConfig(host="127.0.0.1", port=_free_port()), "Twofold <no-reply@twofold.test>", retry_delays=(0.01,)
    )
    from twofold.core.notifier import Message

    assert sender.send_now(Message(to="a@b.example", subject="x", text="y"), timeout=2) is False
    assert sender.flush(timeout=5) and sender.failed == 1
