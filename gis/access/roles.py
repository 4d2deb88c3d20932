"""Roles and what each may do: the one table the API's permission map refers to.

Permissions name *kinds* of access; where a permission applies (which units)
is the jurisdiction's business (:mod:`gis.access.jurisdiction`).

Examples
--------
>>> Role.GRID_WORKER.can(Permission.HOUSEHOLDS_READ)
True
>>> Role.VIEWER.can(Permission.HOUSEHOLDS_READ)
False
>>> Role.parse("网格员")
<Role.GRID_WORKER: 'grid_worker'>
"""

from __future__ import annotations

from enum import StrEnum

from gis.errors import InputError

__all__ = ["ROLE_PERMISSIONS", "Permission", "Role"]


class Permission(StrEnum):
    """A kind of access, checked per endpoint and per command."""

    UNITS_READ = "units:read"
    UNITS_EXPORT = "units:export"
    BOUNDARIES_EDIT = "boundaries:edit"
    PLACES_READ = "places:read"
    HOUSEHOLDS_READ = "households:read"
    HOUSEHOLDS_EXPORT = "households:export"
    STAFF_READ = "staff:read"
    STAFF_WRITE = "staff:write"
    GEOCODE = "geocode"
    GEOCODE_BATCH = "geocode:batch"
    ALIGNMENT_READ = "alignment:read"
    ALIGNMENT_APPLY = "alignment:apply"
    WORKLOAD_READ = "workload:read"
    ACCOUNTS_ADMIN = "accounts:admin"
    AUDIT_READ = "audit:read"
    PATROL = "patrol"
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_REPORT = "incidents:report"
    INCIDENTS_HANDLE = "incidents:handle"
    INCIDENTS_DISPATCH = "incidents:dispatch"


class Role(StrEnum):
    """What a user or API key is; each has a fixed set of permissions."""

    ADMIN = "admin"
    PLANNER = "planner"
    DISPATCHER = "dispatcher"
    GRID_WORKER = "grid_worker"
    POLICE = "police"
    CADRE = "cadre"
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        """Chinese label with the English name."""
        return _TITLES[self]

    def can(self, permission: Permission) -> bool:
        """Whether this role holds ``permission``."""
        return permission in ROLE_PERMISSIONS[self]

    @classmethod
    def parse(cls, text: str) -> Role:
        """Return the role named ``text`` (English name or Chinese label)."""
        value = text.strip().lower().replace("-", "_")
        for role in cls:
            if value in (role.value, _TITLES[role].split()[0]):
                return role
        raise InputError(
            f"unknown role {text!r}: use one of {', '.join(r.value for r in cls)}", field="role"
        )


_TITLES = {
    Role.ADMIN: "管理员 administrator",
    Role.PLANNER: "规划员 planner",
    Role.DISPATCHER: "调度员 dispatcher",
    Role.GRID_WORKER: "网格员 grid worker",
    Role.POLICE: "社区民警 police officer",
    Role.CADRE: "社区干部 community cadre",
    Role.VIEWER: "查看者 viewer",
}

_P = Permission
_FIELD_WORK = frozenset(
    {
        _P.UNITS_READ,
        _P.UNITS_EXPORT,
        _P.PLACES_READ,
        _P.HOUSEHOLDS_READ,
        _P.HOUSEHOLDS_EXPORT,
        _P.STAFF_READ,
        _P.GEOCODE,
        _P.WORKLOAD_READ,
        _P.PATROL,
        _P.INCIDENTS_READ,
        _P.INCIDENTS_REPORT,
        _P.INCIDENTS_HANDLE,
    }
)

#: Permissions per role. Planners redraw boundaries and need counts, not
#: households; dispatchers locate and hand over (and dispatch, close, reject,
#: merge incidents); grid workers, police and cadres (三员) work their own
#: units' households and incidents; viewers see boundaries and aggregates only.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PLANNER: frozenset(
        {
            _P.UNITS_READ,
            _P.UNITS_EXPORT,
            _P.BOUNDARIES_EDIT,
            _P.PLACES_READ,
            _P.STAFF_READ,
            _P.STAFF_WRITE,
            _P.GEOCODE,
            _P.GEOCODE_BATCH,
            _P.ALIGNMENT_READ,
            _P.WORKLOAD_READ,
            _P.PATROL,
        }
    ),
    Role.DISPATCHER: frozenset(
        {
            _P.UNITS_READ,
            _P.PLACES_READ,
            _P.STAFF_READ,
            _P.GEOCODE,
            _P.GEOCODE_BATCH,
            _P.WORKLOAD_READ,
            _P.INCIDENTS_READ,
            _P.INCIDENTS_REPORT,
            _P.INCIDENTS_HANDLE,
            _P.INCIDENTS_DISPATCH,
        }
    ),
    Role.GRID_WORKER: _FIELD_WORK,
    Role.POLICE: _FIELD_WORK,
    Role.CADRE: _FIELD_WORK,
    Role.VIEWER: frozenset({_P.UNITS_READ, _P.ALIGNMENT_READ, _P.WORKLOAD_READ}),
}
