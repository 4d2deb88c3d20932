"""Stored patrol routes (路线归属): each route belongs to a unit, a member of staff and a shift.

A plan of a stored unit is saved route by route with what it was planned
on (the unit's boundary version and the registry's boundary revision) and
its parameters. When a change set moves the unit's boundary its routes are
flagged ``stale`` (:func:`flag_moved_units`, called inside the change set's
transaction) and listed as needing re-planning. Every read takes the
caller's :class:`~gis.access.Jurisdiction`: a route is seen only by those
who see its unit entirely (a grid worker: their own units).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from gis.access import Jurisdiction, Principal
from gis.access.audit import append_audit
from gis.crs import local_projected_crs, transformer
from gis.errors import InputError, NotFoundError
from gis.patrol._export import stored_route_text
from gis.patrol._plan import PatrolPlan, route_line
from gis.patrol._service import UnitArea
from gis.repository import Database, Repository
from gis.times import utc_now

__all__ = [
    "COVERING_M",
    "delete_route",
    "export_route",
    "flag_moved_units",
    "get_route",
    "list_routes",
    "route_json",
    "routes_at",
    "save_plan_routes",
]

#: A route passing within this of a point covers it (m).
COVERING_M = 30.0
_MAX_SHIFT = 64
_MAX_NAME = 200


def save_plan_routes(
    db: Database,
    plan: PatrolPlan,
    *,
    area: UnitArea,
    actor: Principal,
    staff_id: int | None = None,
    shift: str | None = None,
    name: str | None = None,
    params: dict[str, Any] | None = None,
) -> list[int]:
    """Store every route of a stored unit's plan; return their ids (in plan order).

    Raises
    ------
    InputError
        The plan is not of a stored unit, a shift or name too long, or
        ``staff_id`` names no member of staff of the unit's layer.
    """
    if area.code is None or area.layer is None or area.valid_from is None:
        raise InputError("only routes of a stored unit (--unit CODE) can be saved", field="unit")
    if shift is not None and len(shift) > _MAX_SHIFT:
        raise InputError(f"shift longer than {_MAX_SHIFT} characters", field="shift")
    if name is not None and len(name) > _MAX_NAME:
        raise InputError(f"name longer than {_MAX_NAME} characters", field="name")
    to_storage = transformer(plan.network.crs, CRS.from_epsg(4490))
    segments = plan.network.segments
    lines = []
    for route in plan.routes:
        line = shapely.transform(
            route_line(route, plan.network), to_storage.transform, interleaved=False
        )
        lines.append(line)
    ids = []
    with db.transaction() as repo:
        if staff_id is not None:
            # A member of staff of this unit, of a unit above it or below it.
            staff = [s for s in repo.staff(layer=area.layer) if s["id"] == staff_id]
            if not staff or not (
                area.code.startswith(staff[0]["unit_code"])
                or staff[0]["unit_code"].startswith(area.code)
            ):
                raise InputError(
                    f"staff {staff_id} does not work in unit {area.code}", field="staff_id"
                )
        revision = repo.revision()
        for part, (route, line) in enumerate(zip(plan.routes, lines, strict=True), start=1):
            ids.append(
                repo.routes.add(
                    line=line,
                    created_at=utc_now(),
                    layer=area.layer,
                    level=area.level or "",
                    unit_code=area.code,
                    unit_version=area.valid_from,
                    revision=revision,
                    part=part,
                    staff_id=staff_id,
                    shift=shift,
                    name=name,
                    params={**(params or {}), "mode": plan.network.mode, "parts": len(plan.routes)},
                    figures={
                        "length_m": round(route.length_m, 1),
                        "street_m": round(route.street_m, 1),
                        "deadhead_m": round(route.deadhead_m, 1),
                        "segments": route.segments,
                        "time_s": round(route.time_s),
                    },
                    steps=[
                        [
                            _text(segments["name"].iloc[seg]),
                            round(float(segments["length"].iloc[seg]), 1),
                            cover,
                        ]
                        for (seg, _), cover in zip(route.steps, route.covers, strict=True)
                    ],
                    checkpoints=[
                        {"name": c.name, "lon": c.lon, "lat": c.lat}
                        for c in plan.checkpoints
                        if c.name in route.checkpoints
                    ],
                    created_by=actor.actor,
                )
            )
        append_audit(
            repo,
            actor=actor,
            action="patrol.routes.save",
            target=f"unit:{area.layer}:{area.code}",
            detail={"routes": ids, "staff_id": staff_id, "shift": shift},
        )
    return ids


def list_routes(
    db: Database,
    jurisdiction: Jurisdiction,
    *,
    layer: str | None = None,
    unit: str | None = None,
    covering: tuple[float, float] | None = None,
    stale: bool | None = None,
    staff_id: int | None = None,
    tolerance_m: float = COVERING_M,
) -> list[dict[str, Any]]:
    """Return the routes the caller may see, newest first (no geometry).

    ``covering`` (lon, lat in CGCS2000/WGS84) keeps the routes passing
    within ``tolerance_m`` of the point; ``stale=True`` those needing re-planning.
    """
    bbox = None
    if covering is not None:
        lon, lat = covering
        pad = tolerance_m / 90_000 + 1e-6  # degrees, generous at these latitudes
        bbox = (lon - pad, lat - pad, lon + pad, lat + pad)
    with db.reader() as repo:
        found = repo.routes.list(
            layer=layer,
            units=None if unit is None else [unit],
            stale=stale,
            bbox=bbox,
            staff_id=staff_id,
        )
    found = [r for r in found if jurisdiction.sees_wholly(r["layer"], r["unit_code"])]
    if covering is not None and found:
        crs = local_projected_crs(*covering)
        lines = gpd.GeoSeries([r["line"] for r in found], crs=4490).to_crs(crs)
        point = gpd.GeoSeries([shapely.Point(covering)], crs=4490).to_crs(crs).iloc[0]
        near = lines.distance(point).to_numpy() <= tolerance_m
        found = [r for r, keep in zip(found, near, strict=True) if keep]
    return [route_json(r, geometry=False) for r in found]


def routes_at(
    db: Database,
    jurisdiction: Jurisdiction,
    lon: float,
    lat: float,
    *,
    units: Iterable[tuple[str, str]] = (),
    tolerance_m: float = COVERING_M,
) -> list[dict[str, Any]]:
    """Return the stored routes covering a place, for the locate answer (no geometry).

    A route covers the place when its unit is one of ``units`` (the
    ``(layer, code)`` pairs the place was located in, at any level) or when
    its line passes within ``tolerance_m`` of it (a street walked by the
    route of a neighbouring unit). Only routes of units the caller sees
    entirely; those passing nearest first.

    Parameters
    ----------
    db : Database
        The registry.
    jurisdiction : Jurisdiction
        The caller's; routes of units not seen entirely are left out.
    lon, lat : float
        The place (CGCS2000, EPSG:4490).
    units : iterable of (str, str)
        The units containing the place.
    tolerance_m : float
        How near a route's line must pass (m).

    Returns
    -------
    list of dict
        ``id``, ``name``, ``layer``, ``level``, ``unit_code``, ``part``,
        ``staff_id``, ``staff_name``, ``shift``, ``stale``, ``stale_reason``,
        ``length_m``, ``in_unit`` (the route's unit contains the place),
        ``distance_m`` (from the place to the line).
    """
    wanted = set(units)
    pad = tolerance_m / 90_000 + 1e-6  # degrees, generous at these latitudes
    bbox = (lon - pad, lat - pad, lon + pad, lat + pad)
    with db.reader() as repo:
        found = {r["id"]: r for r in repo.routes.list(bbox=bbox)}
        if wanted:
            for route in repo.routes.list(units=sorted({code for _, code in wanted})):
                found.setdefault(route["id"], route)
        seen = [r for r in found.values() if jurisdiction.sees_wholly(r["layer"], r["unit_code"])]
        staff_ids = sorted({r["staff_id"] for r in seen if r["staff_id"] is not None})
        names = {s["id"]: s["name"] for s in repo.staff()} if staff_ids else {}
    if not seen:
        return []
    crs = local_projected_crs(lon, lat)
    lines = gpd.GeoSeries([r["line"] for r in seen], crs=4490).to_crs(crs)
    point = gpd.GeoSeries([shapely.Point(lon, lat)], crs=4490).to_crs(crs).iloc[0]
    distances = lines.distance(point).to_numpy()
    out = []
    for route, distance in zip(seen, distances, strict=True):
        in_unit = (route["layer"], route["unit_code"]) in wanted
        if not in_unit and distance > tolerance_m:
            continue
        out.append(
            {
                "id": route["id"],
                "name": route["name"],
                "layer": route["layer"],
                "level": route["level"],
                "unit_code": route["unit_code"],
                "part": route["part"],
                "staff_id": route["staff_id"],
                "staff_name": names.get(route["staff_id"]),
                "shift": route["shift"],
                "stale": route["stale"],
                "stale_reason": route["stale_reason"],
                "length_m": route["figures"].get("length_m"),
                "in_unit": in_unit,
                "distance_m": round(float(distance), 1),
            }
        )
    out.sort(key=lambda r: (r["distance_m"], -r["id"]))
    return out


def get_route(db: Database, jurisdiction: Jurisdiction, route_id: int) -> dict[str, Any]:
    """Return a stored route with its line (EPSG:4490); NotFoundError when hidden or missing."""
    with db.reader() as repo:
        found = repo.routes.get(route_id)
    if found is None or not jurisdiction.sees_wholly(found["layer"], found["unit_code"]):
        raise NotFoundError(f"no route {route_id}", field="route_id")
    return found


def delete_route(
    db: Database, jurisdiction: Jurisdiction, route_id: int, *, actor: Principal
) -> None:
    """Delete a stored route the caller may see (NotFoundError otherwise)."""
    found = get_route(db, jurisdiction, route_id)
    with db.transaction() as repo:
        repo.routes.delete(route_id)
        append_audit(
            repo,
            actor=actor,
            action="patrol.routes.delete",
            target=f"unit:{found['layer']}:{found['unit_code']}",
            detail={"route": route_id},
        )


def export_route(
    db: Database,
    jurisdiction: Jurisdiction,
    route_id: int,
    *,
    fmt: str,
    datum: str = "wgs84",
    actor: Principal,
) -> tuple[str, str]:
    """Return a stored route as ``(text, file name)`` in GPX, KML, GeoJSON or CSV (audited)."""
    found = get_route(db, jurisdiction, route_id)
    text = stored_route_text(found, fmt=fmt, datum=datum)
    with db.transaction() as repo:
        append_audit(
            repo,
            actor=actor,
            action="patrol.export",
            target=f"unit:{found['layer']}:{found['unit_code']}",
            detail={"route": route_id, "format": fmt, "datum": datum},
        )
    return text, f"route-{route_id}-{found['unit_code']}.{fmt}"


def flag_moved_units(repo: Repository, *, layer: str, codes: Sequence[str], reason: str) -> int:
    """Flag the routes of units whose boundary moved (inside the change's transaction)."""
    return repo.routes.mark_stale(layer=layer, codes=list(codes), reason=reason)


def route_json(route: dict[str, Any], *, geometry: bool = True) -> dict[str, Any]:
    """Return a stored route as JSON (times ISO 8601 in China time; line as GeoJSON)."""
    from gis.times import isoformat_local

    out = {
        "id": route["id"],
        "layer": route["layer"],
        "level": route["level"],
        "unit_code": route["unit_code"],
        "unit_version": isoformat_local(route["unit_version"]),
        "revision": route["revision"],
        "part": route["part"],
        "staff_id": route["staff_id"],
        "shift": route["shift"],
        "name": route["name"],
        "params": route["params"],
        **route["figures"],
        "checkpoints": [c["name"] for c in route["checkpoints"]],
        "stale": route["stale"],
        "stale_reason": route["stale_reason"],
        "created_by": route["created_by"],
        "created_at": isoformat_local(route["created_at"]),
    }
    if geometry:
        out["geometry"] = shapely.geometry.mapping(route["line"])
    return out


def _text(value: Any) -> str | None:
    return None if value is None or value != value else str(value)
