"""Geocode endpoints: locate one point, or a whole uploaded table."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.deps import event_time, get_db, remove_folder
from api.errors import PROBLEM_JSON
from api.fastpath import answer_geocode, may_patrol, parse_geocode, with_routes
from api.schemas.locate import GeocodeAnswer
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Principal, record
from gis.errors import InputError, RateLimitedError
from gis.files import ReadLimits
from gis.locate import LocateService
from gis.locate.batch import geocode_file, table_format
from gis.locate.workers import BatchJob, BatchPool
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["geocode"])

_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "vector": "application/geo+json",
}
#: The response header saying how the upload's text was read, when not UTF-8.
ENCODING_HEADER = "X-Tongge-Encoding"


@contextmanager
def _batch_slot(request: Request) -> Iterator[None]:
    """Hold one of the ``batch_concurrency`` slots, or refuse with 429 when all are taken."""
    state = request.app.state
    limit = state.settings.batch_concurrency
    lock = state.batch_lock
    with lock:
        if state.batch_running >= limit:
            raise RateLimitedError(
                f"{limit} batch jobs are already running: retry in a few seconds",
                retry_after=10,
            )
        state.batch_running += 1
    try:
        yield
    finally:
        with lock:
            state.batch_running -= 1


def get_locator(request: Request) -> LocateService:
    """Return the application's locate service."""
    service: LocateService = request.app.state.locator
    return service


