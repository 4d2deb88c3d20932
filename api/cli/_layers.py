"""Layer commands: list layers, define a layer of your own."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from api.bootstrap import open_database
from api.cli._boundaries import ReportFormat
from api.cli._output import echo_json, err, fail, out
from gis.access import cli_principal
from gis.errors import InputError, TonggeError
from gis.layers import LayerSpec, LevelSpec
from gis.registry import define_layer, list_layers

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def register(app: typer.Typer) -> None:
    """Add the layer commands to ``app``."""
    app.command("layers")(layers)
    app.command("define-layer")(define)


def layers(
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List layers, their levels and unit counts."""
    try:
        summaries = list_layers(open_database())
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
                }
                for s in summaries
            ]
        )
        return
    for summary in summaries:
        out.print(f"[bold]{summary.name}[/bold] {summary.title}")
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
        stored = define_layer(open_database(), spec=spec, actor=cli_principal())
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
