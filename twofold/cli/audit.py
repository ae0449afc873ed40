"""``twofold audit``: verify the audit log's hash chains, anchor their heads outside the database, export a practice's log as CSV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from twofold.cli.common import console, err, fail, find_practice, load_services, write_csv
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="The audit log: verify its hash chains, anchor them, export it.", no_args_is_help=True)


def _label(report) -> str:
    if report.practice:
        return escape(report.practice)
    return "events of no practice" if report.chain == 0 else f"chain {report.chain}"


@app.command("verify")
def verify(
    practice: Annotated[str | None, typer.Option(help="Only this practice's chain (default: every chain).")] = None,
    anchor: Annotated[
        Path | None,
        typer.Option(help="A statement `twofold audit anchor` printed earlier: each chain must still extend it."),
    ] = None,
) -> None:
    """Check the audit log's hash chains; name the first bad event of each broken chain (exit status 1)."""
    from twofold.core.practice.audit_log import Anchor, describe_break

    services = load_services()
    practice_id = find_practice(services, practice).id if practice else None
    statement = None
    if anchor is not None:
        try:
            statement = Anchor.parse(anchor.read_text(encoding="utf-8"))
        except OSError as exc:
            fail(f"cannot read {anchor}: {exc.strerror}", 2)
        except (TwofoldError, UnicodeDecodeError) as exc:
            fail(exc.message if isinstance(exc, TwofoldError) else "The anchor is not a text file.", 2)
        if not services.audit_trail.signed_here(statement):
            fail(
                "The anchor's signature does not check out: the file was changed, or it was signed with "
                "another secret key (keep earlier keys in TWOFOLD_OLD_SECRET_KEYS to check older anchors)."
            )
    try:
        reports = services.audit_trail.verify(practice_id=practice_id, anchor=statement)
    except TwofoldError as exc:
        fail(exc.message)
    broken = 0
    for report in reports:
        bad = report.first_break  # None when the chain is whole (report.ok)
        if bad is None:
            console.print(
                f"[green]ok[/]   {_label(report)}: {report.events} events, head {report.head_hash}", soft_wrap=True
            )
        else:
            broken += 1
            console.print(f"[bold red]BAD[/]  {_label(report)}: {escape(describe_break(bad))}", soft_wrap=True)
    if statement is not None and not broken:
        console.print(f"Every chain extends the anchor of {statement.issued_at.isoformat()}.")
    services.close()
    if broken:
        raise typer.Exit(1)


@app.command("anchor")
def anchor(
    practice: Annotated[str | None, typer.Option(help="Only this practice's chain (default: every chain).")] = None,
    email: Annotated[
        bool, typer.Option("--email", help="Also email each practice's admins their practice's signed head.")
    ] = False,
) -> None:
    """Print a signed statement of each chain's head (seq, hash, time) to keep outside the database.

    Save it elsewhere; later, `twofold audit verify --anchor FILE` fails when a chain no longer
    extends it. Run with --email weekly from cron (see docs/operations.md). A chain that does not
    verify is left out of the statement, named on standard error, and the exit status is 1.
    """
    from twofold.core.practice.audit_log import describe_break

    services = load_services()
    practice_id = find_practice(services, practice).id if practice else None
    try:
        statement, broken = services.audit_trail.anchor_heads(practice_id=practice_id)
    except TwofoldError as exc:
        fail(exc.message)
    sys.stdout.write(statement.to_json())
    for report in broken:
        if report.first_break is not None:
            err.print(
                f"[bold red]BAD[/]  {_label(report)}: {escape(describe_break(report.first_break))}", soft_wrap=True
            )
    if email:
        for mailing in services.audit_trail.email_anchors(practice_id=practice_id):
            state = "signed head" if mailing.ok else "FAILED check"
            err.print(
                f"{escape(mailing.practice)}: {state} emailed to {mailing.delivered} of {mailing.recipients} admin(s)",
                soft_wrap=True,
            )
    services.close()
    if broken:
        raise typer.Exit(1)


@app.command("export")
def export(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD) or ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (included) or ISO time.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output).")] = None,
) -> None:
    """Export a practice's audit log as CSV, oldest first (the export is itself audited)."""
    from twofold.core.practice.audit_log import AuditFilter, parse_moment

    services = load_services()
    found = find_practice(services, practice)
    try:
        audit_filter = AuditFilter(since=parse_moment(since), until=parse_moment(until, end=True))
    except TwofoldError as exc:
        fail(exc.message, 2)
    lines = services.audit_trail.export_csv(
        practice_id=found.id, filter=audit_filter, actor_id=None, context=RequestContext.system()
    )
    # Counted after export_csv started: the export's own audit event is one of the rows.
    total = services.audit_trail.count(practice_id=found.id, filter=audit_filter)
    write_csv(lines, output, total, "Exporting events")
    services.close()