@router.post(
    "/geocode",
    summary="Locate a point in every layer 事件定位",
    response_model=GeocodeAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/GeocodeRequest"}}
            },
        }
    },
    responses={
        400: {"description": "Unusable coordinates or CRS"},
        422: {"description": "Malformed request"},
    },
)
async def geocode(
    request: Request,
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> Response:
    """Return the unit at every level of every layer for one point (same-grid 同格 answer).

    Coordinates may be WGS84, CGCS2000, GCJ-02, BD-09 or any EPSG CRS; the raw
    input is echoed. With `accuracy_m` each level lists the units the circle
    overlaps with their shares. Units outside your jurisdiction are answered
    as `restricted`, without code or name; a place outside your area answers
    `outside_jurisdiction` (whatever lies there). Callers with the `patrol`
    permission also get `routes`: the stored patrol routes of the units the
    place lies in and those passing within 30 m of it (their units seen
    entirely); others get no `routes`.
    """
    # api.app.TonggeAPI answers this path with api.fastpath.GeocodeFastPath
    # before routing: this route documents the endpoint (OpenAPI) and is only
    # reached if the router is mounted in another application.
    parsed = parse_geocode(await request.body())
    status, answer = await run_in_threadpool(
        answer_geocode, get_locator(request), parsed, jurisdiction=jurisdiction
    )
    if status == 200 and may_patrol(principal):
        answer = await run_in_threadpool(
            with_routes, request.app.state.db, answer, jurisdiction=jurisdiction
        )
    media = "application/json" if status == 200 else PROBLEM_JSON
    return Response(orjson.dumps(answer), status_code=status, media_type=media)


@router.post(
    "/geocode/batch",
    summary="Locate every row of a CSV, Excel, GeoParquet, GeoJSON, GeoPackage… file 批量定位",
    response_class=FileResponse,
    responses={
        200: {
            "content": {m: {} for m in _MEDIA.values()},
            "description": "The input with the answer's columns added.",
            "headers": {
                ENCODING_HEADER: {
                    "description": "How the upload's text was read (e.g. `GBK (detected)`), "
                    "when not UTF-8.",
                    "schema": {"type": "string"},
                }
            },
        },
        413: {"description": "Upload (or what it expands to) larger than the limits"},
    },
)
async def geocode_batch(
    request: Request,
    file: Annotated[
        UploadFile,
        File(description="CSV/TSV, Excel .xlsx, (Geo)Parquet, GeoJSON, GeoPackage, FGB, KML."),
    ],
    locator: LocateService = Depends(get_locator),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    db: Database = Depends(get_db),
    x: Annotated[
        str | None,
        Query(description="Column with x/longitude (default: lon, lng, 经度 or x)."),
    ] = None,
    y: Annotated[
        str | None,
        Query(description="Column with y/latitude (default: lat, 纬度 or y)."),
    ] = None,
    crs: Annotated[
        str, Query(description="CRS of x/y: wgs84, cgcs2000, gcj02, bd09, EPSG:...")
    ] = "cgcs2000",
    address: Annotated[
        str | None,
        Query(
            description="Column of standard addresses (e.g. 地址) to locate instead of "
            "coordinates: status `unmatched`/`ambiguous` when not certain.",
            max_length=200,
        ),
    ] = None,
    names: Annotated[
        bool, Query(description="Add `<layer>_<level>_name` next to each code column.")
    ] = False,
    encoding: Annotated[
        str | None,
        Query(
            description="Text encoding of a CSV (utf-8, gbk, gb18030…); default: found from "
            "the bytes, and said in the `X-Tongge-Encoding` header when not UTF-8.",
            max_length=40,
        ),
    ] = None,
    at: datetime | None = Depends(event_time),
) -> FileResponse:
    """Return the uploaded table (same format) plus `status`, `lon`, `lat`, a column per level.

    The input's columns keep their names (ours get a `tongge_` prefix when
    they clash). Codes outside your jurisdiction are left empty; a row outside
    your area has `status` `outside_jurisdiction` and no code. Every run is
    audited.
    """
    # Messages name the upload by its own name, never by where it is kept here.
    name = Path(file.filename or "upload.csv").name
    kind = table_format(name)
    settings = request.app.state.settings
    limit = settings.max_upload_bytes
    workdir = Path(tempfile.mkdtemp(prefix="tongge-batch-"))
    source = workdir / f"in{Path(name).suffix.lower()}"
    size = 0
    with source.open("wb") as sink:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                remove_folder(workdir)
                raise InputError(
                    f"{name}: upload larger than the limit of {limit} bytes",
                    field="file",
                    status=413,
                )
            sink.write(chunk)
    if size == 0:
        remove_folder(workdir)
        raise InputError(f"{name}: the uploaded file is empty", field="file")
    target = workdir / f"out{Path(name).suffix.lower()}"
    try:
        # Seconds of pandas, numpy and file work: in a worker process (or a
        # thread), a few at a time, so that single locates and /health go on.
        with _batch_slot(request):
            job = BatchJob(
                source=source,
                target=target,
                x=x,
                y=y,
                crs=crs,
                at=at,
                visible=None if jurisdiction.unrestricted else jurisdiction,
                label=name,
                limits=ReadLimits.from_settings(settings),
                encoding=encoding,
                address=address,
                names=names,
            )
            pool: BatchPool | None = request.app.state.batch_pool
            if pool is not None:
                result = await asyncio.wrap_future(pool.submit(job))
            else:
                result = await run_in_threadpool(
                    geocode_file,
                    locator,
                    source,
                    target,
                    x=x,
                    y=y,
                    crs=crs,
                    at=at,
                    visible=None if jurisdiction.unrestricted else jurisdiction,
                    label=name,
                    limits=job.limits,
                    encoding=encoding,
                    address=address,
                    names=names,
                )
    except Exception:
        remove_folder(workdir)
        raise
    record(
        db,
        actor=principal,
        action="geocode.batch",
        target=f"file:{name}"[:300],
        detail={"rows": result.rows, "bytes": size, "crs": crs, "encoding": result.encoding},
    )
    headers = {}
    if result.encoding:
        headers[ENCODING_HEADER] = result.encoding.encode("ascii", "replace").decode()
    return FileResponse(
        target,
        media_type=_MEDIA[kind],
        filename=f"located-{name}",
        headers=headers,
        background=BackgroundTask(remove_folder, workdir),
    )
