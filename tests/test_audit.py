"""The audit log is tamper-evident: `verify` names the first changed, deleted, reordered or moved event.

The chain is keyed (HMAC under a key derived from the secret key), so the tamperings below are done
as someone with write access to the database but without the secret key would do them: relinking
with the old unkeyed SHA-256 formula or with HMAC under a guessed key. The newest events cut off
together with the head row rewound only show against an anchor kept outside the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from tests.conftest import backends
from twofold.audit import event_fields
from twofold.context import RequestContext
from twofold.core.practice.audit_log import Anchor
from twofold.crypto.chain import ChainKeys, canonical, link_hash
from twofold.errors import InvalidInput
from twofold.settings import Settings
from twofold.store.models import AuditChainHead, AuditEvent
from twofold.wiring import build_services


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def chain(services, practice, make_practice, clock):
    """Practice 1 with ten more events, and a second practice with its own chain."""
    for number in range(10):
        clock.advance(seconds=1)
        with services.db.transaction() as s:
            services.audit.record(
                s, "test:event", context=RequestContext(ip="10.0.0.1"), practice_id=practice.id, details={"n": number}
            )
    other = make_practice("Lakeside Clinic")
    return practice.id, other.id


def report(services, practice_id):
    [found] = services.audit_trail.verify(practice_id=practice_id)
    return found


def row(services, practice_id, seq) -> AuditEvent:
    with services.db.reading() as s:
        return s.execute(select(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == seq)).scalar_one()


def tamper(services, statement) -> None:
    with services.db.transaction() as s:
        s.execute(statement)


def test_an_untouched_log_verifies(services, chain):
    reports = services.audit_trail.verify()
    assert [r.chain for r in reports] == [0, chain[0], chain[1]]
    assert all(r.ok for r in reports)
    assert report(services, chain[0]).events == 11


CHANGES = [
    {"details": {"n": 99}},
    {"event": "practice:member:added"},
    {"ip": "192.0.2.66"},
    {"actor_id": 42},
    {"user_agent": "forged"},
]


def test_a_changed_event_is_named(services, chain):
    practice_id, other_id = chain
    for seq, values in enumerate(CHANGES, start=2):
        target = row(services, practice_id, seq)
        original = {name: getattr(target, name) for name in values}
        tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(**values))
        bad = report(services, practice_id).first_break
        assert (bad.seq, bad.event_id) == (seq, target.id) and "changed" in bad.problem, values
        tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(**original))
        assert report(services, practice_id).ok  # put back, the chain holds again
    tamper(
        services, update(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == 6).values(ip="192.0.2.1")
    )
    assert report(services, other_id).ok  # chains are verified on their own


def test_a_changed_time_is_named(services, chain):
    target = row(services, chain[0], 4)
    tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(at=target.at - timedelta(hours=1)))
    assert report(services, chain[0]).first_break.seq == 4


def test_a_deleted_event_is_named(services, chain):
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == chain[0], AuditEvent.seq == 5))
    bad = report(services, chain[0]).first_break
    assert bad.seq == 6 and "5 to 5 are missing" in bad.problem


def test_events_deleted_from_the_end_are_noticed(services, chain):
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == chain[0], AuditEvent.seq >= 10))
    bad = report(services, chain[0]).first_break
    assert bad.seq == 10 and bad.event_id is None and "deleted from the end" in bad.problem


def test_reordered_events_are_named(services, chain):
    practice_id = chain[0]
    first, second = row(services, practice_id, 3), row(services, practice_id, 4)
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=-1))
    tamper(services, update(AuditEvent).where(AuditEvent.id == second.id).values(seq=3))
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=4))
    bad = report(services, practice_id).first_break
    assert (bad.seq, bad.event_id) == (3, second.id) and "does not link" in bad.problem


# -- what someone with write access but without the secret key can do -------------------------


def unkeyed(prev_hash, fields) -> str:
    """The chain's formula before it was keyed: SHA-256 of the previous link and the canonical row."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(fields)}".encode()).hexdigest()


def guessed_key(prev_hash, fields) -> str:
    return link_hash(ChainKeys("a guess at the secret key, 32+ characters long").link_key, prev_hash, fields)


FORGERIES = [pytest.param(unkeyed, id="sha256"), pytest.param(guessed_key, id="hmac-guessed-key")]


