"""The outbox (mail without SMTP): what it writes can be read by the operator only."""

from __future__ import annotations

import stat

from twofold.core.notifier import Message, OutboxNotifier


def test_outbox_messages_are_the_owners_alone(tmp_path):
    folder = tmp_path / "var" / "outbox"
    outbox = OutboxNotifier(folder, "Twofold <no-reply@twofold.localhost>")
    assert outbox.send_now(Message(to="ana@riverside.example", subject="Set up", text="https://example.org/setup/x"))
    [written] = folder.glob("*.eml")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "ana@riverside.example" in written.read_text()
