"""Adding an address that has an account in another practice: the admin's answer is that of a new
address, and only the address's owner can act on it, by signing in and accepting the invitation."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import event, select

from tests.conftest import PASSWORD
from tests.support.base import Member, backends, sign_in
from tests.support.practice_admin import events, invitations, setup_path, user_row
from twofold.context import RequestContext
from twofold.core.practice.setup_links import SETUP_LINK_TTL
from twofold.store.models import TotpCredential, User

OWNER = "owner@lakeside.example"
NEW = "new.person@riverside.example"


@pytest.fixture(params=backends())
def backend(request):
    return request.param


@pytest.fixture
def lakeside(make_practice):
    return make_practice("Lakeside Clinic")


@pytest.fixture
def owner(make_user, lakeside) -> Member:
    """An account with an authenticator app in Lakeside, whose practice has another admin too."""
    make_user(role="admin", email="boss@lakeside.example", practice_id=lakeside.id)
    return make_user(role="provider", with_totp=True, email=OWNER, practice_id=lakeside.id)


def _shape(body: dict) -> dict:
    """An answer without what the admin typed themself (the address and name) and the new row's id."""
    return {key: value for key, value in body.items() if key not in ("id", "email", "name")}


def _page(text: str, email: str, name: str) -> str:
    """A member's page without the address, name and id the admin gave or got."""
    return re.sub(r"(/members/|person=)\d+", r"\1ID", text.replace(email, "EMAIL").replace(name, "NAME"))


def test_the_admin_sees_the_same_answer_for_an_address_elsewhere_and_a_new_one(client, admin, owner, services, mailbox):
    before = len(events(services, practice_id=admin.practice_id))
    new = client.post("/api/v1/practice/members", json={"email": NEW, "name": "New Person", "role": "staff"})
    elsewhere = client.post("/api/v1/practice/members", json={"email": OWNER, "name": "Owner", "role": "staff"})
    assert new.status_code == elsewhere.status_code == 201
    assert _shape(new.json()) == _shape(elsewhere.json())

    # The page: the same redirect to the new member's page, which says the same things.
    page_new = client.post(
        "/admin/members/new",
        data={"email": "page.new@riverside.example", "name": "Page New", "role": "provider"},
        follow_redirects=False,
    )
    other = Member(0, "other@lakeside.example", PASSWORD, owner.practice_id, "staff")
    services.accounts.add_member(
        practice_id=owner.practice_id,
        email=other.email,
        name="Other",
        role="staff",
        password=PASSWORD,
        context=RequestContext(),
    )
    page_elsewhere = client.post(
        "/admin/members/new",
        data={"email": other.email, "name": "Page Else", "role": "provider"},
        follow_redirects=False,
    )
    assert page_new.status_code == page_elsewhere.status_code == 303
    shown_new = client.get(page_new.headers["location"]).text
    shown_elsewhere = client.get(page_elsewhere.headers["location"]).text
    assert _page(shown_new, "page.new@riverside.example", "Page New") == _page(
        shown_elsewhere, other.email, "Page Else"
    )

    # CSV, through the API and the page: one row each, both imported.
    services.accounts.add_member(
        practice_id=owner.practice_id,
        email="csv.else@lakeside.example",
        name="Csv Else",
        role="staff",
        password=PASSWORD,
        context=RequestContext(),
    )
    csv = "email,name,role\ncsv.new@riverside.example,Csv New,staff\ncsv.else@lakeside.example,Csv Else,staff\n"
    imported = client.post("/api/v1/practice/members/import", content=csv, headers={"content-type": "text/csv"})
    assert imported.status_code == 200
    rows = imported.json()["rows"]
    assert [_shape(r) for r in rows if r["email"].startswith("csv.new")] == [
        {**_shape(r), "row": 2} for r in rows if r["email"].startswith("csv.else")
    ]
    assert {r["status"] for r in rows} == {"imported"} and imported.json()["failed"] == 0
    services.accounts.add_member(
        practice_id=owner.practice_id,
        email="upload.else@lakeside.example",
        name="Up Else",
        role="staff",
        password=PASSWORD,
        context=RequestContext(),
    )
    upload = client.post(
        "/admin/members/import",
        files={"file": ("m.csv", io.BytesIO(b"email,name,role\nupload.else@lakeside.example,Up Else,staff\n"))},
        data={"send_setup_links": "true"},
    )
    assert upload.status_code == 200
    assert "<strong>1</strong> added, <strong>0</strong> not added" in upload.text

    # The list shows both waiting for their link; the audit log reads the same for each.
    listed = {m["email"]: m for m in client.get("/api/v1/practice/members").json()["items"]}
    assert (
        listed[OWNER]["two_factor"]
        == listed[NEW]["two_factor"]
        == {
            "enabled": False,
            "methods": [],
            "recovery_codes_left": 0,
        }
    )
    by_subject: dict = {}
    for e in events(services, practice_id=admin.practice_id)[before:]:
        by_subject.setdefault(e.subject_id, []).append((e.event, e.details))
    new_id, owner_id = new.json()["id"], elsewhere.json()["id"]
    assert by_subject[new_id] == by_subject[owner_id] != []
    # One email to each address: a set-up link to the new one, an invitation to the owner.
    assert len(mailbox.wait_for(1, to=NEW)) == 1
    [invitation] = invitations(mailbox, OWNER)
    assert "invites you" in invitation.subject and "/setup/" in invitation.text


