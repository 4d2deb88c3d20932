"""Shared CLI plumbing: the database, error reporting, output checks, progress, JSON.

Every command opens the database with :func:`database`, reports domain
errors with :func:`fail` (one message and an exit code, never a
traceback), checks its output file with :func:`check_output` and prints
JSON with :func:`echo_json` (strict: no ``NaN``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.jsontext import dumps
from gis.errors import (
    InputError,
    NotFoundError,
    NotInitializedError,
    TonggeError,
    ValidationFailedError,
)
from gis.times import parse_time
from gis.validate import ValidationReport

if TYPE_CHECKING:
    from gis.repository import Database

err = Console(stderr=True)
out = Console()


class ReportFormat(StrEnum):
    """How ``check`` prints its report."""

    text = "text"
    json = "json"


EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


def database(*, create: bool = False, step: Callable[[str], None] | None = None) -> Database:
    """Open the configured database, saying which on stderr (one dim line, no password).

    Only ``tongge init`` passes ``create``: any other command refuses a
    database that does not exist (:class:`NotInitializedError`) rather than
    silently starting an empty one in the current folder.
    """
    from api.bootstrap import open_database
    from gis.repository import display_url
    from gis.settings import get_settings

    settings = get_settings()
    # Plain echo: rich would wrap a long path across lines.
    typer.secho(f"database: {display_url(settings.database_url)}", err=True, dim=True)
    return open_database(settings, create=create, step=step)


def check_output(path: Path, *, inputs: Iterable[Path] = (), option: str = "--output") -> Path:
    """Refuse an output file that cannot be written before any work is done.

    Raises
    ------
    InputError
        When the folder does not exist, the path is a folder, or it is one
        of ``inputs`` (writing would destroy the data being read).
    """
    field = option.lstrip("-").replace("-", "_")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise InputError(
            f"{option}: folder {str(folder)!r} does not exist (create it first)", field=field
        )
    if not folder.is_dir():
        raise InputError(f"{option}: {str(folder)!r} is not a folder", field=field)
    if path.is_dir():
        raise InputError(f"{option}: {str(path)!r} is a folder, not a file", field=field)
    target = path.resolve()
    for source in inputs:
        if source.exists() and source.resolve() == target:
            raise InputError(
                f"{option}: {str(path)!r} is the input file; write to another file",
                field=field,
            )
    return path


def check_input(path: Path, *, option: str) -> Path:
    """Refuse an input file that is not there, naming the option (before any work)."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise InputError(f"{option}: {str(path)!r} {what}", field=option.strip("-").lower())
    return path


def yield_cpu() -> None:
    """Lower this process's CPU priority for long work (``TONGGE_CLI_NICENESS``).

    Imports and bulk geocoding are background work; a server on the same
    machine answering dispatchers should win the CPU.
    """
    from gis.settings import get_settings

    niceness = get_settings().cli_niceness
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)


def parse_option_time(value: str | datetime) -> datetime:
    """Parse a time option once, where it enters (typer ``parser``)."""
    if isinstance(value, datetime):
        return value
    try:
        return parse_time(value, field="at")
    except InputError as error:
        raise typer.BadParameter(error.message.partition(": ")[2] or error.message) from None


#: ``--at``: the boundaries valid at this time (parsed once into aware UTC).
AtOption = Annotated[
    datetime | None,
    typer.Option(
        parser=parse_option_time,
        metavar="TIME",
        help="Boundaries valid at this time: YYYY-MM-DD (00:00 China time) or ISO 8601; "
        "default now.",
    ),
]


def fail(error: TonggeError, *, as_json: bool = False) -> NoReturn:
    """Print a domain error the way people (or scripts) want it, then exit."""
    if isinstance(error, ValidationFailedError):
        print_report(error.report, as_json=as_json)
        typer.secho(f"✗ {error.message}", err=True, fg="red")
        raise typer.Exit(EXIT_PROBLEMS)
    if as_json:
        problems: list[dict[str, Any]] = []
        if error.rule:
            problems.append(
                {
                    "rule": error.rule,
                    "codes": [],
                    "lon": error.details.get("lon"),
                    "lat": error.details.get("lat"),
                    "area_m2": None,
                    "message": error.message,
                }
            )
        echo_json({"ok": False, "error": error.message, "problems": problems, "warnings": []})
    # Plain echo: rich would wrap long paths across lines.
    typer.secho(f"error: {error.message}", err=True, fg="red")
    raise typer.Exit(exit_code(error))


def exit_code(error: TonggeError) -> int:
    """Return the exit code of a domain error: 2 unusable input or set-up, else 1."""
    unusable = InputError | NotFoundError | NotInitializedError
    return EXIT_UNUSABLE if isinstance(error, unusable) else EXIT_PROBLEMS


@contextmanager
def steps(
    title: str, *, quiet: bool = False
) -> Iterator[tuple[Callable[[str], None], Callable[[int, int], None]]]:
    """Show a spinner with the current step and a bar for counted work (on stderr)."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )
    task = progress.add_task(title, total=None)

    def step(name: str) -> None:
        progress.update(task, description=f"{title}: {name}")

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        yield step, advance


def print_report(report: ValidationReport, *, as_json: bool) -> None:
    """Print a validation report as the JSON contract or as tables."""
    if as_json:
        echo_json(report.to_dict())
        return
    for title, items, style in (
        ("Problems 问题", report.problems, "red"),
        ("Warnings 警告", report.warnings, "yellow"),
    ):
        if not items:
            continue
        table = Table(title=f"{title} ({len(items)})", title_style=style, show_lines=False)
        for column in ("rule", "codes", "lon, lat", "area m²", "message"):
            table.add_column(column, overflow="fold")
        for item in items[:200]:
            where = (
                f"{item.lon:.6f}, {item.lat:.6f}"
                if item.lon is not None and item.lat is not None
                else ""
            )
            area = f"{item.area_m2:,.1f}" if item.area_m2 is not None else ""
            table.add_row(item.rule, " ".join(item.codes), where, area, item.message)
        out.print(table)
        if len(items) > 200:
            out.print(f"… and {len(items) - 200} more (use --format json for all)")
    if report.ok:
        out.print(
            f"[green]✓ {report.unit_count} units: no problems[/green]"
            + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
        )
    else:
        out.print(f"[red]✗ {report.unit_count} units: {len(report.problems)} problem(s)[/red]")


def echo_json(data: Any) -> None:
    """Print strict JSON (RFC 8259) with Chinese kept readable.

    A missing number (NaN, ±inf) is ``null``, times are written in China
    time with their offset: ``jq`` and every strict parser read the output.
    """
    typer.echo(dumps(data))
