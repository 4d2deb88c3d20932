"""Service commands: init (database + sample city) and serve (HTTP API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli._access import show_secret
from api.cli._output import database, err, fail, steps
from gis.access.accounts import ensure_admin
from gis.errors import TonggeError
from gis.repository import display_url
from gis.settings import Settings, get_settings


def register(app: typer.Typer) -> None:
    """Add the service commands to ``app``."""
    app.command("init")(init)
    app.command("serve")(serve)


def init() -> None:
    """Create/migrate the database, load the sample city if empty, create the first admin.

    The database is ``tongge.sqlite`` in the data directory
    (``TONGGE_DATA_DIR``) unless ``TONGGE_DATABASE_URL`` names another; the
    file and its folder are readable by their owner only. The first
    administrator's password is generated and printed once; only its hash
    is stored.
    """
    try:
        with steps("preparing database") as (step, _):
            db = database(create=True, step=step)
            password = ensure_admin(db)
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] database ready: {display_url(db.url)}", soft_wrap=True)
    if password is not None:
        show_secret(
            "first administrator 管理员 — shown once, not stored",
            [
                "user: admin",
                f"password: {password}",
                "sign in at /docs (Authorize) or POST /api/v1/auth/token;",
                "change it: POST /api/v1/auth/password, or `tongge users passwd admin`",
            ],
        )


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs); the first start runs `tongge init`."""
    import uvicorn

    from api.app import token_signer

    settings = get_settings()
    try:
        token_signer(settings)  # a missing, weak or undecodable key: one line, before anything
    except TonggeError as error:
        fail(error)
    init()
    err.print(
        f"serving {display_url(settings.database_url)} on http://{host}:{port} (docs: /docs)",
        soft_wrap=True,
    )
    uvicorn.run(**server_options(settings, host=host, port=port, workers=workers))


def server_options(settings: Settings, *, host: str, port: int, workers: int) -> dict[str, Any]:
    """Return the ``uvicorn.run`` arguments of ``tongge serve``.

    Uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told
    otherwise, so that anyone on the machine (or anything relaying for them)
    could pick the client address that sign-in limits key on and the audit
    log records. Proxy headers are read only from ``TONGGE_TRUSTED_PROXIES``.
    """
    trusted = ",".join(settings.trusted_proxies)
    return {
        "app": "api.app:create_server_app",
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
    }
