"""``tongge incidents evaluate``: evaluation per unit and period (治理成效评估).

Registered on the ``incidents`` group of :mod:`api.cli._incidents` by
:func:`register`; prints a table, JSON, or writes CSV/Excel.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli._output import check_output, database, echo_json, out, parse_option_time
from gis.access.principal import cli_principal
from gis.errors import InputError
from gis.incidents import evaluation, service
from gis.times import utc_now


class PeriodChoice(StrEnum):
    """Periods, counted in China time."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"
    all = "all"


class EvaluationFormat(StrEnum):
    """How the table is written."""

    text = "text"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def evaluate(
    period: Annotated[PeriodChoice, typer.Option(help="Period of each row.")] = PeriodChoice.month,
    by: Annotated[
        str,
        typer.Option(
            help="layer:level (governance:grid, governance:community, police:beat) or "
            "category, class_code, channel."
        ),
    ] = "governance:grid",
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Received at or after: YYYY-MM-DD or ISO 8601.",
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Received before: YYYY-MM-DD or ISO 8601.",
        ),
    ] = None,
    radius_m: Annotated[
        float, typer.Option(min=0, max=5000, help="Two incidents this close are at one place.")
    ] = evaluation.DEFAULT_RADIUS_M,
    same_category: Annotated[
        bool, typer.Option(help="Count a repeat only for the same category.")
    ] = False,
    format: Annotated[
        EvaluationFormat, typer.Option("--format", help="text, json, csv or xlsx.")
    ] = EvaluationFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write (csv, xlsx); csv/json: stdout if omitted."
        ),
    ] = None,
) -> None:
    """Evaluate incident handling per unit and period 治理成效评估 (counts, time to close)."""
    if format is EvaluationFormat.xlsx and output is None:
        raise InputError("--output: required for --format xlsx", field="output")
    if output is not None:
        if format in (EvaluationFormat.text, EvaluationFormat.json):
            raise InputError("--output: only with --format csv or xlsx", field="output")
        check_output(output)
    db = database()
    try:
        frame = service.frame(db, cli_principal(), since=since, until=until)
        levels = evaluation.unit_levels(db)
    finally:
        db.dispose()
    table = evaluation.evaluate(
        frame,
        by=by,
        period=period.value,
        now=utc_now(),
        radius_m=radius_m,
        same_category=same_category,
        unit_levels=levels,
    )
    if format is EvaluationFormat.json:
        echo_json({"by": by, "period": period.value, "rows": evaluation.to_records(table)})
    elif format is EvaluationFormat.csv:
        text = evaluation.to_csv(table, output)
        if text is not None:
            typer.echo(text.removeprefix("\ufeff"), nl=False)
    elif format is EvaluationFormat.xlsx:
        assert output is not None
        evaluation.to_xlsx(table, output)
    else:
        _print(table)
    if output is not None:
        typer.secho(f"wrote {len(table)} rows to {output}", err=True)


def _print(table_frame: object) -> None:
    import pandas as pd

    assert isinstance(table_frame, pd.DataFrame)
    shown = Table(title="治理成效评估 evaluation")
    columns = [c for c in table_frame.columns if not str(c).startswith(evaluation.CATEGORY_PREFIX)]
    for column in columns:
        shown.add_column(str(column))
    for row in table_frame[columns].itertuples(index=False):
        shown.add_row(*("" if _missing(v) else _cell(v) for v in row))
    out.print(shown)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _cell(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def register(group: typer.Typer) -> None:
    """Add ``evaluate`` to the ``incidents`` command group."""
    group.command("evaluate")(evaluate)
