"""Evaluation of incident handling per unit and period (治理成效评估): JSON, CSV or Excel.

Included before ``api.routers.incidents`` so that ``/api/v1/incidents/evaluation``
is not read as an incident id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import get_db
from api.jsontext import StrictJSONResponse
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Principal
from gis.incidents import evaluation, service
from gis.repository import Database
from gis.times import parse_time, utc_now

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _time(value: str | None, field: str) -> datetime | None:
    return None if value is None or not value.strip() else parse_time(value, field=field)


@router.get(
    "/evaluation",
    summary="Evaluation per unit and period 治理成效评估",
    responses={
        200: {
            "description": "One row per unit and period: counts by category, median hours "
            "to close, overdue rate, repeat locations, feedback (JSON, CSV or Excel).",
            "content": {media: {} for media in _MEDIA.values()},
        }
    },
)
def evaluate(
    request: Request,
    db: Annotated[Database, Depends(get_db)],
    principal: Annotated[Principal, Depends(current_principal)],
    jurisdiction: Annotated[Jurisdiction, Depends(current_jurisdiction)],
    period: Annotated[
        Literal["day", "week", "month", "quarter", "year", "all"],
        Query(description="Periods in China time."),
    ] = "month",
    by: Annotated[
        str,
        Query(
            max_length=80,
            description="`layer:level` (e.g. `governance:grid`, `governance:community`, "
            "`police:beat`) or `category`, `class_code`, `channel`.",
        ),
    ] = "governance:grid",
    since: Annotated[
        str | None, Query(max_length=40, description="Received at or after (ISO 8601 or date).")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="Received before (ISO 8601 or date).")
    ] = None,
    radius_m: Annotated[
        float, Query(ge=0, le=5000, description="Two incidents this close are at one place.")
    ] = evaluation.DEFAULT_RADIUS_M,
    same_category: Annotated[
        bool, Query(description="Count a repeat only for the same category.")
    ] = False,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> Response:
    """Evaluate the incidents of your jurisdiction received in ``[since, until)``."""
    start, end = _time(since, "since"), _time(until, "until")
    frame = service.frame(db, principal, since=start, until=end, jurisdiction=jurisdiction)
    levels = evaluation.unit_levels(db)
    table = evaluation.evaluate(
        frame,
        by=by,
        period=period,
        now=utc_now(),
        radius_m=radius_m,
        same_category=same_category,
        unit_levels=levels,
    )
    if format == "csv":
        text = evaluation.to_csv(table) or ""
        return Response(
            text.encode("utf-8"),
            media_type=_MEDIA["csv"],
            headers={"Content-Disposition": 'attachment; filename="evaluation.csv"'},
        )
    if format == "xlsx":
        return Response(
            evaluation.to_xlsx(table) or b"",
            media_type=_MEDIA["xlsx"],
            headers={"Content-Disposition": 'attachment; filename="evaluation.xlsx"'},
        )
    return StrictJSONResponse(
        {
            "by": by,
            "period": period,
            "since": start,
            "until": end,
            "radius_m": radius_m,
            "rows": evaluation.to_records(table),
        }
    )
