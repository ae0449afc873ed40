"""Administration commands: break-glass 2FA reset, members CSV import/export, audit verify/export.

The CSV commands stream (memory stays flat however long the file) and show a Rich
progress bar on standard error, so CSV on standard output stays clean.
"""

from __future__ import annotations

import csv
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from twofold.context import RequestContext
from twofold.errors import TwofoldError


def _cli():
    from twofold.cli import main as cli
    return cli


def _practice(services, name: str):
    found = services.accounts.find_practice(name)
    if found is None:
        _cli().fail(f"No practice named {name!r}. Create it with: twofold practice create NAME")
    return found


def _progress(*columns) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), *columns, TimeElapsedColumn(),
        console=_cli().err, transient=False,
    )


@contextmanager
def _output(path: Path | None):
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle


def _link_base(settings) -> str | None:
    return settings.public_origin or None


def reset_2fa(
    email: Annotated[str, typer.Argument(help="The member's sign-in email.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log and told to the member).")],
) -> None:
    """Break-glass: reset a member's two-factor authentication (for example a practice's only admin).

    Removes every method, ends sessions and remembered browsers, emails the member and
    has them set up 2FA at their next sign-in. Audited like an admin reset (via: cli).
    """
    cli = _cli()
    services = cli._services()
    try:
        member = services.resets.break_glass_reset(email=email, reason=reason, context=RequestContext.system())
    except TwofoldError as exc:
        cli.fail(exc.message)
    cli.console.print(
        f"Reset two-factor authentication for {member.email}. They were signed out and emailed, "
        "and will set it up again at their next sign-in."
    )
    services.close()


def members_import(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with columns email,name,role.")],
    send_setup_links: Annotated[bool, typer.Option("--send-setup-links/--no-setup-links", help="Email each new member a set-up link (needs TWOFOLD_PUBLIC_ORIGIN).")] = False,
    report: Annotated[Path | None, typer.Option(help="Write every row's result to this CSV file.")] = None,
) -> None:
    """Import members from CSV. Each row is imported whole or reported; exit status 1 if any row failed."""
    cli = _cli()
    services = cli._services()
    found = _practice(services, practice)
    imported = failed = 0
    progress = _progress(TransferSpeedColumn())
    with progress, (open(report, "w", encoding="utf-8", newline="") if report else _null()) as report_file:
        writer = csv.writer(report_file) if report else None
        if writer:
            writer.writerow(["row", "email", "status", "error", "message"])
        task = progress.add_task("Importing", total=file.stat().st_size)
        try:
            results = services.members.import_csv(
                practice_id=found.id, actor_id=None, lines=_lines(file, progress, task),
                context=RequestContext.system(), send_setup_links=send_setup_links,
                link_base=_link_base(services.settings),
            )
            for result in results:
                if result.status == "imported":
                    imported += 1
                else:
                    failed += 1
                    progress.console.print(f"line {result.row}: {result.email or '(no email)'}: {result.message}", soft_wrap=True, markup=False)
                if writer:
                    writer.writerow([result.row, result.email, result.status, result.error or "", result.message or ""])
        except (TwofoldError, UnicodeDecodeError) as exc:
            progress.stop()
            message = exc.message if isinstance(exc, TwofoldError) else f"The file is not UTF-8 text ({exc.reason})."
            cli.fail(f"{message} Rows before the problem: {imported} imported, {failed} failed.")
    cli.console.print(f"Imported {imported} member{'s' if imported != 1 else ''}; {failed} row{'s' if failed != 1 else ''} failed.")
    services.close()
    if failed:
        raise typer.Exit(1)


def members_export(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output).")] = None,
) -> None:
    """Export every member of a practice as CSV, with their 2FA status."""
    cli = _cli()
    services = cli._services()
    found = _practice(services, practice)
    total = services.members.count(practice_id=found.id)
    lines = services.members.export_csv(practice_id=found.id, actor_id=None, context=RequestContext.system())
    _write(lines, output, total, "Exporting members")
    services.close()


def audit_verify(
    practice: Annotated[str | None, typer.Option(help="Only this practice's chain (default: every chain).")] = None,
) -> None:
    """Check the audit log's hash chains; name the first bad event of each broken chain (exit status 1)."""
    cli = _cli()
    services = cli._services()
    practice_id = _practice(services, practice).id if practice else None
    try:
        reports = services.audit_trail.verify(practice_id=practice_id)
    except TwofoldError as exc:
        cli.fail(exc.message)
    broken = 0
    for report in reports:
        label = escape(report.practice) if report.practice else ("events of no practice" if report.chain == 0 else f"chain {report.chain}")
        if report.ok:
            cli.console.print(f"[green]ok[/]   {label}: {report.events} events, head {report.head_hash}", soft_wrap=True)
        else:
            broken += 1
            bad = report.first_break
            where = f"event {bad.seq}" + (f" (id {bad.event_id}, {bad.event}, {bad.at.isoformat()})" if bad.event_id else "")
            cli.console.print(f"[bold red]BAD[/]  {label}: first bad event is {escape(where)}: {bad.problem}", soft_wrap=True)
    services.close()
    if broken:
        raise typer.Exit(1)


def audit_export(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD) or ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (included) or ISO time.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output).")] = None,
) -> None:
    """Export a practice's audit log as CSV, oldest first (the export is itself audited)."""
    from twofold.core.practice.audit_log import AuditFilter, parse_moment

    cli = _cli()
    services = cli._services()
    found = _practice(services, practice)
    try:
        audit_filter = AuditFilter(since=parse_moment(since), until=parse_moment(until, end=True))
    except TwofoldError as exc:
        cli.fail(exc.message, 2)
    lines = services.audit_trail.export_csv(
        practice_id=found.id, filter=audit_filter, actor_id=None, context=RequestContext.system()
    )
    total = services.audit_trail.count(practice_id=found.id, filter=audit_filter)  # after: the export's own event counts
    _write(lines, output, total, "Exporting events")
    services.close()


def _write(lines, output: Path | None, total: int, description: str) -> None:
    progress = _progress(MofNCompleteColumn())
    with progress, _output(output) as handle:
        task = progress.add_task(description, total=total)
        handle.write(next(lines))
        for line in lines:
            handle.write(line)
            progress.advance(task)


def _lines(path: Path, progress: Progress, task):
    with open(path, "rb") as raw:
        first = True
        for line in raw:
            progress.advance(task, len(line))
            yield line.decode("utf-8-sig" if first else "utf-8")
            first = False


@contextmanager
def _null():
    yield None


def register(*, user_app: typer.Typer, members_app: typer.Typer, audit_app: typer.Typer) -> None:
    user_app.command("reset-2fa")(reset_2fa)
    members_app.command("import")(members_import)
    members_app.command("export")(members_export)
    audit_app.command("verify")(audit_verify)
    audit_app.command("export")(audit_export)
