"""The outbox (mail without SMTP): what it writes can be read by the operator only."""

from __future__ import annotations

import stat

import pytest

from twofold.core.notifier import Message, OutboxNotifier, build_email


def test_outbox_messages_are_the_owners_alone(tmp_path):
    folder = tmp_path / "var" / "outbox"
    outbox = OutboxNotifier(folder, "Twofold <no-reply@twofold.localhost>")
    assert outbox.send_now(Message(to="ana@riverside.example", subject="Set up", text="https://example.org/setup/x"))
    [written] = folder.glob("*.eml")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "ana@riverside.example" in written.read_text()


@pytest.mark.parametrize(
    "to",
    [
        "ana@riverside.example, eve@evil.example",
        "Eve <eve@evil.example>",
        "ana@riverside.example\r\nBcc: eve@evil.example",
        "ana@riverside.example (Ana)",
        "",
    ],
)
def test_a_message_goes_to_exactly_one_plain_address(to):
    with pytest.raises(ValueError, match="not one plain email address"):
        build_email(Message(to=to, subject="Set up", text="x"), "Twofold <no-reply@twofold.test>")


def test_headers_are_built_by_the_email_library_and_take_no_line_breaks():
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        build_email(
            Message(to="ana@riverside.example", subject="Hi\r\nBcc: eve@evil.example", text="x"), "T <t@t.test>"
        )
    built = build_email(
        Message(to="ana@riverside.example", subject="Welcome to Ó Néill Clinic", text="x"), "T <t@t.test>"
    )
    assert [a.addr_spec for a in built["To"].addresses] == ["ana@riverside.example"]
    assert b"\nBcc" not in bytes(built) and "Ó Néill" in built["Subject"]


def test_the_smtp_envelope_names_only_the_one_recipient(notifier, mailbox):
    assert notifier.send_now(Message(to="ana@riverside.example", subject="Set up", text="x"))
    [received] = mailbox.wait_for(to="ana@riverside.example")
    assert received.rcpt_tos == ["ana@riverside.example"]
    assert not notifier.send_now(Message(to="ana@riverside.example, eve@evil.example", subject="Set up", text="x"))
    notifier.flush(timeout=5)
    assert not mailbox.to("eve@evil.example") and len(mailbox.messages) == 1
