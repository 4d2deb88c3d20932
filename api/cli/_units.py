"""Units commands: layers, check, import, export."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from api.cli._output import (
    EXIT_PROBLEMS,
    AtOption,
    ReportFormat,
    check_output,
    database,
    echo_json,
    err,
    fail,
    out,
    parse_option_time,
    print_report,
    steps,
    yield_cpu,
)
from gis.access import cli_principal
from gis.errors import InputError, TonggeError
from gis.io import EXPORT_FORMATS, FieldMap
from gis.layers import LayerSpec, LevelSpec
from gis.units import ImportResult, check_file, define_layer, export_layer, import_file, list_layers
from gis.validate import Tolerances


class ExportFormat(StrEnum):
    """File formats ``export`` writes (see :data:`gis.io.EXPORT_FORMATS`)."""

    geojson = "geojson"
    gpkg = "gpkg"
    shp = "shp"
    kml = "kml"
    parquet = "parquet"
    csv = "csv"
    xlsx = "xlsx"


assert {f.value for f in ExportFormat} == set(EXPORT_FORMATS)

CodeField = Annotated[str | None, typer.Option(help="Field holding the unit code (default: code).")]
NameField = Annotated[str | None, typer.Option(help="Field holding the unit name (default: name).")]
ParentField = Annotated[
    str | None, typer.Option(help="Field holding the parent's code (default: parent_code).")
]
Crs = Annotated[
    str | None,
    typer.Option(help="CRS of the file when it has none, or gcj02/bd09 (converted on read)."),
]
Encoding = Annotated[
    str | None,
    typer.Option(
        help="Text encoding of a CSV or Shapefile (utf-8, gbk, gb18030…); "
        "default: the .cpg, else found from the bytes."
    ),
]
SliverArea = Annotated[
    float, typer.Option(min=0, help="Discrepancies under this area (m²) are warnings.")
]
SliverWidth = Annotated[
    float, typer.Option(min=0, help="Discrepancies thinner than this (m) are warnings.")
]


def register(app: typer.Typer) -> None:
    """Add the units commands to ``app``."""
    app.command("layers")(layers)
    app.command("define-layer")(define)
    app.command("check")(check)
    app.command("import")(import_)
    app.command("export")(export)


def check(
    file: Annotated[Path, typer.Argument(help="Boundary file (GeoJSON, GPKG, SHP, CSV+WKT...).")],
    level: Annotated[
        str | None, typer.Option(help="Level of the units (grid, beat...): code rules.")
    ] = None,
    code_field: CodeField = None,
    name_field: NameField = None,
    parent_field: ParentField = None,
    parent: Annotated[Path | None, typer.Option(help="File with the parent level.")] = None,
    parent_code_field: Annotated[
        str | None, typer.Option(help="Code field of the parent file.")
    ] = None,
    crs: Crs = None,
    parent_crs: Annotated[
        str | None, typer.Option(help="CRS of the parent file when it has none.")
    ] = None,
    encoding: Encoding = None,
    sliver_area: SliverArea = 1.0,
    sliver_width: SliverWidth = 0.05,
    format: Annotated[
        ReportFormat, typer.Option("--format", help="text or json.")
    ] = ReportFormat.text,
    map: Annotated[
        Path | None, typer.Option("--map", help="Also write an HTML map of the problems.")
    ] = None,
) -> None:
    """Validate a boundary file without importing it (exit 0 valid, 1 problems, 2 unusable)."""
    as_json = format is ReportFormat.json
    try:
        if parent_crs is not None and parent is None:
            raise InputError("--parent-crs needs --parent (the parent file)", field="parent_crs")
        if map is not None:
            check_output(map, inputs=[file], option="--map")
        with steps(f"checking {file.name}", quiet=as_json) as (step, _):
            report = check_file(
                file,
                fields=FieldMap(code=code_field, name=name_field, parent=parent_field),
                crs=crs,
                level=level,
                parent_path=parent,
                parent_fields=FieldMap(code=parent_code_field),
                parent_crs=parent_crs,
                tolerances=Tolerances(sliver_area_m2=sliver_area, sliver_width_m=sliver_width),
                step=step,
                encoding=encoding,
            )
    except TonggeError as error:
        fail(error, as_json=as_json)
    print_report(report, as_json=as_json)
    if map is not None:
        from gis.io import read_units
        from gis.maps import problems_map

        units = read_units(file, fields=FieldMap(code=code_field), crs=crs, encoding=encoding)
        problems_map(report, units=units).save(str(map))
        err.print(f"map of the problems: {map}")
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)


class Cascade(StrEnum):
    """What happens to the units of the levels below that new edges cut."""

    new = "new"
    merge = "merge"


def import_(
    file: Annotated[Path, typer.Argument(help="Boundary file to import.")],
    layer: Annotated[str, typer.Option(help="Layer: governance, police, urban or your own.")],
    level: Annotated[str, typer.Option(help="Level within the layer (e.g. grid).")],
    code_field: CodeField = None,
    name_field: NameField = None,
    parent_field: ParentField = None,
    kind_field: Annotated[str | None, typer.Option(help="Field with 综合/专属 kind.")] = None,
    crs: Crs = None,
    encoding: Encoding = None,
    valid_from: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Date (China time) or ISO time the version starts; default now.",
        ),
    ] = None,
    cascade: Annotated[
        Cascade | None,
        typer.Option(
            help="Units below cut by a new edge: the moved part becomes a new unit of the "
            "receiving parent (new) or joins its neighbouring unit there (merge). "
            "Default: refuse (children_not_nested).",
        ),
    ] = None,
    partial: Annotated[
        bool,
        typer.Option(
            help="The file holds only the units you changed; they must cover exactly what "
            "they replace (the rest of the level stays)."
        ),
    ] = False,
    keep_attributes: Annotated[
        bool, typer.Option(help="Store the file's extra columns as unit attributes.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Check and report what would change; write nothing.")
    ] = False,
    repair: Annotated[
        bool, typer.Option(help="Fix slivers under the tolerance, listing each fix.")
    ] = False,
    sliver_area: SliverArea = 1.0,
    sliver_width: SliverWidth = 0.05,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Import a level, all or nothing: a file with problems changes nothing.

    Every level stays a valid nested coverage: edges are noded with the
    neighbours', the levels below follow new edges (--cascade) or the import
    is refused, and the buildings that change unit are listed and kept.
    """
    as_json = format is ReportFormat.json
    try:
        yield_cpu()
        with steps(f"importing {file.name}", quiet=as_json) as (step, advance):
            db = database(step=step)
            result = import_file(
                db,
                path=file,
                layer=layer,
                level=level,
                fields=FieldMap(
                    code=code_field, name=name_field, parent=parent_field, kind=kind_field
                ),
                crs=crs,
                valid_from=valid_from,
                repair=repair,
                cascade=cascade.value if cascade is not None else None,
                partial=partial,
                keep_attributes=keep_attributes,
                dry_run=dry_run,
                tolerances=Tolerances(sliver_area_m2=sliver_area, sliver_width_m=sliver_width),
                step=step,
                on_progress=advance,
                actor=cli_principal(),
                encoding=encoding,
            )
    except TonggeError as error:
        fail(error, as_json=as_json)
    if as_json:
        echo_json({"ok": True, **result.to_dict()})
        return
    print_import(result)


