"""Service commands: init (database + sample city) and serve (HTTP API)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.bootstrap import open_database
from api.cli._output import err, fail, steps
from gis.errors import TonggeError
from gis.settings import get_settings


def register(app: typer.Typer) -> None:
    """Add the service commands to ``app``."""
    app.command("init")(init)
    app.command("serve")(serve)


def init() -> None:
    """Create/migrate the database and load the sample city if it is empty."""
    try:
        with steps("preparing database") as (step, _):
            db = open_database(step=step)
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] database ready: {db.engine.url.render_as_string()}")


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    init()
    settings = get_settings()
    err.print(f"serving {settings.database_url} on http://{host}:{port} (docs: /docs)")
    uvicorn.run("api.app:create_server_app", factory=True, host=host, port=port, workers=workers)
