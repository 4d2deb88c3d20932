"""Faces: the one noding every operation re-assigns ground with.

The boundaries of the units an edit touches and the planner's lines are
noded together once, on the precision grid (GEOS snap-rounding), and
polygonized into faces. Every new unit is the coverage union of the faces it
gets, so the two sides of every new edge are built from the very same
segments: shared edges are bit-identical by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.edits._model import GRID_SIZE

__all__ = ["Faces", "union_faces"]


class Faces:
    """The faces of some units' ground cut by drawn lines.

    Attributes
    ----------
    geometries : ndarray of Polygon
        The faces, EPSG:4490, on the precision grid.
    owner : ndarray of str
        The unit each face lies in.
    points : ndarray of Point
        A point inside each face (for labelling).
    """

    def __init__(
        self,
        units: Mapping[str, BaseGeometry],
        lines: Sequence[BaseGeometry] = (),
    ) -> None:
        codes = list(units)
        geometries = np.array([units[c] for c in codes], dtype=object)
        linework = [shapely.boundary(g) for g in geometries] + [
            g.boundary if g.geom_type in ("Polygon", "MultiPolygon") else g for g in lines
        ]
        noded = shapely.union_all(np.array(linework, dtype=object), grid_size=GRID_SIZE)
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
        faces = faces[~shapely.is_empty(faces) & (shapely.area(faces) > 0)]
        points = shapely.point_on_surface(faces)
        owner = np.full(len(faces), None, dtype=object)
        tree = shapely.STRtree(geometries)
        face_index, unit_index = tree.query(points, predicate="within")
        owner[face_index] = np.array(codes, dtype=object)[unit_index]
        # A thin face along a boundary may have its inner point on the edge:
        # it belongs to the unit holding most of its area.
        for i in np.flatnonzero(owner == None):  # noqa: E711 (elementwise)
            candidates = tree.query(faces[i], predicate="intersects")
            shares = [
                float(shapely.area(shapely.intersection(faces[i], geometries[c])))
                for c in candidates
            ]
            if shares and max(shares) > 0.5 * float(shapely.area(faces[i])):
                owner[i] = codes[int(candidates[int(np.argmax(shares))])]
        inside = owner != None  # noqa: E711 (elementwise)
        self.geometries = faces[inside]
        self.owner = owner[inside]
        self.points = points[inside]

    def within(self, region: BaseGeometry) -> np.ndarray:
        """Return a mask of the faces lying in ``region``."""
        if region is None or region.is_empty:
            return np.zeros(len(self.geometries), dtype=bool)
        shapely.prepare(region)
        return np.asarray(shapely.within(self.points, region), dtype=bool)


def union_faces(faces: np.ndarray) -> BaseGeometry:
    """Dissolve faces of one noding into one (Multi)Polygon, keeping every vertex."""
    if len(faces) == 0:
        return shapely.MultiPolygon()
    if len(faces) == 1:
        return faces[0]
    return shapely.coverage_union_all(faces)
