"""Edit commands: ``tongge edit OP`` and ``tongge changesets list|show|revert|apply|discard``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from api.bootstrap import open_database
from api.cli._output import (
    EXIT_PROBLEMS,
    ReportFormat,
    echo_json,
    err,
    fail,
    out,
    parse_option_time,
)
from gis.access import cli_principal
from gis.edits import EditOptions, drafts, problem_geojson
from gis.edits import service as edits
from gis.errors import EditRefusedError, TonggeError
from gis.units import layer_spec

changesets_app = typer.Typer(
    help="Change sets 变更集: edits and drafts, their history, revert, apply, discard.",
    no_args_is_help=True,
)


class Operation(StrEnum):
    """The edit operations."""

    transfer = "transfer"
    reshape = "reshape"
    split_ = "split"  # (str.split is taken)
    merge = "merge"
    carve = "carve"
    retire = "retire"
    auto_split = "auto_split"


class Status(StrEnum):
    """What a change set is."""

    applied = "applied"
    draft = "draft"
    reverted = "reverted"
    discarded = "discarded"


class Cascade(StrEnum):
    """How children cut by a new edge follow."""

    new = "new"
    merge = "merge"


def register(app: typer.Typer) -> None:
    """Add ``edit`` and the ``changesets`` group to ``app``."""
    app.command("edit")(edit_command)
    app.add_typer(changesets_app, name="changesets")


def edit_command(
    op: Annotated[
        Operation, typer.Argument(help="transfer, reshape, split, merge, carve, retire.")
    ],
    layer: Annotated[str, typer.Option(help="Layer, e.g. governance.")],
    level: Annotated[str, typer.Option(help="Level the edit is made at, e.g. grid.")],
    unit: Annotated[
        list[str] | None, typer.Option("--unit", help="Unit code (repeat for several).")
    ] = None,
    geometry: Annotated[
        str | None,
        typer.Option(help="File with the drawn polygon or line (GeoJSON, GeoPackage…)."),
    ] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="Receiving unit (repeat for retire).")
    ] = None,
    parts: Annotated[int | None, typer.Option(help="auto_split: how many parts.")] = None,
    cascade: Annotated[Cascade, typer.Option(help="How cut children follow.")] = Cascade.new,
    valid_from: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Effective date (YYYY-MM-DD = 00:00 China time).",
        ),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (stored with the change set).")] = None,
    name: Annotated[str | None, typer.Option(help="carve: the new unit's name.")] = None,
    poi: Annotated[str | None, typer.Option(help="carve: the POI (key or name).")] = None,
    force: Annotated[bool, typer.Option(help="Accept an edge that cuts a building.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Preview only: nothing is written.")] = False,
    draft: Annotated[
        bool,
        typer.Option(help="Store as a draft change set (not applied; `changesets apply ID`)."),
    ] = False,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Edit boundaries (边界编辑): preview with --dry-run, save with --draft, else apply."""

    def run() -> edits.EditResult:
        drawing = edits.read_drawing(geometry) if geometry is not None else None
        return edits.edit(
            open_database(),
            layer=layer,
            op=op.value,
            level=level,
            units=unit or [],
            geometry=drawing,
            to=(to[0] if op is not Operation.retire and to else to),
            parts=parts,
            name=name,
            poi=poi,
            options=EditOptions(cascade=cascade.value, force=force),
            valid_from=valid_from,
            reason=reason,
            dry_run=dry_run,
            actor=cli_principal(),
            draft=draft,
        )

    _report_edit(run, as_json=format is ReportFormat.json)


def _report_edit(run: Callable[[], edits.EditResult], *, as_json: bool) -> None:
    """Run an edit, a revert or a draft's apply; print its answer or its refusal."""
    try:
        result = run()
    except EditRefusedError as refused:
        _refused(refused, as_json=as_json)
    except TonggeError as error:
        fail(error, as_json=as_json)
    answer = result.to_dict()
    if as_json:
        echo_json(answer)
        return
    _print_edit(answer)


def _refused(error: EditRefusedError, *, as_json: bool) -> None:
    problems = [problem_geojson(p) for p in error.problems]
    if as_json:
        echo_json({"changeset": None, "applied": False, "problems": problems})
    else:
        for p in problems:
            err.print(f"[red]✗ {p['rule']}[/red] {', '.join(p['codes'])} ({p['lon']}, {p['lat']})")
            err.print(f"  {p['message']}")
    typer.secho(f"✗ {error.message}", err=True, fg="red")
    raise typer.Exit(EXIT_PROBLEMS)


