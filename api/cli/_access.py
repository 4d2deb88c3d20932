"""Access commands: users, API keys and the audit log (as the local administrator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from api.cli._output import ReportFormat, database, echo_json, err, fail, out, parse_option_time
from gis.access import Role, audit_log, cli_principal
from gis.access import accounts as acc
from gis.errors import TonggeError
from gis.times import isoformat_local

users_app = typer.Typer(help="Users 用户: roles and jurisdictions.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys 接口密钥 for systems (e.g. the 12345 hotline).", no_args_is_help=True
)

_ROLES = ", ".join(role.value for role in Role)
_UNITS_HELP = "Jurisdiction unit LAYER:CODE (repeat for several)."


def register(app: typer.Typer) -> None:
    """Add the ``users``, ``keys`` and ``audit`` commands to ``app``."""
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("audit")(audit)


def show_secret(title: str, lines: list[str]) -> None:
    """Print a one-time secret in a box on stderr (never logged, shown once)."""
    err.print(Panel("\n".join(lines), title=title, border_style="yellow", expand=False))


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower case).")],
    role: Annotated[str, typer.Option(help=f"One of: {_ROLES}.")],
    unit: Annotated[list[str] | None, typer.Option(help=_UNITS_HELP)] = None,
    display_name: Annotated[
        str | None, typer.Option("--name", "--display-name", help="Name shown to others.")
    ] = None,
) -> None:
    """Create a user; a one-time password is printed once."""
    try:
        user, password = acc.create_user(
            database(),
            username=username,
            role=role,
            units=unit or [],
            display_name=display_name,
            actor=cli_principal(),
        )
    except TonggeError as error:
        fail(error)
    show_secret(
        "one-time password 初始密码",
        [f"user: {user.username} ({user.role.label})", f"password: {password}"],
    )


@users_app.command("list")
def users_list(
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List users with role, jurisdiction and whether they may sign in."""
    try:
        users = acc.list_users(database())
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json([u.to_dict() for u in users])
        return
    table = Table("user", "name", "role", "units", "active")
    for u in users:
        table.add_row(
            u.username,
            u.display_name or "",
            u.role.label,
            ", ".join(u.units) or "(all)",
            "yes" if u.active else "no",
        )
    out.print(table)


@users_app.command("set")
def users_set(
    username: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[str | None, typer.Option(help=f"New role: {_ROLES}.")] = None,
    unit: Annotated[list[str] | None, typer.Option(help=_UNITS_HELP + " Replaces all.")] = None,
    display_name: Annotated[
        str | None, typer.Option("--name", "--display-name", help="New name shown to others.")
    ] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--disabled", help="Allow or stop sign-in.")
    ] = None,
) -> None:
    """Change a user's role, jurisdiction or name, or disable them."""
    try:
        user = acc.update_user(
            database(),
            username=username,
            actor=cli_principal(),
            role=role,
            units=unit,
            display_name=display_name,
            active=active,
        )
    except TonggeError as error:
        fail(error)
    state = "active" if user.active else "disabled"
    err.print(f"[green]✓[/green] {user.username}: {user.role.label}, {state}")


@users_app.command("passwd")
def users_passwd(username: Annotated[str, typer.Argument(help="Sign-in name.")]) -> None:
    """Give a user a new one-time password (their tokens stop working)."""
    try:
        password = acc.reset_password(database(), username=username, actor=cli_principal())
    except TonggeError as error:
        fail(error)
    show_secret("new password 新密码", [f"user: {username}", f"password: {password}"])


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What uses the key, e.g. '12345 hotline'.")],
    role: Annotated[str, typer.Option(help=f"One of: {_ROLES}.")] = Role.DISPATCHER.value,
    unit: Annotated[list[str] | None, typer.Option(help=_UNITS_HELP)] = None,
    rate: Annotated[
        int, typer.Option(min=1, max=acc.MAX_KEY_RATE, help="Requests per minute.")
    ] = acc.DEFAULT_KEY_RATE,
) -> None:
    """Create an API key; its token is printed once."""
    try:
        key, token = acc.create_api_key(
            database(),
            name=name,
            role=role,
            units=unit or [],
            rate_per_minute=rate,
            actor=cli_principal(),
        )
    except TonggeError as error:
        fail(error)
    show_secret(
        "API key 接口密钥 (send as X-API-Key)",
        [f"key: {key.key_id} ({key.name}, {key.role.label})", f"token: {token}"],
    )


@keys_app.command("list")
def keys_list(
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """List API keys (never their secrets)."""
    try:
        keys = acc.list_api_keys(database())
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json([k.to_dict() for k in keys])
        return
    table = Table("key", "name", "role", "units", "rate/min", "revoked")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            k.role.label,
            ", ".join(k.units) or "(all)",
            str(k.rate_per_minute),
            isoformat_local(k.revoked_at) or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (from `keys list`).")]) -> None:
    """Revoke an API key at once."""
    try:
        acc.revoke_api_key(database(), key_id=key_id, actor=cli_principal())
    except TonggeError as error:
        fail(error)
    err.print(f"[green]✓[/green] key {key_id} revoked")


def audit(
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="Action or family, e.g. households.")] = None,
    target: Annotated[str | None, typer.Option(help="Part of the target.")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(parser=parse_option_time, metavar="TIME", help="From this date/time."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=parse_option_time, metavar="TIME", help="Before this date/time."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """Show the audit log 审计日志, newest first."""
    try:
        entries, total = audit_log(
            database(),
            actor=actor,
            action=action,
            target=target,
            since=since,
            until=until,
            limit=limit,
        )
    except TonggeError as error:
        fail(error)
    if format is ReportFormat.json:
        echo_json({"entries": [e.to_dict() for e in entries], "total": total})
        return
    table = Table("time", "actor", "role", "action", "target", "detail", "client")
    for e in entries:
        table.add_row(
            isoformat_local(e.at) or "",
            f"{e.actor_kind}:{e.actor}",
            e.role or "",
            e.action,
            e.target,
            ", ".join(f"{k}={v}" for k, v in e.detail.items()),
            e.client or "",
        )
    out.print(table)
    err.print(f"{len(entries)} of {total} entries")