def relink(services, chain_id, forge, *, from_seq=1) -> None:
    """Recompute every link of ``chain_id`` from ``from_seq`` on, and its head, with ``forge``."""
    with services.db.transaction() as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.chain == chain_id).order_by(AuditEvent.seq)).scalars()
        prev, last = "0" * 64, 0
        for event in rows:
            if event.seq >= from_seq:
                event.prev_hash = prev
                event.hash = forge(prev, event_fields(event))
            prev, last = event.hash, event.seq
        s.execute(update(AuditChainHead).where(AuditChainHead.chain == chain_id).values(seq=last, hash=prev))


def rewind_head(services, chain_id) -> None:
    """Point the head row at the chain's last remaining event, as if nothing came after it."""
    with services.db.transaction() as s:
        last = s.execute(
            select(AuditEvent).where(AuditEvent.chain == chain_id).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
        s.execute(update(AuditChainHead).where(AuditChainHead.chain == chain_id).values(seq=last.seq, hash=last.hash))


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_changed_event_with_every_link_recomputed_is_named(services, chain, forge):
    target = row(services, chain[0], 5)
    tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(details={"n": -1}))
    relink(services, chain[0], forge, from_seq=5)
    bad = report(services, chain[0]).first_break
    assert (bad.seq, bad.event_id) == (5, target.id) and "changed" in bad.problem


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_deleted_event_with_the_rest_renumbered_and_recomputed_is_named(services, chain, forge):
    practice_id = chain[0]
    moved_up = row(services, practice_id, 6)
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == 5))
    for seq in range(6, 12):
        tamper(
            services,
            update(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq == seq).values(seq=seq - 1),
        )
    relink(services, practice_id, forge, from_seq=5)
    bad = report(services, practice_id).first_break
    assert (bad.seq, bad.event_id) == (5, moved_up.id)


@pytest.mark.parametrize("forge", FORGERIES)
def test_swapped_events_with_the_links_recomputed_are_named(services, chain, forge):
    practice_id = chain[0]
    first, second = row(services, practice_id, 3), row(services, practice_id, 4)
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=-1))
    tamper(services, update(AuditEvent).where(AuditEvent.id == second.id).values(seq=3))
    tamper(services, update(AuditEvent).where(AuditEvent.id == first.id).values(seq=4))
    relink(services, practice_id, forge, from_seq=3)
    bad = report(services, practice_id).first_break
    assert (bad.seq, bad.event_id) == (3, second.id)


@pytest.mark.parametrize("forge", FORGERIES)
def test_an_event_moved_to_another_practices_chain_is_named_in_both(services, chain, forge):
    practice_id, other_id = chain
    moved = row(services, practice_id, 5)
    with services.db.reading() as s:
        other_last = s.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.chain == other_id)).scalar_one()
    tamper(
        services,
        update(AuditEvent)
        .where(AuditEvent.id == moved.id)
        .values(chain=other_id, practice_id=other_id, seq=other_last + 1),
    )
    relink(services, other_id, forge, from_seq=other_last + 1)  # the moved event, tidily appended
    bad = report(services, other_id).first_break
    assert (bad.seq, bad.event_id) == (other_last + 1, moved.id)
    bad = report(services, practice_id).first_break
    assert bad.seq == 6 and "5 to 5 are missing" in bad.problem


def test_a_deleted_head_row_neither_silences_the_chain_nor_goes_unnoticed(services, chain):
    practice_id = chain[0]
    tamper(services, delete(AuditChainHead).where(AuditChainHead.chain == practice_id))
    assert [r.chain for r in services.audit_trail.verify()] == [0, *chain]
    bad = report(services, practice_id).first_break
    assert bad.seq == 12 and "head record is missing" in bad.problem
    target = row(services, practice_id, 3)
    tamper(services, update(AuditEvent).where(AuditEvent.id == target.id).values(ip="192.0.2.99"))
    bad = report(services, practice_id).first_break
    assert (bad.seq, bad.event_id) == (3, target.id) and "changed" in bad.problem


def test_a_practice_whose_whole_log_was_deleted_is_named(services, chain):
    practice_id, other_id = chain
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == practice_id))
    tamper(services, delete(AuditChainHead).where(AuditChainHead.chain == practice_id))
    bad = report(services, practice_id).first_break
    assert bad.seq == 1 and "whole log was deleted" in bad.problem
    assert report(services, other_id).ok


# -- anchors: the head, signed and kept outside the database ---------------------------------


