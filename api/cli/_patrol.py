"""The ``patrol`` commands: plan, export, check and score patrol routes (日巡查)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli._output import ReportFormat, check_output, echo_json, err, fail, out
from gis.access import Jurisdiction, cli_principal, record
from gis.errors import InputError, TonggeError
from gis.patrol import (
    PatrolPlan,
    check_route,
    read_route,
    read_track,
    score_track,
    write_plan,
)
from gis.patrol._routes import (
    delete_route,
    export_route,
    get_route,
    list_routes,
    route_json,
    save_plan_routes,
)
from gis.patrol._service import (
    UnitArea,
    area_from_file,
    clip_arguments,
    load_unit,
    network_for,
    parse_checkpoint,
    parse_lonlat,
    parse_visited,
    plan_for,
    save_plan,
    schedule_for,
)
from gis.repository import Database

patrol = typer.Typer(
    name="patrol",
    help="巡查路线 patrol routes: plan, export, check a route, score a GPS track.",
    no_args_is_help=True,
)


routes = typer.Typer(
    name="routes",
    help="Stored routes 路线: of units, staff and shifts; stale when a boundary moved.",
    no_args_is_help=True,
)


class ModeChoice(StrEnum):
    """Walking ignores one-way streets; driving respects them."""

    walk = "walk"
    drive = "drive"


class DatumChoice(StrEnum):
    """Coordinates for the phone app."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


UnitOption = Annotated[
    str | None, typer.Option("--unit", help="Code of a stored unit (micro-grid, grid, beat).")
]
LayerOption = Annotated[
    str | None, typer.Option("--layer", help="Layer of --unit, when the code is in several.")
]
AreaOption = Annotated[
    Path | None, typer.Option("--area", help="Polygon file of the area to cover instead.")
]
NetworkOption = Annotated[
    Path | None,
    typer.Option(
        "--network",
        help="Streets: OSM .osm.pbf or a line file GDAL reads (default: the stored streets).",
    ),
]
ModeOption = Annotated[ModeChoice, typer.Option("--mode")]
StartOption = Annotated[
    str | None, typer.Option("--start", help="LON,LAT (WGS84) where routes start and end.")
]
CheckpointOption = Annotated[
    list[str] | None,
    typer.Option("--checkpoint", help="Must-visit place NAME@LON,LAT (WGS84); repeatable."),
]
MaxLengthOption = Annotated[
    float | None, typer.Option("--max-length-m", help="Longest route (m): split into shifts.")
]
DatumOption = Annotated[
    DatumChoice, typer.Option("--datum", help="wgs84, gcj02 (Amap/Tencent), bd09 (Baidu).")
]
FormatOption = Annotated[ReportFormat, typer.Option("--format")]


def register(app: typer.Typer) -> None:
    """Add the ``patrol`` command group to ``app``."""
    patrol.command("plan")(plan_command)
    patrol.command("schedule")(schedule_command)
    patrol.command("export")(export_command)
    patrol.command("check")(check_command)
    patrol.command("score")(score_command)
    routes.command("list")(routes_list_command)
    routes.command("show")(routes_show_command)
    routes.command("delete")(routes_delete_command)
    patrol.add_typer(routes)
    app.add_typer(patrol)


