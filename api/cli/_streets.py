"""Streets commands: import street lines (GeoPackage/GeoJSON/OSM PBF), export them."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from api.bootstrap import open_database
from api.cli._output import check_output, err, fail, steps, yield_cpu
from gis.access import cli_principal
from gis.errors import TonggeError
from gis.streets import export_streets, import_streets, streets_geojson

streets_app = typer.Typer(
    help="Streets 街路巷: centre lines with names and classes.", no_args_is_help=True
)


class StreetFormat(StrEnum):
    """Formats streets are exported to."""

    geojson = "geojson"
    gpkg = "gpkg"


class OsmNetwork(StrEnum):
    """Which ways of an OSM PBF file are streets."""

    driving = "driving"
    walking = "walking"
    cycling = "cycling"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the streets commands to ``app``."""
    app.add_typer(streets_app, name="streets")


@streets_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="GeoPackage, GeoJSON (…) or OSM .osm.pbf file.")],
    crs: Annotated[str | None, typer.Option(help="CRS when the file has none (or gcj02).")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete every stored street first.")
    ] = False,
    osm_network: Annotated[
        OsmNetwork, typer.Option("--osm-network", help="OSM PBF: which ways are streets.")
    ] = OsmNetwork.driving,
) -> None:
    """Import street lines, all or nothing (bad rows are named, nothing is written)."""
    try:
        actor = cli_principal()
        yield_cpu()
        with steps("importing streets") as (_, advance):
            result = import_streets(
                open_database(),
                path=file,
                crs=crs,
                replace=replace,
                osm_network=osm_network.value,
                on_progress=advance,
                actor=actor,
            )
    except TonggeError as error:
        fail(error)
    classes = ", ".join(f"{name} {n:,}" for name, n in sorted(result.classes.items()))
    err.print(f"[green]✓[/green] {result.count:,} streets imported ({classes})")


@streets_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")
    ] = None,
    format: Annotated[StreetFormat, typer.Option("--format")] = StreetFormat.geojson,
) -> None:
    """Export the stored streets (EPSG:4490): GeoJSON to stdout, or a file."""
    try:
        if output is not None:
            check_output(output)
        db = open_database()
        if output is None:
            if format is not StreetFormat.geojson:
                err.print("[red]✗[/red] --format gpkg needs --output FILE")
                raise typer.Exit(2)
            sys.stdout.write(streets_geojson(db) + "\n")
            return
        count = export_streets(db, path=output, fmt=format.value)
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] wrote {count:,} streets to {output}")