def test_an_address_of_this_practice_is_still_a_duplicate(client, admin):
    answer = client.post("/api/v1/practice/members", json={"email": admin.email, "name": "Again", "role": "staff"})
    assert answer.status_code == 409 and answer.json()["error"] == "duplicate_email"


def test_the_owner_signs_in_and_accepts_and_the_account_moves(
    client, anonymous, admin, owner, services, mailbox, clock, app
):
    from fastapi.testclient import TestClient

    assert (
        client.post("/api/v1/practice/members", json={"email": OWNER, "name": "Dr Owner", "role": "staff"}).status_code
        == 201
    )
    pending_id = client.get("/api/v1/practice/members", params={"q": OWNER}).json()["items"][0]["id"]
    link = setup_path(invitations(mailbox, OWNER)[-1])

    # Before accepting, the owner's sign-in reaches their own practice; another browser of theirs stays signed in.
    with TestClient(app, base_url="http://127.0.0.1") as elsewhere_browser:
        assert sign_in(elsewhere_browser, owner, clock).status_code == 200
        assert elsewhere_browser.get("/api/v1/me").json()["id"] == owner.id
        page = anonymous.get(link)
        assert page.status_code == 200 and "Sign in to accept" in page.text
        refused = anonymous.post(f"{link}/accept")
        assert refused.status_code == 401
        clock.advance(seconds=30)
        assert sign_in(anonymous, owner, clock).status_code == 200
        me = anonymous.get("/api/v1/me").json()
        assert me["id"] == owner.id and user_row(services, owner.id).practice_id == owner.practice_id
        page = anonymous.get(link)
        assert "Accept and move my account" in page.text
        moved = anonymous.post(f"{link}/accept", follow_redirects=False)
        assert moved.status_code == 303 and "moved_practice" in moved.headers["location"]
        assert anonymous.get("/api/v1/me").status_code == 401
        assert elsewhere_browser.get("/api/v1/me").status_code == 401  # every session of the account ended

    account = user_row(services, owner.id)
    assert (account.practice_id, account.role) == (admin.practice_id, "staff")
    assert user_row(services, pending_id) is None
    with services.db.reading() as s:
        assert s.execute(select(TotpCredential).where(TotpCredential.user_id == owner.id)).first() is not None
    clock.advance(seconds=30)
    assert sign_in(anonymous, owner, clock).status_code == 200  # the same password and app
    assert anonymous.get("/api/v1/me").json()["id"] == owner.id
    listed = client.get("/api/v1/practice/members", params={"q": OWNER}).json()["items"]
    assert [(m["id"], m["two_factor"]["enabled"]) for m in listed] == [(owner.id, True)]
    assert anonymous.get(link).status_code in (404, 410)  # the link is spent
    [out] = events(services, "practice:member:moved_out", practice_id=owner.practice_id)
    assert out.subject_id == owner.id and out.details["sessions_ended"] == 2
    [into] = events(services, "practice:member:moved_in", practice_id=admin.practice_id)
    assert into.subject_id == owner.id and into.details["invited_as"] == pending_id


def test_the_last_admin_of_a_practice_cannot_move(
    client, anonymous, admin, make_user, make_practice, services, mailbox, clock
):
    solo = make_practice("Solo Surgery")
    only_admin = make_user(role="admin", email="only@solo.example", practice_id=solo.id)
    assert (
        client.post(
            "/api/v1/practice/members", json={"email": only_admin.email, "name": "O", "role": "staff"}
        ).status_code
        == 201
    )
    link = setup_path(invitations(mailbox, only_admin.email)[-1])
    assert sign_in(anonymous, only_admin, clock).status_code == 200
    refused = anonymous.post(f"{link}/accept")
    assert refused.status_code == 409 and "last active admin" in refused.text
    assert user_row(services, only_admin.id).practice_id == solo.id
    assert anonymous.get("/api/v1/me").status_code == 200  # nothing happened: still signed in
    [event] = events(services, "practice:member:move_refused", practice_id=solo.id)
    assert event.details["reason"] == "last_admin"
    assert not events(services, "practice:member:move_refused", practice_id=admin.practice_id)