def test_an_anchor_states_each_heads_seq_hash_and_time_and_is_signed(services, chain, clock):
    anchor, broken = services.audit_trail.anchor_heads()
    assert broken == [] and services.audit_trail.signed_here(anchor)
    heads = {head.chain: head for head in anchor.heads}
    last = row(services, chain[0], 11)
    assert (heads[chain[0]].seq, heads[chain[0]].hash, heads[chain[0]].at) == (11, last.hash, last.at)
    assert heads[chain[0]].practice == "Riverside Family Practice" and anchor.issued_at == clock.now()
    again = Anchor.parse(anchor.to_json())
    assert again == anchor and services.audit_trail.signed_here(again)
    assert all(r.ok for r in services.audit_trail.verify(anchor=again))


def test_a_truncated_and_rewound_chain_fails_against_its_anchor(services, chain):
    practice_id, other_id = chain
    anchor, _ = services.audit_trail.anchor_heads()
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq >= 9))
    rewind_head(services, practice_id)
    assert report(services, practice_id).ok  # consistent in itself: only the anchor can tell
    reports = {r.chain: r for r in services.audit_trail.verify(anchor=anchor)}
    bad = reports[practice_id].first_break
    assert bad.seq == 9 and "9 to 11 are missing" in bad.problem and "anchor" in bad.problem
    assert reports[other_id].ok


def test_a_chain_cut_back_and_written_again_fails_against_its_anchor(services, chain, clock):
    practice_id = chain[0]
    anchor, _ = services.audit_trail.anchor_heads(practice_id=practice_id)
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == practice_id, AuditEvent.seq >= 9))
    rewind_head(services, practice_id)
    for number in range(5):  # the application goes on writing, with the key, past the anchored seq
        with services.db.transaction() as s:
            services.audit.record(
                s, "test:event", context=RequestContext(), practice_id=practice_id, details={"m": number}
            )
    assert report(services, practice_id).ok
    [found] = services.audit_trail.verify(practice_id=practice_id, anchor=anchor)
    assert found.first_break.seq == 11 and "not the event the anchor" in found.first_break.problem


def test_a_practice_deleted_with_its_whole_log_fails_against_its_anchor(services, chain):
    anchor, _ = services.audit_trail.anchor_heads()
    practice_id = chain[0]
    tamper(services, delete(AuditEvent).where(AuditEvent.chain == practice_id))
    tamper(services, delete(AuditChainHead).where(AuditChainHead.chain == practice_id))
    reports = {r.chain: r for r in services.audit_trail.verify(anchor=anchor)}
    assert reports[practice_id].first_break.seq == 1


def test_an_edited_or_foreign_anchor_is_not_signed_here(services, chain, settings, clock, notifier):
    anchor, _ = services.audit_trail.anchor_heads()
    rewound = tuple(replace(head, seq=head.seq - 1) if head.chain == chain[0] else head for head in anchor.heads)
    assert not services.audit_trail.signed_here(replace(anchor, heads=rewound))
    assert not services.audit_trail.signed_here(replace(anchor, issued_at=anchor.issued_at + timedelta(days=7)))
    elsewhere = build_services(
        settings.model_copy(update={"secret_key": "another installation's secret key, 32+ chars"}),
        clock=clock,
        notifier=notifier,
    )
    try:
        foreign, _ = elsewhere.audit_trail.anchor_heads()
    finally:
        elsewhere.close()
    assert not services.audit_trail.signed_here(foreign)


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '{"format": "twofold-audit-anchor/1"}', '{"format": "other", "heads": []}'],
)
def test_a_malformed_anchor_is_refused_clearly(text):
    with pytest.raises(InvalidInput):
        Anchor.parse(text)


def test_events_written_under_an_earlier_secret_key_verify_after_a_rotation(services, chain, settings, clock, notifier):
    anchor, _ = services.audit_trail.anchor_heads()
    rotated = build_services(
        Settings(
            **{
                **settings.model_dump(),
                "secret_key": "the new secret key after a rotation, 32+ chars",
                "old_secret_keys": [settings.secret_key],
            }
        ),
        clock=clock,
        notifier=notifier,
    )
    try:
        with rotated.db.transaction() as s:
            rotated.audit.record(s, "test:event", context=RequestContext(), practice_id=chain[0])
        assert all(r.ok for r in rotated.audit_trail.verify(anchor=anchor))
        assert rotated.audit_trail.signed_here(anchor)
    finally:
        rotated.close()
    # Without the earlier key, the events written under it no longer verify.
    [found] = services.audit_trail.verify(practice_id=chain[0])
    assert found.first_break.seq == 12
