"""The ``tongge`` command line.

Exit codes: 0 success, 1 the data has problems, 2 unusable input or usage
(or no database yet: ``tongge init``). Domain errors are turned into
one-line messages by :func:`api.cli._output.fail`, and any that escapes a
command is caught by the application's group; no traceback reaches the user.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from api.cli import (
    _access,
    _alignment,
    _edits,
    _evaluation,
    _incidents,
    _locate,
    _patrol,
    _places,
    _service,
    _staff,
    _streets,
    _units,
)
from api.cli._output import fail
from gis.errors import TonggeError


class _Commands(TyperGroup):
    """The command group: a domain error no command caught is still one line and a code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TonggeError as error:
            fail(error)


app = typer.Typer(
    name="tongge",
    help="同格 tongge — grid layers for grid-based governance (网格化管理).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
_units.register(app)
_locate.register(app)
_staff.register(app)
_alignment.register(app)
_places.register(app)
_service.register(app)
_access.register(app)
_streets.register(app)
_edits.register(app)
_patrol.register(app)
_incidents.register(app)
_evaluation.register(_incidents.incidents_app)


def main() -> None:
    """Run the command line (console script entry point)."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
