"""Patrol routes (日巡查): plan, export, check a route, score a recorded track.

The streets are the stored street layer unless the request uploads a
network (a line file). A caller bound to units (grid workers, police,
planners of a district) must name a unit of their jurisdiction; others may
leave it out to cover the whole uploaded network.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from api.deps import get_db, remove_folder
from api.schemas.patrol import (
    CheckResponse,
    PlanResponse,
    RouteList,
    RouteSaveRequest,
    ScheduleRequest,
    ScheduleResponse,
    ScoreResponse,
    StoredRoute,
)
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Permission, Principal, record
from gis.errors import InputError, NotFoundError
from gis.patrol import check_route, read_route, read_track, score_track
from gis.patrol._routes import (
    delete_route,
    export_route,
    get_route,
    list_routes,
    route_json,
    save_plan_routes,
)
from gis.patrol._service import (
    UnitArea,
    clip_arguments,
    load_unit,
    network_for,
    parse_checkpoint,
    parse_lonlat,
    plan_for,
    save_plan,
    schedule_for,
)
from gis.repository import Database

router = APIRouter(prefix="/api/v1/patrol", tags=["patrol"])

_MEDIA = {
    "gpx": "application/gpx+xml",
    "kml": "application/vnd.google-earth.kml+xml",
    "geojson": "application/geo+json",
    "csv": "text/csv",
}
_DOUBLE_SUFFIXES = (".osm.pbf", ".shp.zip")

UnitQuery = Annotated[
    str | None,
    Query(description="Unit code (micro-grid, grid, beat); required within a jurisdiction."),
]
LayerQuery = Annotated[str | None, Query(description="Layer, when a code is in several.")]
ModeQuery = Annotated[Literal["walk", "drive"], Query(description="drive respects one-way.")]
DatumQuery = Annotated[
    Literal["wgs84", "gcj02", "bd09"], Query(description="wgs84, gcj02 (Amap), bd09 (Baidu).")
]
NetworkFile = Annotated[
    UploadFile | None,
    File(description="Streets: GeoJSON, GeoPackage, zipped Shapefile… (default: the stored ones)"),
]
CheckpointQuery = Annotated[
    list[str] | None, Query(description="Must-visit places NAME@LON,LAT (WGS84), repeatable.")
]


@router.post(
    "/plan",
    summary="Plan patrol routes covering a unit's streets 巡查路线规划",
    response_model=PlanResponse,
    responses={
        200: {"content": {m: {} for m in _MEDIA.values()}},
        404: {"description": "No such unit in your jurisdiction"},
    },
)
async def plan(
    request: Request,
    network: NetworkFile = None,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    unit: UnitQuery = None,
    layer: LayerQuery = None,
    mode: ModeQuery = "walk",
    start: Annotated[str | None, Query(description="LON,LAT (WGS84) start and end.")] = None,
    checkpoint: CheckpointQuery = None,
    max_length_m: Annotated[float | None, Query(gt=0, description="Longest route (m).")] = None,
    datum: DatumQuery = "wgs84",
    format: Annotated[
        Literal["json", "gpx", "kml", "geojson", "csv"],
        Query(description="json: the figures; otherwise the routes as a file."),
    ] = "json",
) -> Any:
    """Plan closed routes covering every street of the unit (exact postman where possible).

    The JSON answer: `routes` (`length_m`, `deadhead_m`, `segments`,
    `checkpoints` each), `street_length_m`, `covered_share`, `lower_bound_m`.
    """
    area = _unit(db, jurisdiction, unit, layer, network)
    workdir = Path(tempfile.mkdtemp(prefix="tongge-patrol-"))
    try:
        source, name = await _save_network(request, network, workdir)
        result = await run_in_threadpool(
            plan_for,
            db,
            source,
            area=area,
            mode=mode,
            start=parse_lonlat(start) if start else None,
            checkpoints=[parse_checkpoint(c) for c in checkpoint or []],
            max_length_m=max_length_m,
            label=name,
        )
        if format == "json":
            remove_folder(workdir)
            return result.to_dict()
        target = save_plan(result, workdir / f"plan.{format}", area=area, datum=datum)
    except Exception:
        remove_folder(workdir)
        raise
    record(
        db,
        actor=principal,
        action="patrol.export",
        target=f"unit:{area.layer}:{area.code}" if area else f"file:{name}"[:300],
        detail={"format": format, "routes": len(result.routes), "datum": datum},
    )
    code = area.code if area and area.code else "network"
    return FileResponse(
        target,
        media_type=_MEDIA[format],
        filename=f"patrol-{code}.{format}",
        background=BackgroundTask(remove_folder, workdir),
    )


@router.post(
    "/check",
    summary="Check a route file against a unit 路线核查",
    response_model=CheckResponse,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
async def check(
    request: Request,
    route: Annotated[UploadFile, File(description="The route: .gpx, .kml or .geojson.")],
    network: NetworkFile = None,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    unit: UnitQuery = None,
    layer: LayerQuery = None,
    mode: ModeQuery = "walk",
    datum: DatumQuery = "wgs84",
    tolerance_m: Annotated[float, Query(gt=0, le=200)] = 15.0,
) -> dict[str, Any]:
    """Return the route's length outside the unit and the unit's streets it does not cover."""
    area = _unit(db, jurisdiction, unit, layer, network)

    def work(
        source: Path | None, name: str | None, route_file: Path, route_name: str
    ) -> dict[str, Any]:
        streets = network_for(db, source, area=area, mode=mode, label=name)
        lines = read_route(route_file, datum=datum, label=route_name)
        return check_route(
            streets,
            lines,
            **clip_arguments(area),
            tolerance_m=tolerance_m,
        ).to_dict()

    return await _with_uploads(request, network, route, "route", work)


@router.post(
    "/score",
    summary="Score a recorded GPS track against the unit's plan 轨迹评分",
    response_model=ScoreResponse,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
async def score(
    request: Request,
    track: Annotated[UploadFile, File(description="The recorded track (.gpx trk).")],
    network: NetworkFile = None,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    unit: UnitQuery = None,
    layer: LayerQuery = None,
    mode: ModeQuery = "walk",
    checkpoint: CheckpointQuery = None,
    datum: DatumQuery = "wgs84",
    tolerance_m: Annotated[float, Query(gt=0, le=200)] = 15.0,
) -> dict[str, Any]:
    """Return the planned street length walked, time inside the unit, checkpoints reached."""
    area = _unit(db, jurisdiction, unit, layer, network)

    def work(
        source: Path | None, name: str | None, track_file: Path, track_name: str
    ) -> dict[str, Any]:
        planned = plan_for(
            db,
            source,
            area=area,
            mode=mode,
            checkpoints=[parse_checkpoint(c) for c in checkpoint or []],
            label=name,
        )
        recorded = read_track(track_file, datum=datum, label=track_name)
        return score_track(
            planned,
            recorded,
            **clip_arguments(area),
            tolerance_m=tolerance_m,
        ).to_dict()

    return await _with_uploads(request, network, track, "track", work)


@router.post(
    "/schedule",
    summary="Weekly visits of a unit's households and shops 周走访",
    response_model=ScheduleResponse,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
async def schedule(
    body: ScheduleRequest,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Spread one visit to every household and shop over the working days, each day a route.

    Visits not made last week (ids missing from `visited`) come first. The
    stored streets are walked; each day is balanced within `tolerance` of
    the mean day (`balanced` says whether that was reached).
    """
    principal.require(Permission.PATROL)
    area = _unit(db, jurisdiction, body.unit, body.layer)
    assert area is not None  # a unit is always named
    start = parse_lonlat(body.start) if body.start else None
    week = await run_in_threadpool(
        schedule_for,
        db,
        None,
        area=area,
        days=body.days,
        visited=body.visited,
        mode=body.mode,
        start=start,
        start_date=body.start_date,
        visit_minutes=body.visit_minutes,
        balance=body.balance,
        tolerance=body.tolerance,
    )
    answer = week.to_dict()
    record(
        db,
        actor=principal,
        action="patrol.schedule",
        target=f"unit:{area.layer}:{area.code}",
        detail={"days": body.days, "visits": answer["visits"], "carried": answer["carried"]},
    )
    return answer


