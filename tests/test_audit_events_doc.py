"""docs/audit-events.md names every event the code can write."""

from pathlib import Path

from twofold.audit import EVENT_LABELS, EventTag, event_label, events_labelled

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-events.md"


def test_every_event_tag_is_documented():
    text = DOC.read_text()
    missing = [tag.value for tag in EventTag if f"`{tag.value}`" not in text]
    assert missing == []


def test_every_event_tag_has_a_label_for_people():
    assert [tag.value for tag in EventTag if tag not in EVENT_LABELS] == []
    assert len(set(EVENT_LABELS.values())) == len(EVENT_LABELS)  # no two events read the same
    assert event_label("account:sign_in:locked_out") == "Locked out after too many wrong tries"
    assert event_label("account:passkey:added") == "Passkey added"  # a name without a label, in plain words
    assert events_labelled("  Locked   OUT ") == ["account:sign_in:locked_out"]
    assert events_labelled("") == []
