"""A tiny hand-drawn layer for the edit operations, and the invariants every edit keeps.

Metres in CGCS2000 / Gauss-Kruger CM 120E (EPSG:4549) from ``(X0, Y0)``,
stored in EPSG:4490 on the 1e-7° grid. Two communities ``1`` and ``2``,
four grids each, every grid two micro-grids (west ``…001``, east ``…002``)::

    y=200 +---+---+---+---+---+---+---+---+
          | 1001  | 1002  | 2001  | 2002  |
    y=100 +---+---+---+---+---+---+---+---+
          | 1003  | 1004  | 2003  | 2004  |
    y=0   +---+---+---+---+---+---+---+---+
          0  50  100 150 200 250 300 350 400
                      [b1]  building b1: x 120..140, y 40..60 (micro-grid 1004001)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import STORAGE_CRS, transformer
from gis.edits import LayerState
from gis.layers import LayerSpec, LevelSpec
from gis.validate import Tolerances
from gis.validate._report import Locator

X0, Y0 = 500_000.0, 2_750_000.0
SPEC = LayerSpec(
    name="test",
    levels=(LevelSpec("community"), LevelSpec("grid"), LevelSpec("micro_grid")),
    digits_only=True,
)
_TO_DEGREES = transformer(CRS.from_epsg(4549), STORAGE_CRS)


def deg(geometry: BaseGeometry) -> BaseGeometry:
    """Project a drawing in fixture metres to EPSG:4490 on the 1e-7° grid."""

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = _TO_DEGREES.transform(xy[:, 0] + X0, xy[:, 1] + Y0)
        return np.round(np.column_stack([lon, lat]), 7)

    return shapely.transform(geometry, convert)


def rect(x0: float, y0: float, x1: float, y1: float) -> BaseGeometry:
    """Return a rectangle in fixture metres with a vertex every 50 m, in EPSG:4490."""
    xs = np.arange(x0, x1 + 1e-9, 50.0)
    ys = np.arange(y0, y1 + 1e-9, 50.0)
    ring = (
        [(x, y0) for x in xs]
        + [(x1, y) for y in ys[1:]]
        + [(x, y1) for x in xs[::-1][1:]]
        + [(x0, y) for y in ys[::-1][1:]]
    )
    return deg(shapely.Polygon(ring))


def line(*xy: tuple[float, float]) -> BaseGeometry:
    """Return a line in fixture metres, in EPSG:4490."""
    return deg(shapely.LineString(xy))


def polygon(*xy: tuple[float, float]) -> BaseGeometry:
    """Return a polygon in fixture metres, in EPSG:4490."""
    return deg(shapely.Polygon(xy))


def _frame(rows: Sequence[tuple[str, str | None, BaseGeometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [f"单元{r[0]}" for r in rows],
            "parent_code": [r[1] for r in rows],
            "kind": "comprehensive",
            "attributes": [{} for _ in rows],
        },
        geometry=[
            shapely.MultiPolygon([r[2]]) if r[2].geom_type == "Polygon" else r[2] for r in rows
        ],
        crs=STORAGE_CRS,
    )


def tiny_layer(*, buildings: bool = True) -> LayerState:
    """Return the layer drawn above (with building ``b1`` and POI ``p1`` in it)."""
    micro, grids, communities = [], [], []
    for c, community in enumerate(("1", "2")):
        grid_shapes = []
        for g, (col, row) in enumerate(((0, 1), (1, 1), (0, 0), (1, 0)), start=1):
            code = f"{community}00{g}"
            x = 200 * c + 100 * col
            y = 100 * row
            halves = [rect(x, y, x + 50, y + 100), rect(x + 50, y, x + 100, y + 100)]
            for h, half in enumerate(halves, start=1):
                micro.append((f"{code}00{h}", code, half))
            shape = shapely.coverage_union_all(np.array(halves, dtype=object))
            grids.append((code, community, shape))
            grid_shapes.append(shape)
        communities.append(
            (community, None, shapely.coverage_union_all(np.array(grid_shapes, dtype=object)))
        )
    building = gpd.GeoDataFrame(
        {"key": ["b1"], "households": [12], "persons": [30]},
        geometry=[polygon((120, 40), (140, 40), (140, 60), (120, 60))],
        crs=STORAGE_CRS,
    )
    center = building.geometry.values[0].centroid
    pois = pd.DataFrame(
        [{"key": "p1", "name": "第一小学", "building_key": "b1", "lon": center.x, "lat": center.y}]
    )
    return LayerState(
        spec=SPEC,
        levels={
            "community": _frame(communities),
            "grid": _frame(grids),
            "micro_grid": _frame(micro),
        },
        buildings=building if buildings else None,
        pois=pois,
    )


def assert_state_consistent(state: LayerState, *, tolerance_m2: float = 1.0) -> None:
    """Fail unless every level is a valid coverage nested in the level above, codes unique."""
    locator = Locator(state.projected(), Tolerances())
    names = [lv.name for lv in state.spec.levels]
    for name in names:
        frame = state.frame(name)
        assert frame["code"].is_unique, f"{name}: duplicate codes"
        assert shapely.coverage_is_valid(np.asarray(frame.geometry.values)), (
            f"{name} not a coverage"
        )
        assert shapely.is_valid(np.asarray(frame.geometry.values)).all(), f"{name}: invalid unit"
    for upper, lower in itertools.pairwise(names):
        parents = dict(
            zip(state.frame(upper)["code"], state.frame(upper).geometry.values, strict=True)
        )
        kids = state.frame(lower)
        assert set(kids["parent_code"]) <= set(parents), f"{lower}: unknown parents"
        for parent, group in kids.groupby("parent_code"):
            covered = shapely.union_all(group.geometry.values)
            out = locator.area(shapely.difference(covered, parents[parent]))
            bare = locator.area(shapely.difference(parents[parent], covered))
            assert out <= tolerance_m2, f"{lower} of {parent}: {out:.2f} m² outside"
            assert bare <= tolerance_m2, f"{parent}: {bare:.2f} m² without {lower}"
            for code in group["code"]:
                assert str(code).startswith(str(parent)), f"{code} not under {parent}"
        assert not set(parents) - set(kids["parent_code"]), f"{upper} units without {lower}"


def area_m2(geometry: BaseGeometry, state: LayerState) -> float:
    """Return the area of an EPSG:4490 geometry in m²."""
    return Locator(state.projected(), Tolerances()).area(geometry)