@router.post(
    "/routes",
    summary="Plan a unit and store its routes for staff and a shift 保存路线",
    response_model=RouteList,
    status_code=201,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
async def save_routes(
    body: RouteSaveRequest,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Plan the unit on the stored streets and store each route with the unit's version."""
    area = _unit(db, jurisdiction, body.unit, body.layer)
    assert area is not None  # a unit is always named
    start = body.start

    def work() -> list[int]:
        planned = plan_for(
            db,
            None,
            area=area,
            mode=body.mode,
            start=parse_lonlat(start) if start else None,
            checkpoints=[parse_checkpoint(c) for c in body.checkpoints],
            max_length_m=body.max_length_m,
        )
        return save_plan_routes(
            db,
            planned,
            area=area,
            actor=principal,
            staff_id=body.staff_id,
            shift=body.shift,
            name=body.name,
            params={"start": start, "max_length_m": body.max_length_m, "network": "stored"},
        )

    ids = await run_in_threadpool(work)
    return {"routes": [route_json(get_route(db, jurisdiction, i), geometry=False) for i in ids]}


@router.get("/routes", summary="Stored routes of your units 路线列表", response_model=RouteList)
def routes_list(
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    unit: UnitQuery = None,
    layer: LayerQuery = None,
    covering: Annotated[
        str | None, Query(description="LON,LAT (WGS84): routes passing within 30 m.")
    ] = None,
    stale: Annotated[
        bool | None, Query(description="true: only routes to re-plan (boundary moved).")
    ] = None,
    staff_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """List the stored routes of the units you see entirely (a grid worker: their own)."""
    point = parse_lonlat(covering, field="covering") if covering else None
    return {
        "routes": list_routes(
            db,
            jurisdiction,
            layer=layer,
            unit=unit,
            covering=point,
            stale=stale,
            staff_id=staff_id,
        )
    }


@router.get(
    "/routes/{route_id}",
    summary="A stored route 路线",
    response_model=StoredRoute,
    responses={404: {"description": "No such route in your jurisdiction"}},
)
def route_detail(
    route_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="Stored route id.")],
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
) -> dict[str, Any]:
    """Return a stored route with its line (GeoJSON, CGCS2000)."""
    return route_json(get_route(db, jurisdiction, route_id))


@router.delete(
    "/routes/{route_id}",
    summary="Delete a stored route 删除路线",
    status_code=204,
    responses={404: {"description": "No such route in your jurisdiction"}},
)
def route_delete(
    route_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="Stored route id.")],
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> Response:
    """Delete a stored route of one of your units."""
    delete_route(db, jurisdiction, route_id, actor=principal)
    return Response(status_code=204)


