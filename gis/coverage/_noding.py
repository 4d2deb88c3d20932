"""Noding: make every shared edge of a level bit-identical on both sides."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.validate import Tolerances

__all__ = ["NodingFix", "node_level", "unnoded_codes"]

#: Metres per degree of latitude: converts the tolerances into the degrees
#: the boundaries are defined in (a bound, not a measurement).
_METRES_PER_DEGREE = 111_320.0
_ON_EDGE_DEGREES = 1e-9  # ~0.1 mm: a vertex this close to an edge lies on it


@dataclass(frozen=True)
class NodingFix:
    """One unit changed by noding: how much ground moved (m²) and why."""

    code: str
    area_m2: float
    message: str

    rule: str = "noding"


def unnoded_codes(units: gpd.GeoDataFrame) -> list[str]:
    """Return the codes of units with an edge no neighbour matches exactly.

    Examples
    --------
    >>> from shapely import box, Polygon
    >>> a = box(0, 0, 1, 1)
    >>> b = Polygon([(1, 0), (2, 0), (2, 1), (1, 1), (1, 0.5)])  # a vertex A lacks
    >>> unnoded_codes(gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[a, b], crs=4490))
    ['A', 'B']
    """
    geometries = np.asarray(units.geometry.values, dtype=object)
    if len(geometries) < 2:
        return []
    edges = shapely.coverage_invalid_edges(geometries)
    flagged = ~shapely.is_empty(edges) & ~shapely.is_missing(edges)
    return [str(c) for c in units["code"].to_numpy()[flagged]]


def node_level(
    units: gpd.GeoDataFrame,
    *,
    tolerances: Tolerances | None = None,
    projected: CRS | None = None,
) -> tuple[gpd.GeoDataFrame, list[NodingFix]]:
    """Node a level so that ``shapely.coverage_is_valid`` holds; list what moved.

    Neighbours digitised or edited separately carry vertices the other side
    lacks (an edge cut by ``difference``/``union``), or vertices a hair
    apart: the areas agree but the edges do not, so a point on the line may
    fall in neither unit's index and exports disagree. GEOS' coverage
    cleaner nodes every edge and snaps vertices within the sliver width;
    overlaps and gaps narrower than it go to the neighbour with the longest
    shared border. Larger discrepancies are validation problems and must be
    refused before this is called.

    Parameters
    ----------
    units : GeoDataFrame
        The level, in EPSG:4490, with a ``code`` column.
    tolerances : Tolerances, optional
        ``sliver_width_m`` is the snapping distance and widest gap closed.
    projected : CRS, optional
        Where areas are measured (default: the local projected CRS).

    Returns
    -------
    (GeoDataFrame, list of NodingFix)
        The level with noded geometries (the same rows) and one fix per unit
        whose geometry changed; unchanged input comes back as it is.

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> a = box(118.50, 24.90, 118.51, 24.91)
    >>> b = Polygon([(118.51, 24.90), (118.52, 24.90), (118.52, 24.91),
    ...              (118.51, 24.91), (118.51, 24.905)])
    >>> units = gpd.GeoDataFrame({"code": ["A", "B"]}, geometry=[a, b], crs=4490)
    >>> noded, fixes = node_level(units)
    >>> bool(shapely.coverage_is_valid(noded.geometry.values)), [f.code for f in fixes]
    (True, ['A'])
    >>> fixes[0].area_m2
    0.0
    """
    tolerances = tolerances or Tolerances()
    geometries = np.asarray(units.geometry.values, dtype=object)
    if len(geometries) < 2:
        return units, []
    edges = shapely.coverage_invalid_edges(geometries)
    flagged = ~shapely.is_empty(edges) & ~shapely.is_missing(edges)
    if not flagged.any():
        return units, []
    snap = tolerances.sliver_width_m / _METRES_PER_DEGREE
    cleaned = _clean_around(geometries, flagged, snap)
    # Keep each unit's geometry type (stored units are MultiPolygons).
    cleaned = np.array(
        [_like(_polygonal(new), old) for new, old in zip(cleaned, geometries, strict=True)],
        dtype=object,
    )
    # The cleaner may start rings elsewhere or turn them: only a different
    # vertex set is a change (and otherwise the original is kept).
    changed = ~shapely.equals_exact(
        shapely.normalize(geometries), shapely.normalize(cleaned), tolerance=0.0
    )
    if not changed.any():
        return units, []
    cleaned = np.where(changed, cleaned, geometries)
    projected = projected or _local(units)
    to_metres = transformer(STORAGE_CRS, projected)
    rows = np.flatnonzero(changed)
    # Most noding only inserts vertices (no area moves): measure the ground
    # that moved only where the area changed at all.
    delta = np.abs(shapely.area(geometries[rows]) - shapely.area(cleaned[rows]))
    fixes = []
    for row, area_change in zip(rows, delta, strict=True):
        area = 0.0
        if area_change > 1e-14:  # degrees²: ~1e-4 m²
            moved = shapely.symmetric_difference(geometries[row], cleaned[row])
            area = float(shapely.area(_project(moved, to_metres))) if not moved.is_empty else 0.0
        fixes.append(
            NodingFix(
                code=str(units["code"].iloc[row]),
                area_m2=round(area, 3),
                message=(
                    "edges noded with the neighbours' (shared vertices made identical"
                    + (f"; {area:.2f} m² of sliver moved" if area >= 0.005 else "")
                    + ")"
                ),
            )
        )
    noded = units.copy()
    noded[units.geometry.name] = gpd.GeoSeries(cleaned, index=units.index, crs=units.crs)
    return noded, fixes


def _clean_around(geometries: np.ndarray, flagged: np.ndarray, snap: float) -> np.ndarray:
    """Node the flagged units and their neighbours only; the whole level if that is not enough.

    A planner's change touches a few units of thousands, and the usual
    mismatch is a vertex one side has on a shared straight edge. Snapping each
    affected unit to its neighbours' vertices that lie on its edges inserts
    the missing vertices; the units around are checked to form a
    valid coverage with theirs. Anything else (overlaps and gaps under the
    tolerance, crossing edges) goes to GEOS' coverage cleaner, level-wide.
    """
    tree = shapely.STRtree(geometries)
    source, target = tree.query(geometries[flagged], predicate="intersects")
    flagged_rows = np.flatnonzero(flagged)[source]
    keep = flagged_rows != target
    flagged_rows, target = flagged_rows[keep], target[keep]
    affected = np.unique(np.concatenate([flagged_rows, target]))
    if len(affected) < len(geometries):
        # A flagged unit takes its neighbours' vertices; a neighbour takes
        # the flagged units' (its other edges already match).
        references: dict[int, set[int]] = {}
        for a, b in zip(flagged_rows, target, strict=True):
            references.setdefault(int(a), set()).add(int(b))
            references.setdefault(int(b), set()).add(int(a))
        rows = np.array(sorted(references), dtype=np.int64)
        points = np.array(
            [
                shapely.multipoints(shapely.get_coordinates(geometries[sorted(references[r])]))
                for r in rows
            ],
            dtype=object,
        )
        snapped = geometries.copy()
        # A hair, not the sliver width: only vertices lying on an edge are
        # inserted; nearby distinct vertices must not be merged on one side.
        snapped[rows] = shapely.snap(geometries[rows], points, _ON_EDGE_DEGREES)
        around = np.unique(tree.query(snapped[rows], predicate="intersects")[1])
        if shapely.is_valid(snapped[rows]).all() and shapely.coverage_is_valid(snapped[around]):
            return snapped
    return np.asarray(
        shapely.coverage_clean(geometries, gap_width=snap, snapping_distance=snap), dtype=object
    )


def _polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    if geometry is None or geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _like(geometry: shapely.Geometry, model: shapely.Geometry) -> shapely.Geometry:
    if (
        model is not None
        and model.geom_type == "MultiPolygon"
        and geometry is not None
        and geometry.geom_type == "Polygon"
    ):
        return shapely.MultiPolygon([geometry])
    return geometry


def _local(units: gpd.GeoDataFrame) -> CRS:
    minx, miny, maxx, maxy = units.geometry.total_bounds
    return local_projected_crs((minx + maxx) / 2, (miny + maxy) / 2)


def _project(geometry: shapely.Geometry, to_metres: object) -> shapely.Geometry:
    return shapely.transform(
        geometry,
        lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1])),  # type: ignore[attr-defined]
    )