def plan_command(
    unit: UnitOption = None,
    layer: LayerOption = None,
    area: AreaOption = None,
    network: NetworkOption = None,
    mode: ModeOption = ModeChoice.walk,
    start: StartOption = None,
    checkpoint: CheckpointOption = None,
    max_length_m: MaxLengthOption = None,
    datum: DatumOption = DatumChoice.wgs84,
    format: FormatOption = ReportFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the plan: .gpx, .kml, .geojson or .csv."),
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="Store the routes with the unit (see `patrol routes`).")
    ] = False,
    staff: Annotated[
        int | None, typer.Option("--staff", help="With --save: the staff id who walks them.")
    ] = None,
    shift: Annotated[
        str | None, typer.Option("--shift", help="With --save: the shift (e.g. 早班 08:00-12:00).")
    ] = None,
) -> None:
    """Plan closed routes covering every street of a unit (or the whole --network)."""
    as_json = format is ReportFormat.json
    try:
        if output is not None:
            check_output(output)
        if (staff is not None or shift is not None) and not save:
            raise InputError("--staff and --shift go with --save", field="save")
        if save and unit is None:
            raise InputError("--save stores the routes of a stored unit: give --unit", field="save")
        db, chosen = _area(unit, layer, area, network)
        plan = _plan(db, network, chosen, mode, start, checkpoint, max_length_m)
        if output is not None:
            save_plan(plan, output, area=chosen, datum=datum.value)
        saved: list[int] = []
        if save:
            assert db is not None and chosen is not None
            saved = save_plan_routes(
                db,
                plan,
                area=chosen,
                actor=cli_principal(),
                staff_id=staff,
                shift=shift,
                params={
                    "start": start,
                    "max_length_m": max_length_m,
                    "network": "stored" if network is None else network.name,
                },
            )
    except TonggeError as error:
        fail(error, as_json=as_json)
    if as_json:
        echo_json({**plan.to_dict(), **({"saved": saved} if save else {})})
    else:
        _print_plan(plan)
        if saved:
            out.print(f"stored as route(s) {', '.join(map(str, saved))}")
    if output is not None:
        err.print(f"plan written to {output} ({datum.value})")


class BalanceChoice(StrEnum):
    """What the days share evenly."""

    time = "time"
    walk = "walk"


def schedule_command(
    unit: Annotated[str, typer.Option("--unit", help="Code of a stored unit (grid, micro-grid).")],
    layer: LayerOption = None,
    network: NetworkOption = None,
    mode: ModeOption = ModeChoice.walk,
    days: Annotated[int, typer.Option("--days", help="Working days (1-7).")] = 5,
    start: StartOption = None,
    first_day: Annotated[
        str | None, typer.Option("--from", help="Date of the first working day (YYYY-MM-DD).")
    ] = None,
    visited: Annotated[
        Path | None,
        typer.Option(
            "--visited",
            help="Last week's visited place ids (one a line): the others are carried over first.",
        ),
    ] = None,
    visit_minutes: Annotated[
        float, typer.Option("--visit-minutes", help="Time at each door.")
    ] = 5.0,
    balance: Annotated[BalanceChoice, typer.Option("--balance")] = BalanceChoice.time,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="A day may differ from the mean day by this share.")
    ] = 0.15,
    format: FormatOption = ReportFormat.text,
) -> None:
    """周走访: visit every household and shop of a unit once a week, each working day a route."""
    as_json = format is ReportFormat.json
    try:
        ids = _visited(visited)
        when = _date(first_day)
        db, chosen = _area(unit, layer, None, network)
        assert db is not None and chosen is not None  # a unit is always named
        week = schedule_for(
            db,
            network,
            area=chosen,
            days=days,
            visited=ids,
            mode=mode.value,
            start=parse_lonlat(start) if start else None,
            start_date=when,
            visit_minutes=visit_minutes,
            balance=balance.value,
            tolerance=tolerance,
        )
        body = week.to_dict()
        # The answer lists household keys: personal data, read on the record.
        record(
            db,
            actor=cli_principal(),
            action="patrol.schedule",
            target=f"unit:{chosen.layer}:{chosen.code}",
            detail={"days": days, "visits": body["visits"], "carried": body["carried"]},
        )
    except TonggeError as error:
        fail(error, as_json=as_json)
    if as_json:
        echo_json(body)
        return
    table = Table(title=f"周走访 weekly visits of {unit} ({body['visits']} places)")
    for column in ("day", "date", "visits", "carried over", "walk m", "walk", "at doors", "time"):
        table.add_column(column)
    for day in body["days"]:
        table.add_row(
            str(day["day"]),
            day["date"] or "",
            str(day["visits"]),
            str(day["carried"]),
            f"{day['length_m']:,.0f}",
            f"{day['walk_s'] / 60:.0f} min",
            f"{day['visit_s'] / 60:.0f} min",
            f"{day['time_s'] / 3600:.1f} h",
        )
    out.print(table)
    verdict = "balanced" if body["balanced"] else "NOT balanced"
    out.print(
        f"{verdict}: days differ from the mean day by at most {body['spread']:.1%} "
        f"({body['balance']}; tolerance {body['tolerance']:.0%}); carried over {body['carried']}"
    )


