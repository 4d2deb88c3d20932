"""Places commands: import buildings/households/places, assign them, report workload."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli._output import (
    AtOption,
    ReportFormat,
    check_output,
    database,
    echo_json,
    err,
    fail,
    out,
    parse_option_time,
    steps,
    yield_cpu,
)
from gis.access import cli_principal
from gis.errors import TonggeError
from gis.files import write_csv, write_xlsx
from gis.places import (
    assign_places,
    import_buildings,
    import_households,
    import_pois,
    reassignment_diff,
    unit_workload,
)
from gis.times import isoformat_local
from gis.units import level_spec

places_app = typer.Typer(
    help="Buildings, households and places 实有房屋/人口/单位.", no_args_is_help=True
)


class PlaceKind(StrEnum):
    """What a places file holds."""

    buildings = "buildings"
    households = "households"
    pois = "pois"


def register(app: typer.Typer) -> None:
    """Add the places commands to ``app``."""
    app.add_typer(places_app, name="places")
    app.command("assign")(assign)
    app.command("workload")(workload_command)


@places_app.command("import")
def import_(
    kind: Annotated[PlaceKind, typer.Argument(help="buildings, households or pois.")],
    file: Annotated[Path, typer.Argument(help="GeoJSON/GeoPackage/GeoParquet, or CSV/Parquet.")],
    crs: Annotated[str | None, typer.Option(help="CRS when the file has none (or gcj02).")] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding of a CSV or Shapefile (default: found from the bytes)."),
    ] = None,
) -> None:
    """Import a places file, all or nothing (bad rows are named, nothing is written)."""
    try:
        actor = cli_principal()
        yield_cpu()
        with steps(f"importing {kind.value}") as (_, advance):
            db = database()
            if kind is PlaceKind.buildings:
                result = import_buildings(
                    db, path=file, crs=crs, on_progress=advance, actor=actor, encoding=encoding
                )
            elif kind is PlaceKind.households:
                result = import_households(
                    db, path=file, on_progress=advance, actor=actor, encoding=encoding
                )
            else:
                result = import_pois(db, path=file, crs=crs, actor=actor, encoding=encoding)
    except TonggeError as error:
        fail(error)
    if result.encoding:
        err.print(f"text read as {result.encoding}")
    err.print(f"[green]✓[/green] {result.count:,} {result.kind} imported")
    if result.ignored_columns:
        err.print(
            "not stored (personal data is kept to the minimum): "
            + ", ".join(result.ignored_columns)
        )


def assign(
    layer: Annotated[str, typer.Option(help="Layer to assign to.")] = "governance",
    level: Annotated[str, typer.Option(help="Level to assign to.")] = "micro_grid",
    at: AtOption = None,
    diff_from: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Also list what moved since boundaries of this time.",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write CSV (or .xlsx) here.")
    ] = None,
) -> None:
    """Assign every building to a unit (entrance → covering unit → largest overlap)."""
    try:
        if output is not None:
            check_output(output)
        db = database()
        level_spec(db, layer=layer, level=level)
        assignment = assign_places(db, layer=layer, level=level, at=at)
        moved = (
            reassignment_diff(db, layer=layer, level=level, before=diff_from, after=at)
            if diff_from
            else None
        )
    except TonggeError as error:
        fail(error)
    counts = assignment.counts()
    out.print("  ".join(f"{rule}: {n:,}" for rule, n in counts.items()))
    if output is not None:
        if output.suffix.lower() == ".xlsx":
            try:
                write_xlsx(assignment.frame, output, sheet="assignment")
            except TonggeError as error:
                fail(error)
        else:
            write_csv(assignment.frame, output)
        err.print(f"assignment written to {output}")
    if moved is not None:
        out.print(f"{len(moved):,} building(s) moved since {isoformat_local(diff_from)}")
        table = Table("building", "from", "to")
        for row in moved.head(50).itertuples():
            table.add_row(str(row.key), str(row.from_unit), str(row.to_unit))
        out.print(table)


def workload_command(
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    level: Annotated[str | None, typer.Option(help="Only this level.")] = "grid",
    at: AtOption = None,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Workload per unit: buildings, households, persons, places vs targets (负载均衡)."""
    try:
        db = database()
        if level is not None:
            level_spec(db, layer=layer, level=level)  # a level that does not exist is an error
        result = unit_workload(db, layer=layer, at=at)
    except TonggeError as error:
        fail(error, as_json=format is ReportFormat.json)
    units = result.units
    if level is not None:
        units = units[units["level"] == level]
    if format is ReportFormat.json:
        echo_json(units.to_dict("records"))
        return
    table = Table(f"{layer} {level or ''} unit", "households", "persons", "buildings", "flag")
    for row in units.itertuples():
        flag = (
            "over"
            if getattr(row, "over", False)
            else "under"
            if getattr(row, "under", False)
            else ""
        )
        table.add_row(
            str(row.code), f"{row.households:,}", f"{row.persons:,}", f"{row.buildings:,}", flag
        )
    out.print(table)
