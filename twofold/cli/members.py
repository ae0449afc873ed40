"""``twofold members``: a practice's members as CSV, imported and exported.

Both stream (memory stays flat however long the file) and show a progress bar on
standard error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TransferSpeedColumn

from twofold.cli.common import console, fail, find_practice, load_services, progress, read_csv, write_csv
from twofold.context import RequestContext
from twofold.core.csv_stream import csv_line
from twofold.errors import TwofoldError

app = typer.Typer(help="A practice's members as CSV: import and export.", no_args_is_help=True)


@app.command("import")
def import_(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with columns email,name,role.")
    ],
    send_setup_links: Annotated[
        bool,
        typer.Option(
            "--send-setup-links/--no-setup-links",
            help="Email each new member a set-up link (needs TWOFOLD_PUBLIC_ORIGIN).",
        ),
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write every row's result to this CSV file.")] = None,
) -> None:
    """Import members from CSV. Each row is imported whole or reported; exit status 1 if any row failed."""
    services = load_services()
    found = find_practice(services, practice)
    imported = failed = 0
    bar = progress(TransferSpeedColumn())
    with bar, _report(report) as writer:
        task = bar.add_task("Importing", total=file.stat().st_size)
        try:
            results = services.members.import_csv(
                practice_id=found.id,
                actor_id=None,
                lines=read_csv(file, bar, task),
                context=RequestContext.system(),
                send_setup_links=send_setup_links,
                link_base=services.settings.resolved_public_origin(),
                tell_invitations=True,  # the operator is trusted across practices: say it plainly
            )
            for result in results:
                if result.status == "imported":
                    imported += 1
                    if result.message:
                        bar.console.print(
                            f"line {result.row}: {result.email}: {result.message}", soft_wrap=True, markup=False
                        )
                else:
                    failed += 1
                    bar.console.print(
                        f"line {result.row}: {result.email or '(no email)'}: {result.message}",
                        soft_wrap=True,
                        markup=False,
                    )
                if writer:
                    writer([result.row, result.email, result.status, result.error or "", result.message or ""])
        except (TwofoldError, UnicodeDecodeError) as exc:
            bar.stop()
            message = exc.message if isinstance(exc, TwofoldError) else f"The file is not UTF-8 text ({exc.reason})."
            fail(f"{message} Rows before the problem: {imported} imported, {failed} failed.")
    console.print(
        f"Imported {imported} member{'s' if imported != 1 else ''}; {failed} row{'s' if failed != 1 else ''} failed."
    )
    services.close()
    if failed:
        raise typer.Exit(1)


@app.command("export")
def export(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    output: Annotated[Path | None, typer.Option(help="Write to this file (default: standard output).")] = None,
) -> None:
    """Export every member of a practice as CSV, with their 2FA status."""
    services = load_services()
    found = find_practice(services, practice)
    total = services.members.count(practice_id=found.id)
    lines = services.members.export_csv(practice_id=found.id, actor_id=None, context=RequestContext.system())
    write_csv(lines, output, total, "Exporting members")
    services.close()


@contextmanager
def _report(path: Path | None) -> Iterator[Callable[[Iterable[object]], None] | None]:
    """A row writer on ``path`` with the report's header written, or None without a path.

    Rows go through ``csv_line`` like the web exports: a cell that a spreadsheet would run as a
    formula (the imported file's own email or name, say) is written with a leading apostrophe.
    """
    if path is None:
        yield None
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:

        def write(values: Iterable[object]) -> None:
            handle.write(csv_line(values))

        write(["row", "email", "status", "error", "message"])
        yield write