def _visited(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--visited: cannot read {path.name} ({error})", field="visited") from None
    return parse_visited(text)


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--from {text!r} is not a date (YYYY-MM-DD)", field="from") from None


class ExportFormat(StrEnum):
    """Route file formats."""

    gpx = "gpx"
    kml = "kml"
    geojson = "geojson"
    csv = "csv"


def export_command(
    route_id: Annotated[
        int | None, typer.Argument(help="A stored route (`patrol routes list`); else plan one.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help=".gpx, .kml, .geojson or .csv (stored route: stdout)."),
    ] = None,
    export_format: Annotated[
        ExportFormat | None,
        typer.Option("--format", help="Format (default: the output's suffix; gpx to stdout)."),
    ] = None,
    unit: UnitOption = None,
    layer: LayerOption = None,
    area: AreaOption = None,
    network: NetworkOption = None,
    mode: ModeOption = ModeChoice.walk,
    start: StartOption = None,
    checkpoint: CheckpointOption = None,
    max_length_m: MaxLengthOption = None,
    datum: DatumOption = DatumChoice.wgs84,
) -> None:
    """Write a stored route, or plan and write a unit's routes, for a phone (GPX 1.1, KML...)."""
    try:
        if output is not None:
            check_output(output)
        if route_id is not None:
            _export_stored(route_id, output, export_format, datum)
            return
        db, chosen = _area(unit, layer, area, network)
        if output is None:
            raise InputError(
                "give -o FILE (.gpx, .kml, .geojson or .csv), or a stored ROUTE_ID",
                field="output",
            )
        plan = _plan(db, network, chosen, mode, start, checkpoint, max_length_m)
        fmt = export_format.value if export_format is not None else None
        write_plan(
            plan,
            output,
            fmt=fmt,
            datum=datum.value,
            unit_code=chosen.code if chosen else None,
            unit_name=chosen.name if chosen else None,
        )
    except TonggeError as error:
        fail(error)
    out.print(f"{len(plan.routes)} route(s), {plan.length_m:,.0f} m → {output} ({datum.value})")


def _export_stored(
    route_id: int, output: Path | None, export_format: ExportFormat | None, datum: DatumChoice
) -> None:
    from api.bootstrap import open_database

    suffix = output.suffix.lower().lstrip(".") if output is not None else "gpx"
    fmt = (
        export_format.value
        if export_format is not None
        else {"json": "geojson"}.get(suffix, suffix)
    )
    text, _ = export_route(
        open_database(),
        Jurisdiction.everything(),
        route_id,
        fmt=fmt,
        datum=datum.value,
        actor=cli_principal(),
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"route {route_id} → {output} ({fmt}, {datum.value})")


def check_command(
    route: Annotated[Path, typer.Argument(help="The route: .gpx, .kml or .geojson.")],
    unit: UnitOption = None,
    layer: LayerOption = None,
    area: AreaOption = None,
    network: NetworkOption = None,
    mode: ModeOption = ModeChoice.walk,
    datum: Annotated[
        DatumChoice, typer.Option("--datum", help="Datum the route file is in.")
    ] = DatumChoice.wgs84,
    tolerance_m: Annotated[float, typer.Option(help="A street within this is covered.")] = 15.0,
    format: FormatOption = ReportFormat.text,
) -> None:
    """Check an existing route against a unit: length outside it, streets not covered."""
    as_json = format is ReportFormat.json
    try:
        db, chosen = _area(unit, layer, area, network)
        streets = network_for(db, network, area=chosen, mode=mode.value)
        lines = read_route(route, datum=datum.value)
        result = check_route(
            streets,
            lines,
            **clip_arguments(chosen),
            tolerance_m=tolerance_m,
        )
    except TonggeError as error:
        fail(error, as_json=as_json)
    body = result.to_dict()
    if as_json:
        echo_json(body)
        return
    out.print(
        f"route {body['length_m']:,.0f} m, outside the unit {body['outside_m']:,.0f} m "
        f"({body['outside_share']:.1%}); streets covered {body['covered_share']:.1%} "
        f"of {body['street_length_m']:,.0f} m"
    )
    if body["uncovered"]:
        table = Table(title=f"streets not covered ({len(body['uncovered'])})")
        for column in ("name", "length m", "lon, lat"):
            table.add_column(column)
        for row in body["uncovered"][:30]:
            table.add_row(
                row["name"] or "", f"{row['length_m']:.0f}", f"{row['lon']}, {row['lat']}"
            )
        out.print(table)


def score_command(
    track: Annotated[Path, typer.Argument(help="The recorded GPS track (.gpx trk).")],
    unit: UnitOption = None,
    layer: LayerOption = None,
    area: AreaOption = None,
    network: NetworkOption = None,
    mode: ModeOption = ModeChoice.walk,
    checkpoint: CheckpointOption = None,
    datum: Annotated[
        DatumChoice, typer.Option("--datum", help="Datum the track was recorded in.")
    ] = DatumChoice.wgs84,
    tolerance_m: Annotated[float, typer.Option(help="Fixes within this match a street.")] = 15.0,
    format: FormatOption = ReportFormat.text,
) -> None:
    """Score a recorded track against the unit's plan: streets walked, time inside, checkpoints."""
    as_json = format is ReportFormat.json
    try:
        db, chosen = _area(unit, layer, area, network)
        plan = _plan(db, network, chosen, mode, None, checkpoint, None)
        recorded = read_track(track, datum=datum.value)
        result = score_track(
            plan,
            recorded,
            **clip_arguments(chosen),
            tolerance_m=tolerance_m,
        )
    except TonggeError as error:
        fail(error, as_json=as_json)
    body = result.to_dict()
    if as_json:
        echo_json(body)
        return
    inside = body["time_inside_s"]
    out.print(
        f"walked {body['walked_street_m']:,.0f} m of {body['planned_street_m']:,.0f} m planned "
        f"({body['walked_share']:.1%}); time inside "
        f"{'unknown (no times)' if inside is None else f'{inside / 60:.0f} min'}; "
        f"checkpoints reached {len(body['checkpoints_reached'])}/"
        f"{len(body['checkpoints_reached']) + len(body['checkpoints_missed'])}"
    )


def _area(
    unit: str | None, layer: str | None, area: Path | None, network: Path | None
) -> tuple[Database | None, UnitArea | None]:
    """Return the database (when the unit or the streets come from it) and the area."""
    if unit is not None and area is not None:
        raise InputError("give --unit or --area, not both", field="unit")
    if unit is None and area is None and network is None:
        raise InputError(
            "nothing to plan: give --unit CODE (streets: the stored layer, or --network FILE), "
            "--area FILE, or --network FILE alone to cover the whole network",
            field="unit",
        )
    db: Database | None = None
    if unit is not None or network is None:
        from api.bootstrap import open_database

        db = open_database()
    if unit is not None:
        assert db is not None
        return db, load_unit(db, code=unit, layer=layer)
    if area is not None:
        return db, area_from_file(area)
    return db, None


def _plan(
    db: Database | None,
    network: Path | None,
    area: UnitArea | None,
    mode: ModeChoice,
    start: str | None,
    checkpoints: list[str] | None,
    max_length_m: float | None,
) -> PatrolPlan:
    return plan_for(
        db,
        network,
        area=area,
        mode=mode.value,
        start=parse_lonlat(start) if start else None,
        checkpoints=[parse_checkpoint(c) for c in checkpoints or []],
        max_length_m=max_length_m,
    )


def _print_plan(plan: PatrolPlan) -> None:
    table = Table(title=f"巡查路线 patrol plan ({plan.method}, {plan.network.mode})")
    for column in (
        "route",
        "length m",
        "streets m",
        "deadhead m",
        "segments",
        "time",
        "checkpoints",
    ):
        table.add_column(column)
    for number, route in enumerate(plan.routes, start=1):
        table.add_row(
            str(number),
            f"{route.length_m:,.0f}",
            f"{route.street_m:,.0f}",
            f"{route.deadhead_m:,.0f}",
            str(route.segments),
            f"{route.time_s / 60:.0f} min",
            ", ".join(route.checkpoints),
        )
    out.print(table)
    out.print(
        f"streets {plan.street_length_m:,.0f} m, covered {plan.covered_share:.1%}; "
        f"total {plan.length_m:,.0f} m ({plan.length_m / plan.street_length_m:.3f}× streets); "
        f"lower bound {plan.lower_bound_m:,.0f} m{' (optimal)' if plan.exact else ''}"
    )


def routes_list_command(
    unit: Annotated[str | None, typer.Option("--unit", help="Routes of this unit.")] = None,
    layer: LayerOption = None,
    covering: Annotated[
        str | None, typer.Option("--covering", help="LON,LAT: routes passing within 30 m.")
    ] = None,
    stale: Annotated[
        bool, typer.Option("--stale", help="Only routes needing re-planning (boundary moved).")
    ] = False,
    format: FormatOption = ReportFormat.text,
) -> None:
    """List stored routes (newest first)."""
    as_json = format is ReportFormat.json
    try:
        point = parse_lonlat(covering, field="covering") if covering else None
        from api.bootstrap import open_database

        found = list_routes(
            open_database(),
            Jurisdiction.everything(),
            layer=layer,
            unit=unit,
            covering=point,
            stale=True if stale else None,
        )
    except TonggeError as error:
        fail(error, as_json=as_json)
    if as_json:
        echo_json({"routes": found})
        return
    table = Table(title=f"巡查路线 stored routes ({len(found)})")
    for column in ("id", "unit", "part", "staff", "shift", "length m", "time", "stale"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r["id"]),
            f"{r['layer']}:{r['unit_code']}",
            str(r["part"]),
            "" if r["staff_id"] is None else str(r["staff_id"]),
            r["shift"] or "",
            f"{r['length_m']:,.0f}",
            f"{r['time_s'] / 60:.0f} min",
            "re-plan" if r["stale"] else "",
        )
    out.print(table)


def routes_show_command(
    route_id: Annotated[int, typer.Argument(help="The route id.")],
    format: FormatOption = ReportFormat.text,
) -> None:
    """Show a stored route (JSON: with its line as GeoJSON, CGCS2000)."""
    as_json = format is ReportFormat.json
    try:
        from api.bootstrap import open_database

        found = route_json(get_route(open_database(), Jurisdiction.everything(), route_id))
    except TonggeError as error:
        fail(error, as_json=as_json)
    if as_json:
        echo_json(found)
        return
    for key, value in found.items():
        if key != "geometry":
            out.print(f"{key}: {value}")


def routes_delete_command(
    route_id: Annotated[int, typer.Argument(help="The route id.")],
) -> None:
    """Delete a stored route."""
    try:
        from api.bootstrap import open_database

        delete_route(open_database(), Jurisdiction.everything(), route_id, actor=cli_principal())
    except TonggeError as error:
        fail(error)
    out.print(f"route {route_id} deleted")
