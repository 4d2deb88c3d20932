"""People responsible for units (三员协同): roles, assignment to units, who answers where.

Only what dispatch needs is kept: a name, a role and optionally a work phone.
No ID numbers, no home addresses.

Roles: ``grid_leader`` 网格长, ``grid_worker`` 网格员, ``community_police``
社区民警, ``cadre`` 驻村干部, ``volunteer`` 志愿者.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gis.access.audit import append_audit
from gis.access.jurisdiction import Jurisdiction
from gis.access.principal import SYSTEM, Principal
from gis.errors import InputError, NotFoundError
from gis.repository import Database
from gis.times import parse_time

__all__ = ["ROLES", "StaffMember", "add_staff", "end_staff", "list_staff", "responsible_for"]

ROLES = {
    "grid_leader": "网格长 grid leader",
    "grid_worker": "网格员 grid worker",
    "community_police": "社区民警 community police officer",
    "cadre": "驻村干部 village/community cadre",
    "volunteer": "志愿者 volunteer",
}
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")


@dataclass(frozen=True)
class StaffMember:
    """A person assigned to a unit."""

    id: int
    layer: str
    unit_code: str
    role: str
    name: str
    phone: str | None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form (with the role's label)."""
        return {
            "id": self.id,
            "layer": self.layer,
            "unit_code": self.unit_code,
            "role": self.role,
            "role_title": ROLES[self.role],
            "name": self.name,
            "phone": self.phone,
        }


def add_staff(
    db: Database,
    *,
    layer: str,
    unit_code: str,
    role: str,
    name: str,
    phone: str | None = None,
    actor: Principal = SYSTEM,
    jurisdiction: Jurisdiction | None = None,
) -> StaffMember:
    """Assign a person to a current unit (one ``jurisdiction`` sees entirely, when given).

    Raises
    ------
    InputError
        Unknown role, empty name, malformed phone.
    NotFoundError
        No current unit with that code in the layer (or not in the jurisdiction).
    """
    if jurisdiction is not None:
        jurisdiction.require(
            layer, unit_code, message=f"no current unit {unit_code!r} in layer {layer!r}"
        )
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role")
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise InputError("name must have 1 to 100 printable characters", field="name")
    if phone is not None and not _PHONE.match(phone):
        raise InputError(f"phone {phone!r} is not a phone number", field="phone")
    with db.transaction() as repo:
        if repo.units_frame(layer=layer, codes=[unit_code]).empty:
            raise NotFoundError(f"no current unit {unit_code!r} in layer {layer!r}", field="unit")
        row = repo.add_staff(
            layer=layer,
            unit_code=unit_code,
            role=role,
            name=name.strip(),
            phone=phone,
            at=parse_time(None),
        )
        append_audit(
            repo,
            actor=actor,
            action="staff.create",
            target=f"unit:{layer}:{unit_code}",
            detail={"staff_id": row["id"], "role": role},
        )
    return StaffMember(**row)


def end_staff(
    db: Database,
    *,
    staff_id: int,
    actor: Principal = SYSTEM,
    jurisdiction: Jurisdiction | None = None,
) -> None:
    """End a person's assignment (kept for history, no longer responsible).

    With ``jurisdiction``, only of a unit it sees entirely (else NotFoundError,
    like an assignment that does not exist).
    """
    if jurisdiction is not None and not jurisdiction.unrestricted:
        member = next((m for m in list_staff(db) if m.id == staff_id), None)
        if member is None or not jurisdiction.sees_wholly(member.layer, member.unit_code):
            raise NotFoundError(f"no active staff member {staff_id}", field="id")
    with db.transaction() as repo:
        if not repo.end_staff(staff_id=staff_id, at=parse_time(None)):
            raise NotFoundError(f"no active staff member {staff_id}", field="id")
        append_audit(repo, actor=actor, action="staff.end", target=f"staff:{staff_id}")


def list_staff(
    db: Database,
    *,
    layer: str | None = None,
    unit_codes: list[str] | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> list[StaffMember]:
    """Return the active staff, optionally of some units (seen entirely by ``jurisdiction``)."""
    with db.reader() as repo:
        members = [StaffMember(**row) for row in repo.staff(layer=layer, unit_codes=unit_codes)]
    if jurisdiction is None:
        return members
    return [m for m in members if jurisdiction.sees_wholly(m.layer, m.unit_code)]


def responsible_for(staff: list[StaffMember], units: list[tuple[str, str]]) -> list[StaffMember]:
    """Pick one person per role for a located place, most local unit first.

    ``units`` lists ``(layer, code)`` from the most local (micro-grid, beat)
    to the widest; for each role the first unit that has someone wins, so a
    micro-grid's own worker is preferred to the grid's.
    """
    by_unit: dict[tuple[str, str], list[StaffMember]] = {}
    for member in staff:
        by_unit.setdefault((member.layer, member.unit_code), []).append(member)
    chosen: dict[str, StaffMember] = {}
    for unit in units:
        for member in sorted(by_unit.get(unit, []), key=lambda m: m.id):
            chosen.setdefault(member.role, member)
    return [chosen[role] for role in ROLES if role in chosen]
