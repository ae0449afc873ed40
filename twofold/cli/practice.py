"""``twofold practice``: practices, and a practice's compliance report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from twofold.cli.common import console, fail, find_practice, load_services, output
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="Practices: create one, print its compliance report.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The practice's name, shown as the authenticator app's issuer.")],
) -> None:
    """Create a practice."""
    services = load_services()
    try:
        practice = services.accounts.create_practice(name=name, context=RequestContext.system())
    except TwofoldError as exc:
        fail(exc.message)
    console.print(f"Created practice {practice.name!r} (id {practice.id}).", markup=False)
    services.close()


@app.command("report")
def report(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    first: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD, the practice's time zone; default 30 days ago)."),
    ] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, included (default: today).")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="The whole report as CSV (audited, as a download is).")] = False,
    destination: Annotated[
        Path | None, typer.Option("--output", help="With --csv: write to this file (default: standard output).")
    ] = None,
) -> None:
    """The practice's compliance report: 2FA on by role, methods, members past their deadline, 2FA
    events in the period and whether the audit chain verifies. Exit status 1 when the chain is broken."""
    if destination is not None and not as_csv:
        fail("--output goes with --csv.", 2)
    services = load_services()
    found = find_practice(services, practice)
    try:
        if as_csv:
            lines = services.reports.export_csv(
                practice_id=found.id, first=first, last=last, actor_id=None, context=RequestContext.system()
            )
            with output(destination) as handle:
                handle.writelines(lines)
            return
        made = services.reports.report(practice_id=found.id, first=first, last=last)
    except TwofoldError as exc:
        fail(exc.message, 2)
    finally:
        services.close()
    period = made.period
    console.print(
        f"Compliance report for {made.practice}: {period.first} to {period.last} ({period.time_zone})", markup=False
    )
    table = Table(title="Two-factor authentication on, active members")
    for column in ("role", "members", "2FA on", "%"):
        table.add_column(column, justify="left" if column == "role" else "right")
    for line in [*made.roles, made.overall]:
        table.add_row(line.role, str(line.members), str(line.enrolled), f"{line.percent:.1f}")
    console.print(table)
    console.print("Methods: " + ", ".join(f"{m.label} {m.members}" for m in made.methods), markup=False)
    if made.overdue:
        overdue = Table(title=f"Past their deadline without 2FA ({len(made.overdue)})")
        for column in ("name", "email", "role", "due"):
            overdue.add_column(column)
        for member in made.overdue:
            overdue.add_row(escape(member.name), escape(member.email), member.role, member.due_at.date().isoformat())
        console.print(overdue)
    else:
        console.print("No member is past their deadline without 2FA.")
    if made.in_grace:
        console.print(f"{made.in_grace} member(s) without 2FA are still within their grace period.")
    console.print("In the period: " + ", ".join(f"{e.label} {e.count}" for e in made.events), markup=False)
    if made.chain_problem:
        console.print(f"[bold red]Audit chain broken:[/] {escape(made.chain_problem)}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"[green]Audit chain verifies[/]: {made.chain.events} events.")