def test_an_ignored_invitation_expires_like_a_set_up_link(client, anonymous, admin, owner, services, mailbox, clock):
    assert (
        client.post("/api/v1/practice/members", json={"email": OWNER, "name": "Dr Owner", "role": "staff"}).status_code
        == 201
    )
    link = setup_path(invitations(mailbox, OWNER)[-1])
    clock.advance(seconds=int(SETUP_LINK_TTL.total_seconds()) + 1)
    assert sign_in(anonymous, owner, clock).status_code == 200
    gone = anonymous.get(link)
    assert gone.status_code == 410 and "expired" in gone.text
    assert anonymous.post(f"{link}/accept").status_code == 410
    assert user_row(services, owner.id).practice_id == owner.practice_id
    assert sign_in(client, admin, clock).status_code == 200  # the admin's session ended days ago
    listed = client.get("/api/v1/practice/members", params={"q": OWNER}).json()["items"]
    assert len(listed) == 1 and listed[0]["id"] != owner.id  # still pending, as an ignored set-up link is


def test_nobody_but_the_owner_can_use_the_invitation(client, anonymous, admin, owner, services, mailbox, clock):
    assert (
        client.post("/api/v1/practice/members", json={"email": OWNER, "name": "Dr Owner", "role": "admin"}).status_code
        == 201
    )
    pending_id = client.get("/api/v1/practice/members", params={"q": OWNER}).json()["items"][0]["id"]
    link = setup_path(invitations(mailbox, OWNER)[-1])
    hash_before = user_row(services, owner.id).password_hash

    # Whoever holds the link cannot choose a password for the address.
    chosen = anonymous.post(
        f"{link}/password", data={"password": "Admin-chosen pw 123", "password_again": "Admin-chosen pw 123"}
    )
    assert chosen.status_code == 409 and "Sign in" in chosen.text
    assert user_row(services, pending_id).password_changed_at is None
    assert user_row(services, owner.id).password_hash == hash_before
    # Nor sign in as it with that password, nor with the owner's password reach the inviting practice.
    flow = anonymous.post("/api/v1/sign-in", json={"email": OWNER, "password": "Admin-chosen pw 123"})
    assert flow.status_code == 401
    # The inviting admin, signed in, cannot accept it for the owner.
    not_yours = client.post(f"{link}/accept")
    assert not_yours.status_code == 409 and "another address" in not_yours.text
    # A new link (the admin's "send set-up link") is again an invitation to the owner's mailbox only.
    assert client.post(f"/api/v1/practice/members/{pending_id}/setup-link").status_code == 200
    again = invitations(mailbox, OWNER, 2)
    assert len(again) == 2 and all("Riverside" in m.subject for m in again)
    assert user_row(services, owner.id).practice_id == owner.practice_id
    assert not events(services, "practice:member:moved_in")


def test_an_address_claimed_after_it_was_added_elsewhere_signs_in_to_its_own_practice(
    client, anonymous, admin, lakeside, services, mailbox, clock
):
    """The pending row is older than the claimed account: sign-in still picks the claimed one."""
    assert (
        client.post("/api/v1/practice/members", json={"email": OWNER, "name": "Early", "role": "staff"}).status_code
        == 201
    )
    link = setup_path(mailbox.wait_for(1, to=OWNER)[-1])  # a set-up link: the address was new
    user = services.accounts.add_member(
        practice_id=lakeside.id, email=OWNER, name="Owner", role="staff", password=PASSWORD, context=RequestContext()
    )
    assert sign_in(anonymous, Member(user.id, OWNER, PASSWORD, lakeside.id, "staff")).status_code == 200
    me = anonymous.get("/api/v1/me").json()
    assert me["id"] == user.id
    with services.db.reading() as s:
        rows = s.execute(select(User).where(User.email == OWNER).order_by(User.id)).scalars().all()
    assert [r.practice_id for r in rows] == [admin.practice_id, lakeside.id]
    # The older link of the other practice is now an invitation: it cannot set a password any more.
    page = anonymous.get(link)
    assert "Accept and move my account" in page.text


def test_adding_an_address_elsewhere_does_the_same_work_as_a_new_one(services, admin, owner, mailbox):
    """No obvious timing difference: the same statements, in the same number, and one email each."""

    def statements_to_add(email: str) -> list[str]:
        seen: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            seen.append(statement)  # bound parameters are not in the text: the same SQL for any address

        event.listen(services.db.engine, "before_cursor_execute", count)
        try:
            services.members.add_member(
                practice_id=admin.practice_id,
                actor_id=admin.id,
                email=email,
                name="Someone",
                role="staff",
                context=RequestContext(),
                link_base="http://127.0.0.1",
            )
        finally:
            event.remove(services.db.engine, "before_cursor_execute", count)
        return seen

    new, elsewhere = statements_to_add(NEW), statements_to_add(OWNER)
    assert new == elsewhere and len(new) > 3
    assert len(mailbox.wait_for(1, to=NEW)) == 1
    assert len(invitations(mailbox, OWNER)) == 1
