"""The administration commands: break-glass reset, members CSV, audit verify and export, the compliance report."""

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


def _report_mix(services, practice, make_user):
    from twofold.context import RequestContext

    services.policies.update(
        practice_id=practice.id,
        actor_id=None,
        changes={"require_two_factor": True, "grace_days": 1},
        context=RequestContext(),
    )
    make_user(role="provider", with_totp=True)
    services.accounts.add_member(
        practice_id=practice.id,
        email="sam@riverside.example",
        name="[bold]Sam[/bold]",
        role="staff",
        password="correct horse battery staple",
        context=RequestContext(),
    )


def test_practice_report_prints_enrolment_the_overdue_and_the_chain(run, services, practice, make_user):
    _report_mix(services, practice, make_user)  # made on the test clock's day, weeks before the command runs
    result = run("practice", "report", "--practice", practice.name, "--from", "2026-11-01", "--to", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert "2026-11-01 to 2026-11-30" in result.output
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.output.splitlines()]
    rows = {row[0]: row[1:] for row in cells if len(row) == 4}
    assert rows["provider"] == ["1", "1", "100.0"] and rows["staff"] == ["1", "0", "0.0"]
    assert rows["all"] == ["2", "1", "50.0"]
    assert "[bold]Sam[/bold]" in result.output and "sam@riverside.example" in result.output  # shown, not styled
    assert "Audit chain verifies" in result.output
    assert events(services, "practice:report:exported") == []  # reading it on screen is no export


def test_practice_report_csv_is_the_audited_download(run, services, practice, make_user, tmp_path):
    _report_mix(services, practice, make_user)
    target = tmp_path / "report.csv"
    result = run(
        "practice", "report", "--practice", practice.name, "--from", "2026-11-01", "--to", "2026-11-30",
        "--csv", "--output", str(target),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert ["report", "from", "", "", "", "2026-11-01"] in rows
    assert ["overdue_member", "sam@riverside.example"] in [row[:2] for row in rows]
    [exported] = events(services, "practice:report:exported")
    assert exported.user_agent == "twofold-cli" and exported.details == {"from": "2026-11-01", "to": "2026-11-30"}


def test_practice_report_exits_1_when_the_audit_chain_is_broken(run, services, practice, make_user):
    make_user(role="staff")
    with services.db.transaction() as s:
        target = s.execute(select(AuditEvent).where(AuditEvent.chain == practice.id, AuditEvent.seq == 2)).scalar_one()
        s.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(details={"role": "admin"}))
    result = run("practice", "report", "--practice", practice.name)
    assert result.exit_code == 1 and "Audit chain broken" in result.output and "event 2" in result.output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--from", "2026-13-01"], 2, "date"),
        (["--from", "2026-11-30", "--to", "2026-11-01"], 2, "must not be after"),
        (["--output", "x.csv"], 2, "--output goes with --csv"),
    ],
)
def test_practice_report_refuses_bad_periods_clearly(run, services, practice, args, code, says):
    result = run("practice", "report", "--practice", practice.name, *args)
    assert result.exit_code == code and says.lower() in result.output.lower(), result.output
    assert "Traceback" not in result.output
    assert events(services, "practice:report:exported") == []
