"""Snapping a planner's drawing to the boundaries it was meant to follow.

A line drawn on a map at street zoom lands a metre or two off the vertex
the planner aimed at. Each drawn vertex within the tolerance of an existing
boundary vertex takes that vertex's exact coordinates; else, within the
tolerance of a boundary edge, it moves onto the edge. Distances are measured
in the layer's projected CRS; coordinates stay EPSG:4490.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import STORAGE_CRS, transformer

__all__ = ["snap_drawing"]


def snap_drawing(
    drawn: BaseGeometry,
    boundaries: Sequence[BaseGeometry],
    *,
    tolerance_m: float,
    projected: CRS,
) -> BaseGeometry:
    """Return ``drawn`` with vertices near ``boundaries`` moved onto them.

    Parameters
    ----------
    drawn : shapely geometry
        The drawn line(s) or polygon, EPSG:4490.
    boundaries : sequence of shapely geometries
        Unit polygons (or lines, e.g. street centre lines) to snap to, EPSG:4490.
    tolerance_m : float
        How far (metres) a vertex may be moved.
    projected : CRS
        The metric CRS distances are measured in.

    Examples
    --------
    >>> from shapely import box, LineString
    >>> from gis.crs import local_projected_crs
    >>> unit = box(118.60, 24.90, 118.61, 24.91)
    >>> line = LineString([(118.599995, 24.905), (118.61001, 24.9050004)])
    >>> snapped = snap_drawing(line, [unit], tolerance_m=2.0,
    ...                        projected=local_projected_crs(118.6, 24.9))
    >>> [round(x, 7) for x in snapped.coords[0]]  # onto the west edge
    [118.6, 24.905]
    """
    if drawn.is_empty or tolerance_m <= 0 or not boundaries:
        return drawn
    lines = [
        g.boundary if g.geom_type in ("Polygon", "MultiPolygon") else g
        for g in boundaries
        if g is not None and not g.is_empty
    ]
    if not lines:
        return drawn
    to_metres = transformer(STORAGE_CRS, projected)
    vertices = np.unique(shapely.get_coordinates(lines), axis=0)
    coords = shapely.get_coordinates(drawn)
    snapped = coords.copy()
    done = np.zeros(len(coords), dtype=bool)

    # Vertices first: the planner aimed at a corner.
    vx, vy = to_metres.transform(vertices[:, 0], vertices[:, 1])
    cx, cy = to_metres.transform(coords[:, 0], coords[:, 1])
    tree = shapely.STRtree(shapely.points(vx, vy))
    hits = tree.query_nearest(shapely.points(cx, cy), max_distance=tolerance_m, all_matches=False)
    snapped[hits[0]] = vertices[hits[1]]
    done[hits[0]] = True

    # Then edges: the nearest point of the nearest edge, if close enough.
    segments = _segments(lines)
    if len(segments) and not done.all():
        tree_4490 = shapely.STRtree(segments)
        rest = np.flatnonzero(~done)
        points = shapely.points(coords[rest])
        nearest = tree_4490.query_nearest(points, all_matches=False)
        for i, s in zip(nearest[0], nearest[1], strict=True):
            segment = segments[s]
            point = points[i]
            on_edge = shapely.line_interpolate_point(
                segment, shapely.line_locate_point(segment, point)
            )
            ex, ey = to_metres.transform(on_edge.x, on_edge.y)
            if np.hypot(ex - cx[rest[i]], ey - cy[rest[i]]) <= tolerance_m:
                snapped[rest[i]] = (on_edge.x, on_edge.y)
    if np.array_equal(snapped, coords):
        return drawn
    iterator = iter(snapped)
    return shapely.transform(drawn, lambda xy: np.array([next(iterator) for _ in xy]))


def _segments(lines: Sequence[BaseGeometry]) -> np.ndarray:
    """Every two-point segment of ``lines`` (for a nearest-edge index)."""
    parts = [p for g in lines for p in shapely.get_parts(g)]
    rings = [shapely.get_coordinates(p) for p in parts]
    pieces = [np.stack([ring[:-1], ring[1:]], axis=1) for ring in rings if len(ring) >= 2]
    if not pieces:
        return np.array([], dtype=object)
    pairs = np.concatenate(pieces)
    return np.asarray(shapely.linestrings(pairs), dtype=object)
