"""The administration commands: break-glass reset, members CSV, audit verify and export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select, update

from tests.conftest import sign_in
from tests.support.practice_admin import events, invitations
from tests.support.recovery import wait_for_subject
from twofold.store.models import AuditEvent


def test_break_glass_reset_is_audited_like_an_admin_reset(run, client, make_user, clock, services, mailbox):
    only_admin = make_user(role="admin", with_totp=True)
    assert sign_in(client, only_admin, clock).status_code == 200
    result = run("user", "reset-2fa", only_admin.email.upper(), "--reason", "Only admin lost her phone")
    assert result.exit_code == 0, result.output
    assert "Reset two-factor authentication" in result.output
    assert client.get("/api/v1/me").status_code == 401  # signed out everywhere
    assert services.accounts.two_factor_status(type("U", (), {"id": only_admin.id})()).enabled is False
    [reset] = events(services, "practice:member:two_factor_reset")
    assert reset.actor_id is None and reset.subject_id == only_admin.id and reset.user_agent == "twofold-cli"
    assert reset.details["via"] == "cli" and reset.details["reason"] == "Only admin lost her phone"
    [mail] = wait_for_subject(mailbox, only_admin.email, "Your two-factor authentication was reset by an admin")
    assert "the Twofold operator" in mail.text and "Only admin lost her phone" in mail.text


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["user", "reset-2fa", "nobody@riverside.example", "--reason", "x"], 1, "No account"),
        (["user", "reset-2fa", "member1@riverside.example", "--reason", "  "], 1, "reason"),
        (["user", "reset-2fa", "member1@riverside.example"], 2, "--reason"),
    ],
)
def test_break_glass_reset_refuses_bad_requests(run, make_user, args, code, says):
    make_user(role="staff", with_totp=True, email="member1@riverside.example")
    result = run(*args)
    assert result.exit_code == code and says in result.output


def test_audit_verify_names_the_first_bad_event(run, services, practice, make_user):
    make_user(role="staff")
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and "ok" in ok.output and "Riverside Family Practice" in ok.output
    with services.db.transaction() as s:
        target = s.execute(select(AuditEvent).where(AuditEvent.chain == practice.id, AuditEvent.seq == 2)).scalar_one()
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(details={"role": "admin"}))
    bad = run("audit", "verify", "--practice", practice.name)
    assert bad.exit_code == 1
    assert f"first bad event is event 2 (id {target.id}, practice:member:added" in bad.output
    assert "changed" in bad.output


def test_audit_export_writes_csv_since_a_date(run, services, practice, make_user, clock, tmp_path):
    make_user(role="staff")
    target = tmp_path / "audit.csv"
    result = run("audit", "export", "--practice", practice.name, "--since", "2026-11-02", "--output", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0]["event"] == "practice:created" and rows[-1]["event"] == "practice:audit:exported"
    later = run("audit", "export", "--practice", practice.name, "--since", "2026-11-03")
    assert later.exit_code == 0
    # The frozen test clock wrote everything else on 2 November; the CLI's own exports happen now.
    assert {r["event"] for r in csv.DictReader(io.StringIO(later.stdout))} == {"practice:audit:exported"}
    assert run("audit", "export", "--practice", practice.name, "--since", "last week").exit_code == 2
    assert run("audit", "export", "--practice", "No Such Practice").exit_code == 1


def test_members_import_and_export_stream_with_a_report(run, services, practice, tmp_path, mailbox):
    source = tmp_path / "members.csv"
    source.write_text(
        "email,name,role\nok@riverside.example,Ok,staff\nbad-address,Bad,staff\nok2@riverside.example,Ok Two,chief\n"
    )
    report = tmp_path / "report.csv"
    result = run(
        "members", "import", "--practice", practice.name, str(source), "--report", str(report), "--send-setup-links"
    )
    assert result.exit_code == 1  # some rows failed
    assert "Imported 1 member; 2 rows failed." in result.output
    assert "line 3: bad-address" in result.output
    assert [r["status"] for r in csv.DictReader(report.open())] == ["imported", "failed", "failed"]
    [mail] = mailbox.wait_for(1, to="ok@riverside.example")
    assert "https://signin.example.org/setup/" in mail.text
    exported = run("members", "export", "--practice", practice.name)
    assert exported.exit_code == 0
    assert [r["email"] for r in csv.DictReader(io.StringIO(exported.stdout))] == ["ok@riverside.example"]


def test_import_report_neutralises_formula_cells(run, practice, tmp_path):
    source = tmp_path / "members.csv"
    source.write_text('email,name,role\n"=HYPERLINK(""http://evil.example"")",Eve,staff\n+1-555-0100,Bob,staff\n')
    report = tmp_path / "report.csv"
    result = run("members", "import", "--practice", practice.name, str(source), "--report", str(report))
    assert result.exit_code == 1
    emails = [r["email"] for r in csv.DictReader(report.open(encoding="utf-8", newline=""))]
    assert emails == ['\'=HYPERLINK("http://evil.example")', "'+1-555-0100"]


def test_members_import_tells_the_operator_plainly_about_an_account_elsewhere(
    run, practice, make_practice, make_user, tmp_path, mailbox
):
    """The operator is trusted across practices: the row is imported, and the CLI says its owner is invited."""
    lakeside = make_practice("Lakeside Clinic")
    make_user(role="staff", email="owner@lakeside.example", practice_id=lakeside.id)
    source = tmp_path / "members.csv"
    source.write_text("email,name,role\nowner@lakeside.example,Owner,staff\nnew@riverside.example,New,staff\n")
    report = tmp_path / "report.csv"
    result = run(
        "members", "import", "--practice", practice.name, str(source), "--report", str(report), "--send-setup-links"
    )
    assert result.exit_code == 0, result.output
    assert "Imported 2 members; 0 rows failed." in result.output
    assert "line 2: owner@lakeside.example: This email has an account in another practice" in result.output
    rows = list(csv.DictReader(report.open()))
    assert [r["status"] for r in rows] == ["imported", "imported"]
    assert "another practice" in rows[0]["message"] and rows[1]["message"] == ""
    assert "Riverside" in invitations(mailbox, "owner@lakeside.example")[0].subject
