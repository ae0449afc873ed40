"""``twofold audit``: verify the audit log's hash chains; export a practice's log as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from twofold.cli.common import console, fail, find_practice, load_services, write_csv
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="The audit log: verify its hash chains, export it.", no_args_is_help=True)


@app.command("verify")
def verify(
    practice: Annotated[str | None, typer.Option(help="Only this practice's chain (default: every chain).")] = None,
) -> None:
    """Check the audit log's hash chains; name the first bad event of each broken chain (exit status 1)."""
    services = load_services()
    practice_id = find_practice(services, practice).id if practice else None
    try:
        reports = services.audit_trail.verify(practice_id=practice_id)
    except TwofoldError as exc:
        fail(exc.message)
    broken = 0
    for report in reports:
        if report.practice:
            label = escape(report.practice)
        else:
            label = "events of no practice" if report.chain == 0 else f"chain {report.chain}"
        bad = report.first_break  # None when the chain is whole (report.ok)
        if bad is None:
            console.print(f"[green]ok[/]   {label}: {report.events} events, head {report.head_hash}", soft_wrap=True)
        else:
            broken += 1
            where = f"event {bad.seq}"
            if bad.event_id:
                where += f" (id {bad.event_id}, {bad.event}, {bad.at.isoformat() if bad.at else None})"
            console.print(
                f"[bold red]BAD[/]  {label}: first bad event is {escape(where)}: {bad.problem}", soft_wrap=True
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
