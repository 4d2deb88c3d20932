"""Staff responsible for units (网格员, 社区民警...): read, assign, end — within jurisdiction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import get_db
from api.security import current_jurisdiction, current_principal
from gis import staff as staff_service
from gis.access import Jurisdiction, Principal, record
from gis.repository import Database

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


class StaffOut(BaseModel):
    """A person assigned to a unit (name, role, work phone only)."""

    id: int
    layer: str
    unit_code: str
    role: str
    role_title: str
    name: str
    phone: str | None = None


class StaffCreate(BaseModel):
    """Assign a person to a unit."""

    model_config = ConfigDict(extra="forbid")

    layer: str = Field(default="governance", max_length=64)
    unit_code: str = Field(min_length=1, max_length=64)
    role: str = Field(
        max_length=32, description=", ".join(staff_service.ROLES), examples=["grid_worker"]
    )
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32, description="Work phone.")


@router.get("", summary="Staff of your units 网格人员", response_model=list[StaffOut])
def list_staff(
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    layer: Annotated[str | None, Query(max_length=64, description="Only this layer.")] = None,
    unit: Annotated[str | None, Query(max_length=64, description="Only this unit code.")] = None,
) -> list[dict[str, object]]:
    """Return the active staff of the units in your jurisdiction (reads are audited)."""
    members = staff_service.list_staff(
        db,
        layer=layer,
        unit_codes=[unit] if unit is not None else None,
        jurisdiction=jurisdiction,
    )
    visible = [m.to_dict() for m in members]
    record(
        db,
        actor=principal,
        action="staff.read",
        target=f"unit:{layer or '*'}:{unit or '*'}",
        detail={"rows": len(visible)},
    )
    return visible


@router.post(
    "",
    summary="Assign a person to a unit 指派人员",
    status_code=201,
    response_model=StaffOut,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
def add_staff(
    body: StaffCreate,
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> dict[str, object]:
    """Assign a grid worker, police officer, cadre... to a current unit (audited)."""
    member = staff_service.add_staff(
        db,
        layer=body.layer,
        unit_code=body.unit_code,
        role=body.role,
        name=body.name,
        phone=body.phone,
        actor=principal,
        jurisdiction=jurisdiction,
    )
    return member.to_dict()


@router.delete(
    "/{staff_id}",
    summary="End an assignment 解除指派",
    status_code=204,
    responses={404: {"description": "No such active assignment in your jurisdiction"}},
)
def end_staff(
    staff_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
) -> None:
    """End a person's assignment (kept for history; audited)."""
    staff_service.end_staff(db, staff_id=staff_id, actor=principal, jurisdiction=jurisdiction)
