"""Staff commands: assign people to units, list them, end an assignment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli._output import ReportFormat, database, echo_json, err, fail, out
from gis.access import cli_principal
from gis.errors import TonggeError
from gis.staff import ROLES, add_staff, end_staff, list_staff
from gis.units import layer_spec

staff_app = typer.Typer(
    help="People responsible for units 三员协同 (grid workers, police...).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``staff`` command group to ``app``."""
    app.add_typer(staff_app, name="staff")


@staff_app.command("add")
def add(
    unit: Annotated[str, typer.Argument(help="Unit code (micro-grid, grid, beat...).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    name: Annotated[str, typer.Option(help="Name shown to dispatchers.")],
    layer: Annotated[str, typer.Option(help="Layer of the unit.")] = "governance",
    phone: Annotated[str | None, typer.Option(help="Work phone (optional).")] = None,
) -> None:
    """Assign a person to a unit."""
    try:
        member = add_staff(
            database(), layer=layer, unit_code=unit,
            role=role,
            name=name,
            phone=phone,
            actor=cli_principal(),
        )
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] staff #{member.id}: {member.name} ({ROLES[member.role]}) → {unit}")


@staff_app.command("list")
def list_(
    unit: Annotated[list[str] | None, typer.Option(help="Only these unit codes.")] = None,
    layer: Annotated[str | None, typer.Option(help="Only this layer.")] = None,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List active staff."""
    try:
        db = database()
        if layer is not None:
            layer_spec(db, layer=layer)  # a misspelt layer is an error, not an empty list
        members = list_staff(db, layer=layer, unit_codes=unit)
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json([m.to_dict() for m in members])
        return
    table = Table("id", "layer", "unit", "role", "name", "phone")
    for m in members:
        table.add_row(str(m.id), m.layer, m.unit_code, ROLES[m.role], m.name, m.phone or "")
    out.print(table)


@staff_app.command("end")
def end(staff_id: Annotated[int, typer.Argument(help="Staff id (from `staff list`).")]) -> None:
    """End a person's assignment (kept in history)."""
    try:
        end_staff(database(), staff_id=staff_id, actor=cli_principal())
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] staff #{staff_id} ended")
