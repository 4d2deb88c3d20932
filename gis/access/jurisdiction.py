"""Jurisdiction: which units, places and answers a caller may see — one home for the rules.

A caller is bound to units (``layer:code``). Each bound unit gives

- **wholly**: itself and every unit below it in its own layer — everything
  of them (codes, names, boundaries, places, households, staff, workload);
- **by area**: the units of every *other* layer that overlap it by more than
  a sliver (area and width tolerances, measured in a projected CRS; units
  that merely touch do not count) — their codes, names and their boundaries
  clipped to the caller's area; their places only inside that area.

Not its siblings, not its parents in its own layer. The caller's **area** is
the union of the bound units. Anything outside answers exactly like
something that does not exist (existence does not leak); a point or address
outside the area is ``outside_jurisdiction``, whatever lies there.
Jurisdictions are resolved on the current boundaries; an older version of a
unit is visible when its code is.

Examples
--------
Community ``C`` has grids ``A`` and ``B``; grid ``A`` has micro-grid ``A1``::

    C ── A ── A1
     └── B

>>> tree = {"governance": [("C", None), ("A", "C"), ("B", "C"), ("A1", "A")]}
>>> mine = Jurisdiction.resolve(units=("governance:A",), trees=tree)
>>> sorted(mine.codes("governance")), mine.sees("governance", "B")
(['A', 'A1'], False)
>>> Jurisdiction.resolve(units=("governance:C",), trees=tree).whole  # C is everything
frozenset({'governance'})
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis._prepared import prepare_for_points
from gis.access.principal import Principal
from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.errors import NotFoundError
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.times import parse_time

if TYPE_CHECKING:  # the locate service's indexes (imported for typing only: no cycle)
    from gis.locate._indexes import IndexCache, IndexSet

__all__ = [
    "OVERLAP_AREA_M2",
    "OVERLAP_WIDTH_M",
    "Jurisdiction",
    "JurisdictionResolver",
    "LayerShapes",
]

Tree = list[tuple[str, str | None]]

#: Overlaps of two layers no larger than this (m²), or no wider than
#: :data:`OVERLAP_WIDTH_M`, are slivers of independently drawn edges, not
#: shared ground (the validation tolerances' defaults).
OVERLAP_AREA_M2 = 1.0
OVERLAP_WIDTH_M = 0.05


@dataclass(frozen=True)
class LayerShapes:
    """The current units of one layer, for overlaps: codes and geometries (both CRSs)."""

    codes: NDArray[np.object_]
    storage: NDArray[np.object_] | None  # EPSG:4490 (None: back-projected from ``metric``)
    metric: NDArray[np.object_]  # the resolver's projected CRS (metres)
    to_storage: Any = None  # pyproj Transformer metric → EPSG:4490, when ``storage`` is None

    @classmethod
    def from_frame(cls, frame: gpd.GeoDataFrame, projected: object) -> LayerShapes:
        """Build from a units frame (``code``, geometry in EPSG:4490)."""
        return cls(
            codes=frame["code"].to_numpy(dtype=object),
            storage=np.asarray(frame.geometry.values, dtype=object),
            metric=np.asarray(frame.to_crs(projected).geometry.values, dtype=object),
        )


@dataclass(frozen=True)
class Jurisdiction:
    """What one caller may see (everything when ``unrestricted``).

    Attributes
    ----------
    unrestricted : bool
        Administrators: everything, everywhere.
    wholly : mapping of layer to codes
        Units seen entirely: the bound units and everything below them.
    overlapping : mapping of layer to codes
        Units of other layers overlapping the area: codes, names, clipped
        boundaries, places inside the area.
    area : shapely geometry or None
        The union of the bound units (EPSG:4490); None when unrestricted or
        unknown (then no point is inside).
    whole : frozenset of str
        Layers whose every unit is seen entirely.
    """

    unrestricted: bool
    wholly: Mapping[str, frozenset[str]] = field(default_factory=dict)
    overlapping: Mapping[str, frozenset[str]] = field(default_factory=dict)
    area: BaseGeometry | None = None
    whole: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Jurisdiction:
        """Return the jurisdiction of an administrator."""
        return cls(unrestricted=True)

    @classmethod
    def resolve(
        cls,
        *,
        units: Iterable[str],
        trees: Mapping[str, Tree],
        shapes: Mapping[str, LayerShapes] | None = None,
        overlap_area_m2: float = OVERLAP_AREA_M2,
        overlap_width_m: float = OVERLAP_WIDTH_M,
    ) -> Jurisdiction:
        """Resolve ``layer:code`` references over the layers' trees (and shapes, for areas).

        Without ``shapes`` only the downward closure is computed (no area,
        no other layers).
        """
        roots: dict[str, set[str]] = {}
        for ref in units:
            layer, _, code = ref.partition(":")
            roots.setdefault(layer, set()).add(code)
        wholly = {}
        whole = set()
        for layer, codes in roots.items():
            seen, known = _closure(codes, trees.get(layer, []))
            wholly[layer] = frozenset(seen)
            if seen == known:
                whole.add(layer)
        overlapping: dict[str, frozenset[str]] = {}
        area = None
        if shapes is not None:
            overlapping, area = _overlaps(
                roots, wholly, shapes, area_m2=overlap_area_m2, width_m=overlap_width_m
            )
        return cls(
            unrestricted=False,
            wholly=wholly,
            overlapping=overlapping,
            area=area,
            whole=frozenset(whole),
        )

    # -- units ----------------------------------------------------------------

    def codes(self, layer: str) -> frozenset[str] | None:
        """Return the codes of a layer whose code and name are visible; None means all."""
        if self.unrestricted:
            return None
        return self.wholly.get(layer, frozenset()) | self.overlapping.get(layer, frozenset())

    def wholly_codes(self, layer: str) -> frozenset[str] | None:
        """Return the codes of a layer seen entirely (places, staff, workload); None: all."""
        if self.unrestricted:
            return None
        return self.wholly.get(layer, frozenset())

    def layers(self) -> frozenset[str]:
        """Return the layers with any visible unit (meaningless when unrestricted)."""
        return frozenset(self.wholly) | frozenset(self.overlapping)

    def sees(self, layer: str, code: str | None) -> bool:
        """Whether unit ``code`` of ``layer`` is visible (its code and name)."""
        if self.unrestricted:
            return True
        return code is not None and (
            code in self.wholly.get(layer, ()) or code in self.overlapping.get(layer, ())
        )

    def sees_wholly(self, layer: str, code: str | None) -> bool:
        """Whether unit ``code`` of ``layer`` is seen entirely (its staff, all its places)."""
        if self.unrestricted:
            return True
        return code is not None and code in self.wholly.get(layer, ())

    def sees_code(self, code: str, *, layer: str | None = None) -> bool:
        """Whether ``code`` is visible in ``layer`` (any layer when None): no database access.

        Checked *before* anything is loaded, so that a hidden unit costs the
        same time as a missing one (no timing oracle).
        """
        if self.unrestricted:
            return True
        names = [layer] if layer is not None else list(self.layers())
        return any(self.sees(name, code) for name in names)

    def require(self, layer: str, code: str, *, message: str | None = None) -> None:
        """Raise the NotFoundError a missing unit raises, unless seen entirely."""
        if not self.sees_wholly(layer, code):
            raise NotFoundError(message or f"no unit {code!r} in layer {layer!r}", field="code")

    def clip(self, layer: str, codes: Iterable[str], geometries: object) -> NDArray[np.object_]:
        """Cut the boundaries of units not seen entirely to the caller's area (EPSG:4490)."""
        result = np.asarray(geometries, dtype=object).copy()
        if self.unrestricted:
            return result
        partial = np.array([not self.sees_wholly(layer, c) for c in codes], dtype=bool)
        if partial.any():
            if self.area is None:
                result[partial] = shapely.Polygon()
            else:
                result[partial] = shapely.intersection(result[partial], self.area)
        return result

    # -- places ---------------------------------------------------------------

    def covers(self, lon: float, lat: float) -> bool:
        """Whether a CGCS2000 point lies in the caller's area (its edge included)."""
        if self.unrestricted:
            return True
        if self.area is None or lon != lon or lat != lat:
            return False
        # The ufunc itself: the public wrapper's argument handling costs more
        # than the (prepared) test of one point, on every dispatch request.
        return bool(shapely.lib.intersects_xy(self.area, lon, lat))

    def covers_points(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> NDArray[np.bool_] | None:
        """Which CGCS2000 points lie in the area (None: all of them, unrestricted)."""
        if self.unrestricted:
            return None
        if self.area is None:
            return np.zeros(len(lon), dtype=bool)
        finite = np.isfinite(lon) & np.isfinite(lat)
        inside = np.zeros(len(lon), dtype=bool)
        inside[finite] = shapely.intersects_xy(self.area, lon[finite], lat[finite])
        return inside


def _closure(codes: set[str], tree: Tree) -> tuple[set[str], set[str]]:
    # The known codes among ``codes`` and every unit below them; all known codes.
    children: dict[str, list[str]] = {}
    known = set()
    for code, parent in tree:
        known.add(code)
        if parent is not None:
            children.setdefault(parent, []).append(code)
    seen = {c for c in codes if c in known}
    stack = list(seen)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen, known


def _overlaps(
    roots: Mapping[str, set[str]],
    wholly: Mapping[str, frozenset[str]],
    shapes: Mapping[str, LayerShapes],
    *,
    area_m2: float,
    width_m: float,
) -> tuple[dict[str, frozenset[str]], BaseGeometry | None]:
    # Units of other layers sharing more than a sliver of ground with a bound unit.
    found: dict[str, set[str]] = {}
    pieces = []
    for layer, codes in roots.items():
        own = shapes.get(layer)
        if own is None:
            continue
        rows = np.flatnonzero(np.isin(own.codes, list(codes)))
        if len(rows) == 0:
            continue
        bound = shapely.union_all(own.metric[rows])
        if own.storage is not None:
            pieces.append(shapely.union_all(own.storage[rows]))
        else:
            pieces.append(_back_projected(bound, own.to_storage))
        for other, theirs in shapes.items():
            if other == layer or len(theirs.codes) == 0:
                continue
            hits = np.flatnonzero(shapely.intersects(theirs.metric, bound))
            if len(hits) == 0:
                continue
            shared = shapely.intersection(theirs.metric[hits], bound)
            big = shapely.area(shared) > area_m2
            # A long sliver has area but no width: shrink it by half the width.
            wide = ~shapely.is_empty(shapely.buffer(shared, -width_m / 2))
            keep = theirs.codes[hits[big & wide]]
            found.setdefault(other, set()).update(str(c) for c in keep)
    overlapping = {
        layer: frozenset(codes - wholly.get(layer, frozenset())) for layer, codes in found.items()
    }
    if not pieces:
        return overlapping, None
    area = shapely.union_all(pieces)
    # Shared by request threads for point tests: its locator is built here.
    prepare_for_points(area)
    return overlapping, area


def _back_projected(geometry: BaseGeometry, to_storage: Any) -> BaseGeometry:
    # Metres back to CGCS2000 lon/lat (always_xy): the area of a point test.
    def transform(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = to_storage.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, transform)


class JurisdictionResolver:
    """Resolves callers' jurisdictions, cached until the boundaries change.

    Parameters
    ----------
    db : Database
        The registry.
    clock : RevisionClock
        The shared change counters (boundaries, and the version window).
    indexes : IndexCache, optional
        The locate service's indexes of the boundaries valid now: their
        codes, parents and metric geometries are used instead of loading the
        units again. While they are rebuilt in the background after a change
        (a served application), the units are read instead: a jurisdiction
        never lags behind a change.
    """

    def __init__(
        self, db: Database, *, clock: RevisionClock, indexes: IndexCache | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._indexes = indexes
        self._current: IndexSet | None = None
        self._lock = threading.Lock()
        self._revision: object = None
        self._trees: dict[str, Tree] = {}
        self._shapes: dict[str, LayerShapes] | None = None
        self._found: dict[tuple[str, ...], Jurisdiction] = {}

    def jurisdiction(self, principal: Principal) -> Jurisdiction:
        """Return the jurisdiction of ``principal``."""
        if principal.unrestricted:
            return _EVERYTHING
        with self._lock:
            self._refresh_revision()
            key = tuple(sorted(principal.units))
            found = self._found.get(key)
            if found is None:
                shapes = self._layer_shapes()
                found = Jurisdiction.resolve(units=key, trees=self._trees, shapes=shapes)
                if len(self._found) > 10_000:
                    self._found.clear()
                self._found[key] = found
            return found

    def _refresh_revision(self) -> None:
        revision: object
        current = self._indexes.get() if self._indexes is not None else None
        if current is not None and current.revision == self._clock.current().boundaries:
            revision = (current.revision, current.start, id(current))
            self._current = current
        else:
            # No indexes, or they are still being rebuilt after a change (a
            # served application answers locate requests from the previous
            # set meanwhile): read the units, so that a unit just made is
            # seen and one just retired is not, from the change on.
            revision = self._clock.current().current_boundaries
            self._current = None
        if revision != self._revision:
            self._revision = revision
            self._trees.clear()
            self._shapes = None
            self._found.clear()

    def _layer_shapes(self) -> dict[str, LayerShapes]:
        # Every current unit of every layer, once per boundaries revision.
        if self._shapes is not None:
            return self._shapes
        if self._current is not None:
            self._shapes, self._trees = _from_indexes(self._current)
            return self._shapes
        when = parse_time(None)
        frames = {}
        with self._db.reader() as repo:
            for summary in repo.list_layers(at=when):
                frames[summary.name] = repo.units_frame(layer=summary.name, at=when)
        self._trees = {
            name: [
                (str(c), None if p is None or p != p else str(p))
                for c, p in zip(frame["code"], frame["parent_code"], strict=True)
            ]
            for name, frame in frames.items()
        }
        bounds = [frame.total_bounds for frame in frames.values() if len(frame)]
        if bounds:
            box = np.array(bounds)
            lon = (box[:, 0].min() + box[:, 2].max()) / 2
            lat = (box[:, 1].min() + box[:, 3].max()) / 2
            projected = local_projected_crs(float(lon), float(lat))
        else:
            projected = STORAGE_CRS
        self._shapes = {
            name: LayerShapes.from_frame(frame, projected) for name, frame in frames.items()
        }
        return self._shapes


def _from_indexes(indexes: IndexSet) -> tuple[dict[str, LayerShapes], dict[str, Tree]]:
    # Every level of every layer, from the locate indexes (no database work).
    to_storage = transformer(indexes.projected, STORAGE_CRS)
    shapes: dict[str, LayerShapes] = {}
    trees: dict[str, Tree] = {}
    for layer, levels in indexes.layers().items():
        shapes[layer] = LayerShapes(
            codes=np.concatenate([level.codes for level in levels]),
            storage=None,
            metric=np.concatenate([level.metric for level in levels]),
            to_storage=to_storage,
        )
        trees[layer] = [
            (str(code), None if parent is None or parent != parent else str(parent))
            for level in levels
            for code, parent in zip(level.codes, level.parents, strict=True)
        ]
    return shapes, trees


_EVERYTHING = Jurisdiction.everything()
