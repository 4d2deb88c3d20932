"""Geocode endpoints: locate one point, or a whole uploaded table."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from api.errors import PROBLEM_JSON
from api.fastpath import answer_geocode
from api.schemas_geocode import GeocodeAnswer
from gis.errors import InputError
from gis.locate import LocateService
from gis.locate.batch import geocode_file, table_format

router = APIRouter(tags=["geocode"])

_MEDIA = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "vector": "application/geo+json",
}


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
async def geocode(request: Request) -> Response:
    """Return the unit at every level of every layer for one point (same-grid 同格 answer).

    Coordinates may be WGS84, CGCS2000, GCJ-02, BD-09 or any EPSG CRS; the raw
    input is echoed. With `accuracy_m` each level lists the units the circle
    overlaps with their shares.
    """
    # Served by api.fastpath.GeocodeFastPath before routing reaches here;
    # this route documents the endpoint and answers identically.
    status, answer = answer_geocode(get_locator(request), await request.body())
    media = "application/json" if status == 200 else PROBLEM_JSON
    return Response(orjson.dumps(answer), status_code=status, media_type=media)


@router.post(
    "/geocode/batch",
    summary="Locate every row of a CSV, GeoJSON or GeoParquet file 批量定位",
    response_class=FileResponse,
    responses={
        200: {
            "content": {m: {} for m in _MEDIA.values()},
            "description": "The input with the answer's columns added.",
        },
        413: {"description": "Upload larger than the limit"},
    },
)
async def geocode_batch(
    request: Request,
    file: Annotated[UploadFile, File(description="CSV (x/y columns), GeoJSON or GeoParquet.")],
    locator: LocateService = Depends(get_locator),
    x: Annotated[str | None, Query(description="Column with x/longitude (CSV, Parquet).")] = None,
    y: Annotated[str | None, Query(description="Column with y/latitude (CSV, Parquet).")] = None,
    crs: Annotated[
        str, Query(description="CRS of x/y: wgs84, cgcs2000, gcj02, bd09, EPSG:...")
    ] = "cgcs2000",
    at: Annotated[str | None, Query(description="Boundaries valid at this time.")] = None,
) -> FileResponse:
    """Return the uploaded table (same format) plus `status`, `lon`, `lat`, a column per level."""
    name = file.filename or "upload.csv"
    kind = table_format(name)
    limit = request.app.state.settings.max_upload_bytes
    workdir = Path(tempfile.mkdtemp(prefix="tongge-batch-"))
    source = workdir / f"in{Path(name).suffix.lower()}"
    size = 0
    with source.open("wb") as sink:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                _cleanup(workdir)
                raise InputError(
                    f"upload larger than the limit of {limit} bytes", field="file", status=413
                )
            sink.write(chunk)
    if size == 0:
        _cleanup(workdir)
        raise InputError("the uploaded file is empty", field="file")
    target = workdir / f"out{Path(name).suffix.lower()}"
    try:
        geocode_file(locator, source, target, x=x, y=y, crs=crs, at=at)
    except Exception:
        _cleanup(workdir)
        raise
    return FileResponse(
        target,
        media_type=_MEDIA[kind],
        filename=f"located-{Path(name).name}",
        background=BackgroundTask(_cleanup, workdir),
    )


def _cleanup(folder: Path) -> None:
    for path in folder.glob("*"):
        path.unlink(missing_ok=True)
    folder.rmdir()
