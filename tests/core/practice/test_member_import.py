"""CSV import and export of members: every row reported, good rows imported whole, bad rows leave nothing."""

from __future__ import annotations

import csv
import io
import types

import pytest
from sqlalchemy import select

from tests.support.practice_admin import count_users, events
from twofold.context import RequestContext
from twofold.core.practice import members as members_module
from twofold.errors import InvalidInput
from twofold.store.models import SetupLink, User


def run_import(services, practice_id, text, *, send=False, link_base=None):
    return list(
        services.members.import_csv(
            practice_id=practice_id,
            actor_id=None,
            lines=io.StringIO(text),
            context=RequestContext(),
            send_setup_links=send,
            link_base=link_base,
        )
    )


def test_each_bad_row_is_reported_and_the_good_rows_are_imported(services, practice, make_practice, make_user):
    lakeside = make_practice("Lakeside Clinic")
    make_user(role="staff", email="taken@lakeside.example", practice_id=lakeside.id)
    make_user(role="staff", email="taken@riverside.example")
    text = (
        "email,name,role\n"
        "good.one@riverside.example,Good One,staff\n"
        "no-at-sign.example,Bad Address,staff\n"
        "spaces in@riverside.example,Bad Address,staff\n"
        "good.two@riverside.example,Good Two,surgeon\n"
        "good.three@riverside.example,,staff\n"
        "taken@riverside.example,Here Already,staff\n"
        "taken@lakeside.example,Elsewhere,staff\n"
        "GOOD.ONE@riverside.example,Twice,staff\n"
        "good.four@riverside.example\n"
        "\n"
        '"good.five@riverside.example","Five, Dr.",PROVIDER\n'
    )
    results = run_import(services, practice.id, text)
    assert [(r.row, r.status, r.error) for r in results] == [
        (2, "imported", None),
        (3, "failed", "invalid_email"),
        (4, "failed", "invalid_email"),
        (5, "failed", "unknown_role"),
        (6, "failed", "invalid_name"),
        (7, "failed", "duplicate_email"),
        (8, "imported", None),  # an account in another practice: added like a new address, its owner invited
        (9, "failed", "duplicate_email"),
        (10, "failed", "invalid_name"),
        (12, "imported", None),
    ]
    assert all(r.message for r in results if r.status == "failed")
    with services.db.reading() as s:
        imported = {
            u.email: (u.name, u.role) for u in s.execute(select(User).where(User.practice_id == practice.id)).scalars()
        }
    assert imported == {
        "taken@riverside.example": ("Taken", "staff"),
        "good.one@riverside.example": ("Good One", "staff"),
        "good.five@riverside.example": ("Five, Dr.", "provider"),
        "taken@lakeside.example": ("Elsewhere", "staff"),
    }
    added = [e for e in events(services, "practice:member:added") if e.details.get("via") == "csv"]
    assert len(added) == 3  # one event per imported member, none for a refused row
    [summary] = events(services, "practice:members:imported")
    assert summary.details == {"imported": 3, "failed": 7}


def test_duplicates_are_caught_across_batches(services, practice, monkeypatch):
    monkeypatch.setattr(members_module, "IMPORT_BATCH", 3)
    lines = (
        ["email,name,role"]
        + [f"m{i}@riverside.example,M {i},staff" for i in range(7)]
        + ["m1@riverside.example,Again,staff", "m6@riverside.example,Again,staff"]
    )
    results = run_import(services, practice.id, "\n".join(lines))
    assert [r.status for r in results] == ["imported"] * 7 + ["failed", "failed"]
    assert count_users(services, practice.id) == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("mail,name,role\nx@riverside.example,X,staff\n", "missing: email"),
        ("email,name\nx@riverside.example,X\n", "missing: role"),
    ],
)
def test_a_file_without_the_columns_imports_nothing(services, practice, text, message):
    with pytest.raises(InvalidInput, match=message):
        run_import(services, practice.id, text)
    assert count_users(services, practice.id) == 0
    assert not events(services, "practice:members:imported")


def test_columns_in_any_order_extra_columns_and_a_byte_order_mark(services, practice):
    text = "\ufeffRole , Phone, Name,EMAIL\nadmin,555,Ada Admin,ada@riverside.example\n".replace("\ufeff", "")
    [result] = run_import(services, practice.id, text)
    assert result.status == "imported"
    with services.db.reading() as s:
        ada = s.execute(select(User).where(User.email == "ada@riverside.example")).scalar_one()
    assert (ada.name, ada.role, ada.password_changed_at) == ("Ada Admin", "admin", None)


def test_a_row_taken_by_someone_else_meanwhile_fails_alone(services, practice, monkeypatch):
    """The batch write hits the unique email; each row is then written on its own."""
    original = services.members._write_members
    calls = []

    def racing(self, practice_id, *args, **kwargs):
        if not calls:
            services.accounts.add_member(
                practice_id=practice_id,
                email="b@riverside.example",
                name="Quick",
                role="staff",
                password="a long enough password",
                context=RequestContext(),
            )
        calls.append(1)
        return original(practice_id, *args, **kwargs)

    monkeypatch.setattr(type(services.members), "_write_members", racing)
    results = run_import(
        services,
        practice.id,
        "email,name,role\na@riverside.example,A,staff\nb@riverside.example,B,staff\nc@riverside.example,C,staff\n",
    )
    assert [(r.email, r.status, r.error) for r in results] == [
        ("a@riverside.example", "imported", None),
        ("b@riverside.example", "failed", "duplicate_email"),
        ("c@riverside.example", "imported", None),
    ]
    assert count_users(services, practice.id) == 3
    assert len([e for e in events(services, "practice:member:added") if e.details.get("via") == "csv"]) == 2


def test_imported_members_can_be_emailed_set_up_links(services, practice, mailbox):
    results = run_import(
        services,
        practice.id,
        "email,name,role\nx@riverside.example,X,staff\ny@riverside.example,Y,staff\n",
        send=True,
        link_base="https://signin.example.org",
    )
    assert [r.status for r in results] == ["imported", "imported"]
    for address in ("x@riverside.example", "y@riverside.example"):
        [mail] = mailbox.wait_for(1, to=address)
        assert "https://signin.example.org/setup/" in mail.text
    with services.db.reading() as s:
        assert len(s.execute(select(SetupLink)).scalars().all()) == 2


def test_export_streams_every_member_with_two_factor_status(services, practice, make_user):
    make_user(role="admin", with_totp=True, email="admin@riverside.example")
    make_user(role="staff", email="-risky@riverside.example")
    run_import(
        services,
        practice.id,
        "email,name,role\n" + "".join(f"e{i}@riverside.example,=HYPERLINK(1),staff\n" for i in range(1200)),
    )
    lines = services.members.export_csv(practice_id=practice.id, actor_id=None, context=RequestContext())
    assert isinstance(lines, types.GeneratorType)  # produced as read, not built whole
    rows = list(csv.DictReader(io.StringIO("".join(lines))))
    assert len(rows) == 1202
    admin_row = next(r for r in rows if r["email"] == "admin@riverside.example")
    assert (admin_row["two_factor"], admin_row["methods"], admin_row["role"]) == ("on", "totp recovery_code", "admin")
    assert next(r for r in rows if r["email"].endswith("e5@riverside.example"))["name"] == "'=HYPERLINK(1)"
    assert any(r["email"] == "'-risky@riverside.example" for r in rows)
    assert events(services, "practice:members:exported")
