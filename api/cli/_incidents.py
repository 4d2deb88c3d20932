"""Incident commands: take in, list, show, move along the lifecycle, overdue, re-locate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli._output import ReportFormat, database, echo_json, err, fail, out
from gis.access import cli_principal
from gis.errors import InputError, TonggeError
from gis.incidents import ACTIONS, STATUSES, Incident, IncidentDraft, IncidentLocation, service
from gis.times import isoformat_local, parse_time

incidents_app = typer.Typer(
    help="Incidents 事件: intake, dispatch to 三员, lifecycle, deadlines, re-location.",
    no_args_is_help=True,
)

FormatOption = Annotated[ReportFormat, typer.Option("--format")]


def register(app: typer.Typer) -> None:
    """Add the ``incidents`` command group to ``app``."""
    app.add_typer(incidents_app, name="incidents")


def _time_option(name: str) -> Any:
    def parse(value: str | datetime) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_time(value, field=name)
        except InputError as error:
            raise typer.BadParameter(error.message.partition(": ")[2] or error.message) from None

    return parse


def _print_incident(incident: Incident, *, contact: bool = False) -> None:
    data = incident.to_dict(contact=contact)
    table = Table("field", "value", show_header=False)
    for key in (
        "id",
        "public_id",
        "status",
        "category",
        "channel",
        "external_id",
        "event_time",
        "received_at",
        "deadline_at",
        "review_reason",
        "escalated_to",
        "merged_into",
        "feedback_score",
        "closed_at",
        "address",
        "description",
    ):
        if data.get(key) is not None and data.get(key) != "":
            table.add_row(key, str(data[key]))
    if incident.lon is not None:
        table.add_row("lon/lat (CGCS2000)", f"{incident.lon:.6f}, {incident.lat:.6f}")
    for layer, levels in incident.units.items():
        table.add_row(f"units: {layer}", " > ".join(levels.values()))
    for role, people in incident.responsible.items():
        if people:
            table.add_row(f"responsible: {role}", ", ".join(p["name"] for p in people))
    if contact and incident.reporter_contact:
        table.add_row("reporter_contact", incident.reporter_contact)
    out.print(table)


def _print_list(incidents: list[Incident], *, title: str | None = None) -> None:
    table = Table(
        "id", "public id", "status", "category", "received", "deadline", "unit", title=title
    )
    for i in incidents:
        lowest = next(
            (list(levels.values())[-1] for levels in i.units.values() if levels),
            i.review_reason or "",
        )
        table.add_row(
            str(i.id),
            i.public_id,
            i.status,
            i.category,
            isoformat_local(i.received_at) or "",
            isoformat_local(i.deadline_at) or "",
            lowest,
        )
    out.print(table)


@incidents_app.command("intake")
def intake(
    category: Annotated[str, typer.Option(help="Subclass code of the taxonomy, e.g. 0101.")],
    x: Annotated[float | None, typer.Option(help="Longitude in degrees.")] = None,
    y: Annotated[float | None, typer.Option(help="Latitude in degrees.")] = None,
    datum: Annotated[
        str, typer.Option(help="Datum of x/y: wgs84, cgcs2000, gcj02 or bd09.")
    ] = "cgcs2000",
    accuracy: Annotated[
        float | None, typer.Option(min=0, max=10_000, help="Accuracy radius in metres (GPS).")
    ] = None,
    address: Annotated[str | None, typer.Option(help="Standard address (no x/y).")] = None,
    description: Annotated[str, typer.Option(help="What was reported.")] = "",
    channel: Annotated[str, typer.Option(help="12345, 110, grid, app...")] = "cli",
    event_time: Annotated[
        datetime | None,
        typer.Option(
            parser=_time_option("event_time"),
            metavar="TIME",
            help="When it happened (ISO 8601 or a date, China time); default now.",
        ),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key returns the same incident.")
    ] = None,
    external_id: Annotated[str | None, typer.Option(help="The channel's ticket number.")] = None,
    contact: Annotated[
        str | None, typer.Option(help="Reporter's name and/or phone (never ID numbers).")
    ] = None,
    format: FormatOption = ReportFormat.text,
) -> None:
    """Take in one incident: locate it at its event time and dispatch it to the people there."""
    try:
        db = database()
        datum_name: Any = datum  # checked by the service, naming --datum
        if (x is None) != (y is None):
            raise InputError("--x and --y go together", field="x")
        draft = IncidentDraft(
            channel=channel,
            category=category,
            description=description,
            location=None
            if x is None or y is None
            else IncidentLocation(x=x, y=y, datum=datum_name, accuracy_m=accuracy),
            address=address,
            event_time=event_time,  # None: when received
            external_id=external_id,
            reporter_contact=contact,
        )
        result = service.intake(db, cli_principal(), draft, idempotency_key=key)
    except TonggeError as error:
        fail(error)
    incident = result.incident
    if format is ReportFormat.json:
        echo_json({**incident.to_dict(), "created": result.created})
        return
    verb = "taken in" if result.created else "already taken in (same key)"
    err.print(
        f"[green]✓[/green] incident #{incident.id} {incident.public_id} {verb}: {incident.status}"
    )
    _print_incident(incident)


@incidents_app.command("list")
def list_(
    status: Annotated[
        str | None, typer.Option(help=f"Statuses, comma-separated: {', '.join(STATUSES)}.")
    ] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    unit: Annotated[str | None, typer.Option(help="Only this unit: code or layer:code.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(parser=_time_option("since"), metavar="TIME", help="Received from."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=_time_option("until"), metavar="TIME", help="Received before."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    format: FormatOption = ReportFormat.text,
) -> None:
    """List incidents, newest first."""
    try:
        found = service.search(
            database(),
            cli_principal(),
            status=[s.strip() for s in status.split(",") if s.strip()] if status else None,
            category=category,
            unit=unit,
            since=since,
            until=until,
            limit=limit,
        )
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json([i.to_dict() for i in found])
        return
    _print_list(found)


@incidents_app.command("show")
def show(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    format: FormatOption = ReportFormat.text,
) -> None:
    """Show one incident with its history (who did what, when)."""
    try:
        db = database()
        principal = cli_principal()
        incident = service.get(db, principal, incident_id)
        steps = service.history(db, principal, incident_id)
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json({**incident.to_dict(), "history": [s.to_dict() for s in steps]})
        return
    _print_incident(incident)
    table = Table("at", "action", "from", "to", "actor", "note", title="history")
    for step in steps:
        table.add_row(
            isoformat_local(step.at) or "",
            step.action,
            step.from_status or "",
            step.to_status,
            step.actor,
            step.note or "",
        )
    out.print(table)


@incidents_app.command("transition")
def transition(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(ACTIONS)}.")],
    note: Annotated[str | None, typer.Option(help="Why / what was done.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="dispatch from review, escalate: layer:code.")
    ] = None,
    merged_into: Annotated[
        int | None, typer.Option(min=1, help="merge: the incident kept.")
    ] = None,
    score: Annotated[
        int | None, typer.Option(min=1, max=5, help="close: the resident's feedback 1-5.")
    ] = None,
    feedback: Annotated[str | None, typer.Option(help="close: the resident's words.")] = None,
    format: FormatOption = ReportFormat.text,
) -> None:
    """Move an incident along its lifecycle (audited)."""
    try:
        incident = service.transition(
            database(),
            cli_principal(),
            incident_id,
            action,
            note=note,
            unit=unit,
            merged_into=merged_into,
            feedback_score=score,
            feedback_text=feedback,
        )
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json(incident.to_dict())
        return
    err.print(f"[green]✓[/green] incident #{incident.id}: {action} → {incident.status}")


@incidents_app.command("overdue")
def overdue(
    escalate: Annotated[
        bool, typer.Option(help="Escalate those being handled to their street (audited).")
    ] = False,
    format: FormatOption = ReportFormat.text,
) -> None:
    """List open incidents past their deadline (超期); optionally escalate them."""
    try:
        db = database()
        principal = cli_principal()
        escalated = service.escalate_overdue(db, principal) if escalate else []
        late = service.overdue(db, principal)
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json({"overdue": [i.to_dict() for i in late], "escalated": [i.id for i in escalated]})
        return
    if escalate:
        err.print(f"[green]✓[/green] {len(escalated)} escalated")
    _print_list(late, title=f"{len(late)} overdue")


@incidents_app.command("relocate")
def relocate(
    ids: Annotated[
        list[int] | None,
        typer.Argument(help="Incidents to move to today's units (none: only report)."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required to move).")] = None,
    format: FormatOption = ReportFormat.text,
) -> None:
    """Report incidents that fall in another unit today; move the given ones (audited)."""
    try:
        db = database()
        principal = cli_principal()
        if ids:
            if not reason:
                raise InputError("--reason is required to re-locate incidents", field="reason")
            done = service.relocate(db, principal, ids, reason=reason)
        else:
            report = service.relocation_report(db, principal)
    except TonggeError as error:
        fail(error)
    if ids:
        if format is ReportFormat.json:
            echo_json(done)
            return
        for entry in done:
            mark = "[green]✓[/green]" if entry["relocated"] else "·"
            what = f"{entry['from']} → {entry['to']}" if entry["relocated"] else entry["reason"]
            err.print(f"{mark} incident #{entry['id']}: {what}")
        return
    if format is ReportFormat.json:
        echo_json(report)
        return
    table = Table("id", "public id", "status", "layer", "level", "dispatched", "today")
    for entry in report:
        for change in entry["changes"]:
            table.add_row(
                str(entry["id"]),
                entry["public_id"],
                entry["status"],
                change["layer"],
                change["level"],
                change["dispatched"],
                change["today"] or "(none)",
            )
    out.print(table)
