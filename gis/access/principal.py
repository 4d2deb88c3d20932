"""Who is asking: a signed-in user, a system's API key, or the local command line."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from gis.access.roles import Permission, Role
from gis.errors import ForbiddenError

__all__ = ["SYSTEM", "Principal", "cli_principal"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller with a role and a jurisdiction.

    ``units`` are ``"layer:code"`` references; everything at or below them is
    the caller's jurisdiction. Administrators are not limited by units.

    Examples
    --------
    >>> worker = Principal(kind="user", name="li", role=Role.GRID_WORKER,
    ...                    units=("governance:350502001001001",))
    >>> worker.unrestricted, worker.actor
    (False, 'user:li')
    >>> worker.require(Permission.ACCOUNTS_ADMIN)
    Traceback (most recent call last):
    ...
    gis.errors.ForbiddenError: role grid_worker may not use accounts:admin
    """

    kind: str  # "user", "api_key" or "cli"
    name: str
    role: Role
    units: tuple[str, ...] = ()
    rate_per_minute: int | None = None
    client: str | None = None  # where the request came from, for the audit log

    @property
    def unrestricted(self) -> bool:
        """Whether the jurisdiction is everything (administrators)."""
        return self.role is Role.ADMIN

    @property
    def actor(self) -> str:
        """The name written to the audit log: ``kind:name``."""
        return f"{self.kind}:{self.name}"

    def can(self, permission: Permission) -> bool:
        """Whether the role holds ``permission``."""
        return self.role.can(permission)

    def require(self, permission: Permission) -> None:
        """Raise ForbiddenError unless the role holds ``permission``."""
        if not self.role.can(permission):
            raise ForbiddenError(
                f"role {self.role.value} may not use {permission.value}",
                permission=permission.value,
            )


def cli_principal() -> Principal:
    """Return the operator at the command line: an administrator named by the OS user.

    Whoever can run the command line on the server can read the database
    file or URL anyway; the audit log still records which OS account acted.
    """
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - containers without a passwd entry
        name = "unknown"
    return Principal(kind="cli", name=name, role=Role.ADMIN)


#: The service itself (sample-city loading, first start-up), when no person acts.
SYSTEM = Principal(kind="system", name="tongge", role=Role.ADMIN)