def _print_edit(answer: dict[str, Any]) -> None:
    verb = (
        f"applied as change set #{answer['changeset']}"
        if answer["applied"]
        else f"saved as draft #{answer['changeset']} (not applied)"
        if answer.get("status") == "draft"
        else "preview"
    )
    out.print(f"[green]✓[/green] {answer['op']} at {answer['level']}: {verb}")
    for key in ("created", "changed", "retired"):
        if answer[key]:
            out.print(f"  {key}: {', '.join(answer[key])}")
    impact = answer["impact"]
    out.print(
        f"  moves: {impact['buildings']} building(s), {impact['households']} household(s), "
        f"{impact['persons']} person(s), {len(impact['pois'])} POI(s)"
    )
    for move in impact["moves"][:20]:
        out.print(f"    {move['key']}: {move['from_unit']} → {move['to_unit']}")
    if len(impact["moves"]) > 20:
        out.print(f"    … and {len(impact['moves']) - 20} more (--format json lists every one)")
    table = Table("unit", "level", "before", "after", "target")
    for row in impact["workload"]:
        target = (
            f"{row['target_min']:g}–{row['target_max']:g}"
            if row["target_min"] is not None and row["target_max"] is not None
            else ""
        )
        table.add_row(row["code"], row["level"], str(row["before"]), str(row["after"]), target)
    out.print(table)
    alignment = impact["alignment"]
    out.print(
        f"  same grid 同格: {alignment['before']} → {alignment['after']} violation(s) "
        f"(+{len(alignment['added'])}, −{len(alignment['resolved'])})"
    )
    if answer["cut_buildings"]:
        out.print(
            f"  [yellow]buildings cut (forced): {', '.join(answer['cut_buildings'])}[/yellow]"
        )


@changesets_app.command("list")
def list_command(
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    unit: Annotated[str | None, typer.Option(help="Only change sets touching this unit.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only change sets in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List a layer's change sets, newest first."""
    try:
        db = open_database()
        layer_spec(db, layer=layer)  # an unknown layer is an error, not an empty list
        rows, total = edits.changeset_history(
            db, layer=layer, unit=unit, limit=limit, status=None if status is None else status.value
        )
    except TonggeError as error:
        fail(error, as_json=format is ReportFormat.json)
    answers = [edits.changeset_json(r, units=False) for r in rows]
    if format is ReportFormat.json:
        echo_json({"total": total, "changesets": answers})
        return
    table = Table("id", "status", "op", "level", "valid from", "author", "reason", "reverts")
    for a in answers:
        table.add_row(
            str(a["id"]),
            a["status"],
            a["op"],
            a["level"],
            a["valid_from"],
            a["author"],
            a["reason"] or "",
            str(a["reverts"] or ""),
        )
    out.print(table)
    out.print(f"{total} change set(s)")


@changesets_app.command("show")
def show_command(
    changeset_id: Annotated[int, typer.Argument(help="Change set id.", min=1)],
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Show one change set (units before and after)."""
    try:
        stored = edits.changeset_detail(open_database(), layer=layer, changeset_id=changeset_id)
    except TonggeError as error:
        fail(error, as_json=format is ReportFormat.json)
    answer = edits.changeset_json(stored)
    if format is ReportFormat.json:
        echo_json(answer)
        return
    out.print(
        f"#{answer['id']} ({answer['status']}) {answer['op']} at {answer['level']} "
        f"by {answer['author']}, "
        f"valid from {answer['valid_from']}" + (f": {answer['reason']}" if answer["reason"] else "")
    )
    for key in ("created", "changed", "retired"):
        codes = answer["summary"].get(key) or []
        if codes:
            out.print(f"  {key}: {', '.join(codes)}")
    if answer.get("reverted_by"):
        out.print(f"  reverted by #{answer['reverted_by']}")


@changesets_app.command("revert")
def revert_command(
    changeset_id: Annotated[int, typer.Argument(help="Change set id.", min=1)],
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    reason: Annotated[str | None, typer.Option(help="Why.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Preview only.")] = False,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Restore the geometry before a change set exactly (a new change set)."""
    _report_edit(
        lambda: edits.revert(
            open_database(),
            layer=layer,
            changeset_id=changeset_id,
            reason=reason,
            dry_run=dry_run,
            actor=cli_principal(),
        ),
        as_json=format is ReportFormat.json,
    )


@changesets_app.command("apply")
def apply_command(
    changeset_id: Annotated[int, typer.Argument(help="Draft change set id.", min=1)],
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    valid_from: Annotated[
        datetime | None,
        typer.Option(
            parser=parse_option_time,
            metavar="TIME",
            help="Effective date (default: the draft's, else now).",
        ),
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Apply a draft change set, if nothing under it changed since it was computed."""
    _report_edit(
        lambda: drafts.apply_draft(
            open_database(),
            layer=layer,
            changeset_id=changeset_id,
            valid_from=valid_from,
            actor=cli_principal(),
        ),
        as_json=format is ReportFormat.json,
    )


@changesets_app.command("discard")
def discard_command(
    changeset_id: Annotated[int, typer.Argument(help="Draft change set id.", min=1)],
    layer: Annotated[str, typer.Option(help="Layer.")] = "governance",
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Discard a draft change set (kept in the history as discarded)."""
    try:
        stored = drafts.discard_draft(
            open_database(), layer=layer, changeset_id=changeset_id, actor=cli_principal()
        )
    except TonggeError as error:
        fail(error, as_json=format is ReportFormat.json)
    answer = edits.changeset_json(stored, units=False)
    if format is ReportFormat.json:
        echo_json(answer)
        return
    out.print(f"[green]✓[/green] draft #{answer['id']} discarded")