def print_import(result: ImportResult, *, shown: int = 20) -> None:
    """Print an import's outcome for people: fixes, counts per level, first moves."""
    for fix in result.repairs:
        out.print(f"repaired {fix.code}: {fix.message} ({fix.rule})")
    for noded in result.fixes:
        out.print(f"noded {noded.code}: {noded.message}")
    if result.report.warnings:
        print_report(result.report, as_json=False)
    verb = "would change" if result.dry_run else "changed"
    summary = result.summary
    for part in [summary, *result.cascaded]:
        counts = ", ".join(f"{k} {v}" for k, v in part.counts().items())
        out.print(f"[green]✓ {summary.layer}:{part.level}[/green] {counts}")
    moves = result.moves
    if len(moves) == 0:
        out.print(f"re-assignment: no building {verb} unit")
        return
    households = int(moves["households"].sum())
    out.print(
        f"re-assignment: {len(moves):,} building(s) and {households:,} household(s) {verb} "
        f"{summary.level}"
    )
    for row in moves.head(shown).itertuples():
        detail = f"{row.from_code} → {row.to_code}"
        if row.level != row.changed_level:
            detail += f"  ({row.level} {row.from_unit} → {row.to_unit})"
        out.print(f"  {row.key}: {detail}, {row.households} household(s)")
    if len(moves) > shown:
        out.print(f"  … and {len(moves) - shown:,} more (--format json lists every one)")
    if result.dry_run:
        out.print("[yellow]dry run: nothing was written[/yellow]")