@router.get(
    "/routes/{route_id}/export",
    summary="Download a stored route for a phone 路线下载",
    responses={
        200: {"content": {m: {} for m in _MEDIA.values()}},
        404: {"description": "No such route in your jurisdiction"},
    },
)
def route_export(
    route_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="Stored route id.")],
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    format: Annotated[
        Literal["gpx", "kml", "geojson", "csv"], Query(description="File format.")
    ] = "gpx",
    datum: DatumQuery = "wgs84",
) -> Response:
    """Return the route as GPX 1.1 (`rte`, `wpt`), KML, GeoJSON or CSV; WGS84 unless asked."""
    text, filename = export_route(
        db, jurisdiction, route_id, fmt=format, datum=datum, actor=principal
    )
    return Response(
        content=text.encode("utf-8"),
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _unit(
    db: Database,
    jurisdiction: Jurisdiction,
    code: str | None,
    layer: str | None,
    network: UploadFile | None = None,
) -> UnitArea | None:
    if code is None:
        if not jurisdiction.unrestricted:
            raise InputError("name the unit to plan (unit=CODE): one of your units", field="unit")
        if network is None:
            raise InputError(
                "name the unit to plan (unit=CODE), or upload a network to cover whole",
                field="unit",
            )
        return None
    # The code is not echoed: the answer for a hidden unit must not differ
    # from a missing one in any way, and query values are not the caller's path.
    missing = NotFoundError("no such unit in your jurisdiction", field="unit")
    # Jurisdiction first: a hidden unit must not answer differently from a missing one.
    if not jurisdiction.sees_code(code, layer=layer):
        raise missing
    try:
        area = load_unit(db, code=code, layer=layer)
    except NotFoundError:
        raise missing from None
    # Routes are walked in units seen entirely (not another layer's unit
    # that merely overlaps one's own).
    if not jurisdiction.sees_wholly(area.layer or "", code):
        raise missing
    return area


async def _save_network(
    request: Request, upload: UploadFile | None, workdir: Path
) -> tuple[Path | None, str | None]:
    # No upload: the stored street layer (read by the service).
    if upload is None:
        return None, None
    return await _save(request, upload, workdir)


async def _save(
    request: Request, upload: UploadFile, workdir: Path, *, stem: str = "network"
) -> tuple[Path, str]:
    # Messages name the upload by its own name, never by where it is kept here.
    name = Path(upload.filename or f"{stem}.geojson").name
    lower = name.lower()
    suffix = next((s for s in _DOUBLE_SUFFIXES if lower.endswith(s)), Path(lower).suffix)
    if suffix in (".osm.pbf", ".pbf"):
        # pyrosm inflates every block of a PBF with no limit: a small upload
        # could grow to gigabytes. Uploaded networks go through the guarded
        # GDAL reader; OSM extracts are read from local files by the CLI.
        raise InputError(
            f"{name}: OSM PBF is not accepted as an upload: send the streets as "
            "GeoJSON, GeoPackage or a zipped shapefile, or use `tongge patrol plan "
            "--network FILE.osm.pbf` on the server",
            field=stem,
        )
    target = workdir / f"{stem}{suffix}"
    limit = request.app.state.settings.max_upload_bytes
    size = 0
    with target.open("wb") as sink:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise InputError(
                    f"{name}: upload larger than the limit of {limit} bytes",
                    field=stem,
                    status=413,
                )
            sink.write(chunk)
    if size == 0:
        raise InputError(f"{name}: the uploaded file is empty", field=stem)
    return target, name


async def _with_uploads(
    request: Request,
    network: UploadFile | None,
    upload: UploadFile,
    stem: str,
    work: Callable[[Path | None, str | None, Path, str], dict[str, Any]],
) -> dict[str, Any]:
    """Save the optional network and ``upload`` in a private folder, run ``work`` on them.

    ``work(network_path, network_name, upload_path, upload_name)`` runs in the
    thread pool (it reads files and computes); the folder is removed whatever
    happens, so an upload never outlives its request.
    """
    workdir = Path(tempfile.mkdtemp(prefix="tongge-patrol-"))
    try:
        source, name = await _save_network(request, network, workdir)
        path, upload_name = await _save(request, upload, workdir, stem=stem)
        return await run_in_threadpool(work, source, name, path, upload_name)
    finally:
        remove_folder(workdir)
