"""``twofold audit anchor`` and ``twofold audit verify --anchor``: the chain heads, signed and kept elsewhere."""

from __future__ import annotations

import json

from sqlalchemy import delete, select, update

from tests.support.recovery import wait_for_subject
from twofold.store.models import AuditChainHead, AuditEvent


def cut_and_rewind(services, practice_id: int, from_seq: int) -> None:
    """Delete the newest events of a chain and point its head at the last one left."""
    with services.db.transaction() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq >= from_seq))
        last = s.execute(
            select(AuditEvent).where(AuditEvent.chain == practice_id).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
        s.execute(
            update(AuditChainHead).where(AuditChainHead.chain == practice_id).values(seq=last.seq, hash=last.hash)
        )


def test_verify_against_a_saved_anchor_names_the_events_cut_off(run, services, practice, make_user, tmp_path):
    for number in range(4):
        make_user(role="staff", email=f"staff{number}@riverside.example")
    anchored = run("audit", "anchor")
    assert anchored.exit_code == 0, anchored.output
    statement = json.loads(anchored.stdout)
    [head] = [h for h in statement["heads"] if h["chain"] == practice.id]
    assert head["seq"] == 5 and len(head["hash"]) == 64 and head["at"] and statement["signature"]
    saved = tmp_path / "anchor.json"
    saved.write_text(anchored.stdout)

    ok = run("audit", "verify", "--anchor", str(saved))
    assert ok.exit_code == 0 and "extends the anchor" in ok.output

    cut_and_rewind(services, practice.id, 4)
    assert run("audit", "verify").exit_code == 0  # consistent in itself
    bad = run("audit", "verify", "--anchor", str(saved))
    assert bad.exit_code == 1
    assert "Riverside Family Practice: first bad event is event 4: events 4 to 5 are missing" in bad.output


def test_an_edited_or_unreadable_anchor_is_refused(run, services, practice, make_user, tmp_path):
    make_user(role="staff")
    statement = json.loads(run("audit", "anchor").stdout)
    for head in statement["heads"]:
        if head["chain"] == practice.id:
            head["seq"] -= 1  # made to match a chain rewound by one event
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(statement))
    refused = run("audit", "verify", "--anchor", str(edited))
    assert refused.exit_code == 1 and "signature does not check out" in refused.output

    garbage = tmp_path / "garbage.json"
    garbage.write_text("this is not an anchor")
    unreadable = run("audit", "verify", "--anchor", str(garbage))
    assert unreadable.exit_code == 2 and "not JSON" in unreadable.output
    missing = run("audit", "verify", "--anchor", str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_anchor_email_sends_each_practice_only_its_own_head(
    run, services, practice, make_practice, make_user, mailbox, tmp_path
):
    admin = make_user(role="admin", email="admin@riverside.example")
    make_user(role="staff", email="staff@riverside.example")
    lakeside = make_practice("Lakeside Clinic")
    other_admin = make_user(role="admin", email="admin@lakeside.example", practice_id=lakeside.id)
    with services.db.transaction() as s:  # Lakeside's log was edited in the database
        s.execute(
            update(AuditEvent).where(AuditEvent.chain == lakeside.id, AuditEvent.seq == 1).values(details={"name": "x"})
        )

    result = run("audit", "anchor", "--email")
    assert result.exit_code == 1  # a chain does not verify
    assert "Lakeside Clinic: first bad event is event 1" in result.stderr
    assert "Riverside Family Practice: signed head emailed to 1 of 1 admin(s)" in result.stderr

    [mail] = wait_for_subject(mailbox, admin.email, "Audit log anchor for Riverside Family Practice")
    statement = mail.text[mail.text.index("{") :]
    heads = json.loads(statement)["heads"]
    assert [h["chain"] for h in heads] == [practice.id]  # nothing of another practice
    saved = tmp_path / "from-the-email.json"
    saved.write_text(statement)  # what an admin saves from the email is an anchor the operator can use
    checked = run("audit", "verify", "--practice", practice.name, "--anchor", str(saved))
    assert checked.exit_code == 0 and "extends the anchor" in checked.output
    [warning] = wait_for_subject(mailbox, other_admin.email, "Audit log check FAILED for Lakeside Clinic")
    assert "first bad event is event 1" in warning.text
    assert not mailbox.to("staff@riverside.example")
