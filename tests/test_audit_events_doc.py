"""docs/audit-events.md names every event the code can write."""

from pathlib import Path

from twofold.audit import EventTag

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-events.md"


def test_every_event_tag_is_documented():
    text = DOC.read_text()
    missing = [tag.value for tag in EventTag if f"`{tag.value}`" not in text]
    assert missing == []
