"""The ``align`` command: same-grid (同格) check between two layers, and its fix."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
)
from gis.access import cli_principal
from gis.alignment import (
    DEFAULT_NOISE,
    AlignmentReport,
    Proposal,
    align,
    apply_alignment,
    noise_tolerance,
    propose,
)
from gis.errors import TonggeError


def register(app: typer.Typer) -> None:
    """Add the ``align`` command to ``app``."""
    app.command("align")(align_command)


def align_command(
    layer_a: Annotated[
        str, typer.Option(help="LAYER:LEVEL that must nest, e.g. governance:grid.")
    ] = "governance:grid",
    layer_b: Annotated[
        str, typer.Option(help="LAYER:LEVEL it must nest in, e.g. police:beat.")
    ] = "police:beat",
    at: AtOption = None,
    proposal: Annotated[
        bool, typer.Option(help="Also compute the least change that fixes it.")
    ] = False,
    apply: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Store the proposal as a new version valid from this date "
            "(also snaps boundary noise onto layer A's edges)."
        ),
    ] = None,
    map: Annotated[
        Path | None, typer.Option("--map", help="Write an HTML map of violations.")
    ] = None,
    noise_width: Annotated[
        float,
        typer.Option(help="Pieces narrower than this (m) are boundary noise, not violations."),
    ] = DEFAULT_NOISE.width_m,
    noise_households: Annotated[
        float,
        typer.Option(
            help="Pieces under this share of a grid's households (and under --noise-area) "
            "are boundary noise."
        ),
    ] = DEFAULT_NOISE.household_share,
    noise_area: Annotated[
        float, typer.Option(help="See --noise-households: the area share (0-1).")
    ] = DEFAULT_NOISE.area_share,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Check that layer A's units each lie in one unit of layer B (exit 1 when not aligned)."""
    as_json = format is ReportFormat.json
    try:
        if map is not None:
            check_output(map, option="--map")
        noise = noise_tolerance(
            width_m=noise_width, household_share=noise_households, area_share=noise_area
        )
        db = database()
        state = align(db, a=layer_a, b=layer_b, at=at, noise=noise)
        # Noise alone is no violation, but the proposal can still snap it away.
        wanted = not state.report.aligned or bool(state.report.noise)
        plan = propose(state) if (proposal or apply) and wanted else None
        if apply and plan is not None:
            apply_alignment(db, state=state, proposal=plan, valid_from=apply, actor=cli_principal())
    except TonggeError as error:
        fail(error, as_json=as_json)
    report = state.report
    if map is not None:
        from gis.maps import alignment_map

        alignment_map(report, state.a_units, state.b_units).save(str(map))
        err.print(f"map of the violations: {map}")
    if as_json:
        body = report.to_dict()
        if plan is not None:
            body["proposal"] = plan.to_dict()
            body["applied"] = bool(apply)
        echo_json(body)
    else:
        _print(report, plan, applied=bool(apply), units=len(state.a_units))
    if not report.aligned and not (apply and plan is not None):
        raise typer.Exit(EXIT_PROBLEMS)


def _print(report: AlignmentReport, plan: Proposal | None, *, applied: bool, units: int) -> None:
    if report.noise:
        widest = max(n.width_m for n in report.noise)
        out.print(
            f"boundary noise 边界误差: {len(report.noise)} piece(s), "
            f"{sum(n.area_m2 for n in report.noise):,.0f} m², at most {widest:.1f} m wide "
            "(not violations; --format json lists them)"
        )
    if report.datum_offset is not None:
        out.print(f"[red]datum_offset[/red]: {report.datum_offset.message('layer B', 'layer A')}")
    for stale in report.stale:
        out.print(f"[red]stale[/red]: {stale['message']}")
    if report.aligned:
        out.print(f"[green]✓ aligned[/green] ({units} units checked)")
        return
    table = Table(title=f"同格 violations ({len(report.violations)})", title_style="red")
    for column in ("kind", "codes", "lon, lat", "area m²", "message"):
        table.add_column(column, overflow="fold")
    for v in report.violations:
        where = f"{v.lon:.6f}, {v.lat:.6f}" if v.lon is not None else ""
        table.add_row(v.kind, " ".join(v.codes), where, f"{v.area_m2 or 0:,.0f}", v.message)
    out.print(table)
    if plan is not None:
        moves = Table(title=f"proposal: {len(plan.moves)} move(s)", title_style="cyan")
        for column in ("unit", "from", "to", "households", "area m²"):
            moves.add_column(column)
        for m in plan.moves:
            moves.add_row(
                m.a_code,
                " ".join(m.from_b),
                m.to_b,
                f"{m.households or 0:,.0f}",
                f"{m.area_m2:,.0f}",
            )
        out.print(moves)
        if plan.snapped:
            out.print(
                f"{len(plan.snapped)} unit(s) of layer B only change by boundary noise: "
                f"their edges are snapped onto layer A's ({', '.join(plan.snapped[:10])}"
                f"{'…' if len(plan.snapped) > 10 else ''})"
            )
        if plan.datum_offset is not None:
            out.print(f"layer B converted from {plan.datum_offset.datum} to CGCS2000")
        state = "applied as a new version" if applied else "not applied (use --apply DATE)"
        out.print(f"proposal {'aligns both layers' if plan.aligned else 'is incomplete'}; {state}")
