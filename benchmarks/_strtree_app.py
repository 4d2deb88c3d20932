"""Baseline for the HTTP benchmark: a plain FastAPI endpoint wrapping a shapely STRtree.

This is what a team would write first: a pydantic body, a tree query, a dict
back. Served by the same uvicorn as tongge's API so that only the endpoints
differ. Configure with ``BASELINE_UNITS`` (a polygon file with a ``code``
column).
"""

from __future__ import annotations

import os

import geopandas as gpd
import shapely
from fastapi import FastAPI
from pydantic import BaseModel


class Point(BaseModel):
    """A point in the units' CRS."""

    x: float
    y: float


def create_app() -> FastAPI:
    """Build the baseline app over ``BASELINE_UNITS``."""
    units = gpd.read_file(os.environ["BASELINE_UNITS"])
    geometries = units.geometry.values
    codes = units["code"].tolist()
    tree = shapely.STRtree(geometries)
    app = FastAPI()

    @app.post("/geocode")
    def geocode(point: Point) -> dict[str, str | None]:
        hits = tree.query(shapely.Point(point.x, point.y), predicate="intersects")
        return {"code": min(codes[i] for i in hits) if len(hits) else None}

    return app
