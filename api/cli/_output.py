"""Shared CLI plumbing: error reporting, progress display, report printing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gis.errors import InputError, NotFoundError, TonggeError, ValidationFailedError
from gis.times import parse_time
from gis.validate import ValidationReport

err = Console(stderr=True)
out = Console()

class ReportFormat(StrEnum):
    """How ``check`` prints its report."""

    text = "text"
    json = "json"


EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


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
        typer.echo(
            json.dumps(
                {"ok": False, "error": error.message, "problems": problems, "warnings": []},
                ensure_ascii=False,
            )
        )
    # Plain echo: rich would wrap long paths across lines.
    typer.secho(f"error: {error.message}", err=True, fg="red")
    code = EXIT_UNUSABLE if isinstance(error, InputError | NotFoundError) else EXIT_PROBLEMS
    raise typer.Exit(code)


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
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
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
    """Print JSON with Chinese kept readable."""
    typer.echo(json.dumps(data, ensure_ascii=False, default=str))
