"""The ``tongge`` command line.

Exit codes: 0 success, 1 the data has problems, 2 unusable input or usage.
Domain errors are turned into one-line messages here; no traceback reaches
the user.
"""

from __future__ import annotations

import sys

import typer

from api.cli import _access, _alignment, _locate, _patrol, _places, _service, _staff, _units

app = typer.Typer(
    name="tongge",
    help="同格 tongge — grid layers for grid-based governance (网格化管理).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_units.register(app)
_locate.register(app)
_staff.register(app)
_alignment.register(app)
_places.register(app)
_service.register(app)
_access.register(app)
_patrol.register(app)


def main() -> None:
    """Run the command line (console script entry point)."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
