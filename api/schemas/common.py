"""Response schemas (OpenAPI) and converters from gis frames to JSON."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import shapely
from pydantic import BaseModel, Field

from gis.repository import LayerSummary


class Health(BaseModel):
    """Service health."""

    status: Literal["ok"] = "ok"
    version: str
    database: str = Field(description="Database dialect: postgresql or sqlite.")


class Ready(BaseModel):
    """Service readiness: the database accepts writes."""

    status: Literal["ready"] = "ready"
    version: str
    database: str = Field(description="Database dialect: postgresql or sqlite.")
    boundaries_revision: int | None = Field(
        default=None,
        description=(
            "Boundaries revision the locate indexes and map tiles answer from (null while "
            "the first are built). After a boundary change it moves on once they show it."
        ),
    )


class Level(BaseModel):
    """A level of a layer."""

    name: str = Field(examples=["grid"])
    title: str = Field(examples=["网格 grid"])
    rank: int = Field(description="0 is the top level.")
    code_lengths: list[int] | None = Field(description="Allowed code lengths; null means any.")
    unit_count: int = Field(description="Units valid now.")


class Layer(BaseModel):
    """A layer: one hierarchy of units over the ground."""

    name: str = Field(examples=["governance"])
    title: str = Field(examples=["综治网格 governance grids"])
    levels: list[Level]
    synthetic: bool = Field(
        default=False,
        description="Some of its current units are synthetic sample data (示例数据), "
        "e.g. the bundled sample city: not a real layout.",
    )
    source: str | None = Field(
        default=None, description="Where synthetic data come from (the manifest's note)."
    )


class UnitProperties(BaseModel):
    """Properties of a unit feature."""

    code: str = Field(examples=["350502004001001"])
    name: str | None = None
    layer: str
    level: str
    parent_code: str | None = None
    kind: Literal["comprehensive", "dedicated"] = Field(description="综合 or 专属 grid.")
    attributes: dict[str, Any] = Field(default_factory=dict)
    valid_from: datetime = Field(description="UTC start of this boundary version.")
    valid_to: datetime | None = Field(default=None, description="UTC end; null = current.")


class UnitFeature(BaseModel):
    """A unit as a GeoJSON Feature (geometry in CGCS2000 lon/lat)."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: UnitProperties


class UnitRef(BaseModel):
    """A short reference to a unit."""

    code: str
    name: str | None = None
    level: str


class UnitCollection(BaseModel):
    """A page of units as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[UnitFeature]
    numberMatched: int = Field(description="Units matching the filters.")  # noqa: N815 (OGC name)
    numberReturned: int  # noqa: N815 (OGC API Features name)
    links: list[dict[str, str]] = Field(default_factory=list, description="next/prev pages.")


class UnitDetail(UnitFeature):
    """A unit with its ancestors (top first) and children."""

    ancestors: list[UnitRef]
    children: list[UnitRef]


def layer_schema(summary: LayerSummary) -> Layer:
    """Convert a layer summary."""
    return Layer(
        name=summary.name,
        title=summary.title,
        levels=[
            Level(
                name=lv.name,
                title=lv.title,
                rank=lv.rank,
                code_lengths=list(lv.code_lengths) if lv.code_lengths else None,
                unit_count=lv.unit_count,
            )
            for lv in summary.levels
        ],
        synthetic=summary.synthetic,
        source=summary.source,
    )


def unit_feature(row: pd.Series) -> dict[str, Any]:
    """Convert a unit-frame row to a GeoJSON Feature dict."""
    return {
        "type": "Feature",
        "id": row["code"],
        "geometry": shapely.geometry.mapping(row.geometry),
        "properties": {
            "code": row["code"],
            "name": _none(row["name"]),
            "layer": row["layer"],
            "level": row["level"],
            "parent_code": _none(row["parent_code"]),
            "kind": row["kind"],
            "attributes": row["attributes"] or {},
            "valid_from": _time(row["valid_from"]),
            "valid_to": _time(row["valid_to"]),
        },
    }


def unit_ref(row: pd.Series) -> dict[str, Any]:
    """Convert a unit-frame row to a short reference."""
    return {"code": row["code"], "name": _none(row["name"]), "level": row["level"]}


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _time(value: Any) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).isoformat()


def plain(record: dict[str, Any]) -> dict[str, Any]:
    """Return a frame record with JSON-ready values: NaN, ±inf → None, numpy scalars → Python."""
    result = {}
    for k, v in record.items():
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:
            v = v.item()
        result[k] = None if isinstance(v, float) and not math.isfinite(v) else v
    return result
