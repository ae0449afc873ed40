"""What every command group shares: the consoles, the one way to fail, the services, and
the streaming and progress helpers of the CSV commands.

Messages go to standard output; errors and progress bars go to standard error, so a
command's CSV on standard output stays clean. The services (and so SQLAlchemy, the
factors and the core) are imported only when a command runs, which keeps ``twofold
--help`` quick.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TaskID, TextColumn, TimeElapsedColumn

from twofold.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from twofold.store.models import Practice
    from twofold.wiring import Services

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on standard error and exit with ``code`` (never a traceback)."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def load_services(settings: Settings | None = None, *, migrate: bool = True) -> Services:
    """The services on the configured database (settings from the environment), migrated first."""
    from twofold.store.migrate import upgrade
    from twofold.wiring import build_services

    settings = settings or Settings()
    try:
        services = build_services(settings)
    except ConfigurationError as exc:
        fail(str(exc))
    if migrate:
        upgrade(services.db.engine, secret_key=settings.resolved_secret_key())
    return services


def find_practice(services: Services, name: str) -> Practice:
    """The practice called ``name``, or a clear failure naming the command that creates one."""
    found = services.accounts.find_practice(name)
    if found is None:
        fail(f"No practice named {name!r}. Create it with: twofold practice create NAME")
    return found


def redact(url: str) -> str:
    """A database URL fit for printing: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "(unparseable URL)"


def progress(*columns: ProgressColumn) -> Progress:
    """A progress bar on standard error: description, bar, ``columns``, elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *columns,
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


@contextmanager
def output(path: Path | None) -> Iterator[IO[str]]:
    """The file at ``path`` (created or truncated, UTF-8), or standard output without one."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle


def write_csv(lines: Iterator[str], path: Path | None, total: int, description: str) -> None:
    """Stream CSV ``lines`` (a header, then ``total`` rows) to ``path`` or standard output, with a progress bar."""
    bar = progress(MofNCompleteColumn())
    with bar, output(path) as handle:
        task = bar.add_task(description, total=total)
        handle.write(next(lines))
        for line in lines:
            handle.write(line)
            bar.advance(task)


def read_csv(path: Path, bar: Progress, task: TaskID) -> Iterator[str]:
    """The file's lines as text (UTF-8, a leading byte-order mark dropped), advancing ``bar`` by bytes read."""
    with open(path, "rb") as raw:
        first = True
        for line in raw:
            bar.advance(task, len(line))
            yield line.decode("utf-8-sig" if first else "utf-8")
            first = False