def export(
    layer: Annotated[str, typer.Option(help="Layer to export.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    format: Annotated[ExportFormat, typer.Option("--format", help="Output format.")],
    level: Annotated[str | None, typer.Option(help="Only this level.")] = None,
    crs: Annotated[
        str | None, typer.Option(help="Output CRS (default EPSG:4490; gcj02/bd09 too).")
    ] = None,
    at: AtOption = None,
) -> None:
    """Export a layer (or one level) to a file."""
    try:
        check_output(output)
        db = database()
        count = export_layer(
            db,
            layer=layer,
            level=level,
            fmt=format.value,
            out=output,
            crs=crs,
            at=at,
            actor=cli_principal(),
        )
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] wrote {count} units to {output}")


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def layers(
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List layers, their levels and unit counts."""
    try:
        summaries = list_layers(database())
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json(
            [
                {
                    "name": s.name,
                    "title": s.title,
                    "levels": [
                        {"name": lv.name, "title": lv.title, "units": lv.unit_count}
                        for lv in s.levels
                    ],
                    "synthetic": s.synthetic,
                    "source": s.source,
                }
                for s in summaries
            ]
        )
        return
    for summary in summaries:
        mark = "  [yellow]示例数据 synthetic sample data[/yellow]" if summary.synthetic else ""
        out.print(f"[bold]{summary.name}[/bold] {summary.title}{mark}")
        for level in summary.levels:
            out.print(
                f"  {level.rank}. {level.name:<12} {level.title:<24} {level.unit_count:>6} units"
            )


def define(
    name: Annotated[str, typer.Argument(help="Layer name: lower-case letters, digits, _.")],
    levels: Annotated[list[str], typer.Argument(help="Levels from the top down, e.g. zone area.")],
    title: Annotated[str, typer.Option(help="Label, e.g. 乡镇工作片.")] = "",
    digits_only: Annotated[bool, typer.Option(help="Codes must be digits.")] = False,
    prefix_codes: Annotated[
        bool, typer.Option(help="A child's code must start with its parent's.")
    ] = True,
    code_length: Annotated[
        list[str] | None,
        typer.Option(help="LEVEL=N[,N] allowed code lengths, e.g. --code-length zone=9."),
    ] = None,
) -> None:
    """Define a layer of your own (e.g. 乡镇工作片 work areas) with its ordered levels."""
    try:
        for candidate in (name, *levels):
            if not _NAME.match(candidate):
                raise InputError(
                    f"{candidate!r} is not a valid name (lower-case letters, digits, _)",
                    field="name",
                )
        lengths = _lengths(code_length or [], levels)
        spec = LayerSpec(
            name=name,
            title=title,
            levels=tuple(LevelSpec(level, level, lengths.get(level)) for level in levels),
            digits_only=digits_only,
            child_code_extends_parent=prefix_codes,
        )
        stored = define_layer(database(), spec=spec, actor=cli_principal())
    except TonggeError as error:
        fail(error)
    err.print(
        f"[green]✓[/green] layer {stored.name}: {' → '.join(lv.name for lv in stored.levels)}"
    )


def _lengths(options: list[str], levels: list[str]) -> dict[str, tuple[int, ...]]:
    result = {}
    for option in options:
        level, _, numbers = option.partition("=")
        if level not in levels:
            raise InputError(f"--code-length {option!r}: no level {level!r}", field="code_length")
        try:
            result[level] = tuple(int(n) for n in numbers.split(","))
        except ValueError:
            raise InputError(
                f"--code-length {option!r} must be LEVEL=N[,N]", field="code_length"
            ) from None
    return result
