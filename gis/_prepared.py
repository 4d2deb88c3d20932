"""Prepared geometries that threads share, and prepared copies that they do not.

GEOS prepared geometries are not thread-safe (libgeos/geos#825): a prepared
polygon builds its point locator and its segment index lazily, on first use,
and its polygon–polygon predicates keep state in the segment intersector.
Our geometries live in caches read by several threads at once: request
threads of the API and the background builds (the locate indexes, the
stored side of the edit previews). Two rules follow:

- a geometry prepared once and then shared (a jurisdiction's area, the
  locate index's units) is only asked *point* questions, and its point
  locator is built before it is shared (:func:`prepare_for_points`);
- a polygon predicate on cached geometries (``covers`` of footprints by
  units) prepares private copies (:func:`prepared_copies`), never the
  shared objects in place.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import shapely
from numpy.typing import NDArray

G = TypeVar("G", shapely.Geometry, NDArray[np.object_])


def prepare_for_points(geometries: G) -> G:
    """Prepare geometries in place for point tests from many threads.

    The point locator of each prepared polygon is built here, by one point
    test, so that threads sharing the geometries afterwards only read it.

    Parameters
    ----------
    geometries : Geometry or array of Geometry
        Prepared in place; empty and missing geometries are left alone.

    Returns
    -------
    Geometry or array of Geometry
        ``geometries`` itself.

    Examples
    --------
    >>> import shapely
    >>> square = prepare_for_points(shapely.box(0, 0, 1, 1))
    >>> bool(shapely.is_prepared(square)), bool(shapely.intersects_xy(square, 0.5, 0.5))
    (True, True)
    """
    shapely.prepare(geometries)
    flat = np.atleast_1d(np.asarray(geometries, dtype=object))
    solid = flat[~(shapely.is_missing(flat) | shapely.is_empty(flat))]
    # Any point of each does: the first test builds the locator's whole index.
    xy, which = shapely.get_coordinates(solid, return_index=True)
    first = np.searchsorted(which, np.arange(len(solid)))
    shapely.intersects_xy(solid, xy[first, 0], xy[first, 1])
    return geometries


def prepared_copies(geometries: NDArray[np.object_]) -> NDArray[np.object_]:
    """Return prepared copies of ``geometries``, for polygon predicates in one thread.

    The copies are exact (WKB keeps every coordinate's bits) and belong to
    the caller: preparing and using them cannot race with another thread
    using the originals.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> units = np.array([shapely.box(0, 0, 2, 2)], dtype=object)
    >>> mine = prepared_copies(units)
    >>> mine[0] is units[0], bool(shapely.is_prepared(mine[0])), bool(shapely.is_prepared(units[0]))
    (False, True, False)
    >>> bool(shapely.equals_identical(mine[0], units[0]))
    True
    """
    copies = np.asarray(shapely.from_wkb(shapely.to_wkb(geometries)), dtype=object)
    shapely.prepare(copies)
    return copies
