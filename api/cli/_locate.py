"""Locate commands: one point (``locate``) or a whole file (``geocode``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli._output import (
    AtOption,
    ReportFormat,
    check_input,
    check_output,
    database,
    echo_json,
    err,
    fail,
    out,
    yield_cpu,
)
from gis.errors import TonggeError
from gis.files import ReadLimits
from gis.locate import LocateService
from gis.locate.batch import geocode_file

CrsOption = Annotated[
    str, typer.Option(help="wgs84, cgcs2000, gcj02 (Amap/Tencent), bd09 (Baidu) or EPSG:...")
]


def register(app: typer.Typer) -> None:
    """Add the locate commands to ``app``."""
    app.command("locate")(locate)
    app.command("geocode")(geocode)


def locate(
    lon: Annotated[float, typer.Argument(help="Longitude (or easting).")],
    lat: Annotated[float, typer.Argument(help="Latitude (or northing).")],
    crs: CrsOption = "cgcs2000",
    accuracy: Annotated[float | None, typer.Option(help="Accuracy radius in metres (GPS).")] = None,
    at: AtOption = None,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Find the unit at every level of every layer for one point (同格 same-grid answer)."""
    try:
        service = LocateService(database(), refresh_seconds=0)
        answer = service.locate(lon, lat, crs=crs, accuracy_m=accuracy, at=at)
    except TonggeError as error:
        fail(error, as_json=format is ReportFormat.json)
    if format is ReportFormat.json:
        echo_json(answer.to_dict())
        return
    out.print(
        f"[bold]{answer.status}[/bold]  CGCS2000 {answer.lon:.6f}, {answer.lat:.6f}"
        f"  (from {answer.input.crs} {lon}, {lat})",
        highlight=False,
    )
    if answer.message:
        out.print(f"[yellow]{answer.message}[/yellow]", highlight=False)
    table = Table("layer", "level", "code", "name", "status", "to boundary m")
    for layer, body in answer.layers.items():
        for unit in body.units:
            status = unit.status
            if unit.nearest is not None:
                near = unit.nearest
                status += f" (nearest {near.code} {near.distance_m:.0f} m)"
            distance = unit.boundary_distance_m
            table.add_row(
                layer,
                unit.level,
                unit.code or "—",
                unit.name or "",
                status,
                "" if distance is None else f"{distance:.1f}",
            )
    out.print(table)


def geocode(
    source: Annotated[
        Path,
        typer.Argument(help="CSV/TSV, Excel .xlsx, (Geo)Parquet, GeoJSON, GeoPackage, KML."),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Where to write: .csv, .parquet or .xlsx for a table; a vector file as its input.",
        ),
    ],
    x: Annotated[
        str | None, typer.Option(help="Column with x/longitude (default: lon, lng, 经度 or x).")
    ] = None,
    y: Annotated[
        str | None, typer.Option(help="Column with y/latitude (default: lat, 纬度 or y).")
    ] = None,
    crs: CrsOption = "cgcs2000",
    address_column: Annotated[
        str | None,
        typer.Option(help="Column of standard addresses (e.g. 地址) to locate instead of x/y."),
    ] = None,
    names: Annotated[bool, typer.Option(help="Add unit names next to the codes.")] = False,
    encoding: Annotated[
        str | None,
        typer.Option(help="Text encoding of a CSV (utf-8, gbk, gb18030…; default: detected)."),
    ] = None,
    at: AtOption = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows per chunk (memory bound).")
    ] = 250_000,
) -> None:
    """Locate every row of a file in chunks; writes the rows with the answer's columns."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    try:
        check_input(source, option="SOURCE")
        check_output(output, inputs=[source])
        yield_cpu()
        service = LocateService(database(), refresh_seconds=0)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("geocoding", total=None)
            result = geocode_file(
                service,
                source,
                output,
                x=x,
                y=y,
                crs=crs,
                at=at,
                encoding=encoding,
                address=address_column,
                names=names,
                chunk_rows=chunk_rows,
                # Your own file, streamed chunk by chunk: no total row or byte cap.
                limits=ReadLimits.from_settings().streaming(),
                on_progress=lambda done: progress.update(
                    task, description=f"geocoding: {done:,} rows"
                ),
            )
    except TonggeError as error:
        fail(error)
    if result.encoding:
        err.print(f"text read as {result.encoding}")
    err.print(f"[green]✓[/green] {result.rows:,} rows located → {output}")
