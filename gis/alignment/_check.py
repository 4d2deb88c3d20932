"""The "same grid" (同格) check: every A unit in one B unit, and parents that nest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.alignment._noise import Noise, NoiseTolerance, classify
from gis.alignment._shares import Overlaps, Weights, overlaps
from gis.alignment._units import (
    Floats,
    Indices,
    Layer,
    Objects,
    Reuse,
    as_layer,
    lonlat,
    metric_for,
    parent_labels,
    polygonal,
)
from gis.validate import DatumOffset, convert_from_datum, detect_datum_offset

__all__ = ["KINDS", "AlignmentReport", "Violation", "check_alignment", "in_cgcs2000"]

#: Every kind of violation, in report order. A = grid, B = beat, A parent =
#: community, B parent = station; the functions work for any two layers.
KINDS = (
    "grid_split_across_beats",
    "grid_outside_beats",
    "beat_not_union_of_grids",
    "beat_crosses_community",
    "station_cuts_community",
)


@dataclass(frozen=True)
class Violation:
    """One place where the two layers do not nest, located and measured.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    codes : tuple of str
        The units involved, the offending one first, then the units it cuts or
        strays into (for ``station_cuts_community``: the community, stations,
        stray grids, then beats).
    shares : dict of str to float
        Area shares, by code: of the grid in each beat (``grid_*``), of each
        cut grid inside the beat (``beat_not_union_of_grids``), of each
        community inside the beat (``beat_crosses_community``; 1.0 for whole
        communities), of the community in each station (``station_cuts_community``).
    lon, lat : float or None
        A CGCS2000 point on the faulty ground.
    area_m2 : float
        Area of the faulty ground (what would have to change hands), in m².
    message : str
        What is wrong, for people.
    households : float or None
        Households on the faulty ground, when weights were given.
    household_shares : dict of str to float, or None
        As ``shares``, by households.
    a_codes, b_codes, a_parent_codes, b_parent_codes : tuple of str
        The codes by role: the offending and cut grids, the beats, the
        communities cut or strayed into, the stations.
    geometry : Geometry or None
        The faulty ground in EPSG:4490, for maps (not in the JSON).
    """

    kind: str
    codes: tuple[str, ...]
    shares: dict[str, float]
    lon: float | None
    lat: float | None
    area_m2: float
    message: str
    households: float | None = None
    household_shares: dict[str, float] | None = None
    a_codes: tuple[str, ...] = ()
    b_codes: tuple[str, ...] = ()
    a_parent_codes: tuple[str, ...] = ()
    b_parent_codes: tuple[str, ...] = ()
    geometry: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the violation as plain JSON types (without the geometry)."""
        return {
            "kind": self.kind,
            "codes": list(self.codes),
            "a_codes": list(self.a_codes),
            "b_codes": list(self.b_codes),
            "a_parent_codes": list(self.a_parent_codes),
            "b_parent_codes": list(self.b_parent_codes),
            "shares": {k: round(v, 6) for k, v in self.shares.items()},
            "household_shares": None
            if self.household_shares is None
            else {k: round(v, 6) for k, v in self.household_shares.items()},
            "households": None if self.households is None else round(self.households, 3),
            "lon": self.lon,
            "lat": self.lat,
            "area_m2": round(self.area_m2, 3),
            "message": self.message,
        }


@dataclass
class AlignmentReport:
    """The outcome of :func:`check_alignment`.

    Attributes
    ----------
    violations : list of Violation
        Sorted by kind (in :data:`KINDS` order) then codes.
    shares : DataFrame
        The :func:`shares` frame of the two layers (slivers included).
    checked : tuple of str
        The kinds that could be checked (parent rules need parent data).
    slivers : int
        Overlaps and uncovered remainders below the tolerances: ignored, counted.
    sliver_area_m2 : float
        Their total area.
    a_count, b_count : int
        Units in each layer.
    tolerance_share, tolerance_m2 : float
        The tolerances used.
    noise : list of Noise
        Boundary noise (:mod:`gis.alignment._noise`): pieces over the sliver
        tolerances but thin or light, per pair of units, with area and width.
    noise_tolerance : NoiseTolerance
        The noise thresholds used.
    datum_offset : DatumOffset or None
        When layer B as a whole is offset from layer A by the GCJ-02 or BD-09
        shift of the place: the measured offset. The violations are then
        those of B converted back to CGCS2000 (``datum_offset.converted``).
    stale : list of dict
        Units of B that refer to units of A (or its parents) that are no
        longer valid: codes that do not exist, or edges of an earlier version.
    """

    violations: list[Violation]
    shares: pd.DataFrame
    checked: tuple[str, ...]
    slivers: int = 0
    sliver_area_m2: float = 0.0
    a_count: int = 0
    b_count: int = 0
    tolerance_share: float = 0.001
    tolerance_m2: float = 1.0
    noise: list[Noise] = field(default_factory=list)
    noise_tolerance: NoiseTolerance = field(default_factory=NoiseTolerance)
    datum_offset: DatumOffset | None = None
    stale: list[dict[str, Any]] = field(default_factory=list)

    @property
    def aligned(self) -> bool:
        """Whether no violation, datum offset or stale reference was found."""
        return not self.violations and self.datum_offset is None and not self.stale

    def counts(self) -> dict[str, int]:
        """Count the violations of each kind (kinds without any are left out)."""
        counted: dict[str, int] = {}
        for violation in self.violations:
            counted[violation.kind] = counted.get(violation.kind, 0) + 1
        return counted

    def to_dict(self, *, include_shares: bool = False) -> dict[str, Any]:
        """Return the report as plain JSON types.

        Parameters
        ----------
        include_shares : bool, default False
            Add the shares of every A unit that is not wholly in one B unit
            (the rows with ``whole`` false), as records.
        """
        out: dict[str, Any] = {
            "aligned": self.aligned,
            "checked": list(self.checked),
            "counts": self.counts(),
            "violations": [v.to_dict() for v in self.violations],
            "slivers": {"count": self.slivers, "area_m2": round(self.sliver_area_m2, 3)},
            "a_units": self.a_count,
            "b_units": self.b_count,
            "tolerance": {"share": self.tolerance_share, "m2": self.tolerance_m2},
            "noise": [n.to_dict() for n in self.noise],
            "noise_summary": {
                "count": len(self.noise),
                "area_m2": round(sum(n.area_m2 for n in self.noise), 3),
                "max_width_m": round(max((n.width_m for n in self.noise), default=0.0), 3),
            },
            "noise_tolerance": self.noise_tolerance.to_dict(),
            "datum_offset": None if self.datum_offset is None else self.datum_offset.to_dict(),
            "stale": list(self.stale),
        }
        if include_shares:
            partial = self.shares[~self.shares["whole"]]
            out["shares"] = partial.drop(columns="whole").round(6).to_dict("records")
        return out


def check_alignment(
    a_units: gpd.GeoDataFrame | Layer,
    b_units: gpd.GeoDataFrame | Layer,
    *,
    a_parents: gpd.GeoDataFrame | None = None,
    b_parents: gpd.GeoDataFrame | None = None,
    weights: Weights = None,
    weight_column: str | None = None,
    tolerance_share: float = 0.001,
    tolerance_m2: float = 1.0,
    noise: NoiseTolerance | None = None,
    detect_datum: bool = True,
    wanted: Iterable[str] | None = None,
    reuse: Reuse | None = None,
) -> AlignmentReport:
    """Check that layer A nests in layer B (同格): every grid in one beat, beats nest with parents.

    Parameters
    ----------
    a_units, b_units : GeoDataFrame or Layer
        The two layers, e.g. governance grids and police beats, each with a
        unique ``code``, optionally ``parent_code``, and a CRS. A
        :class:`~gis.alignment._units.Layer` (from ``as_layer``) is taken as
        it is: one layer checked against several others is converted once.
    a_parents : GeoDataFrame, optional
        The parents of A (e.g. communities). A grid's community is the one its
        ``parent_code`` names, else the one holding it. Without this frame,
        ``a_units.parent_code`` alone is used, when present.
    b_parents : GeoDataFrame, optional
        The parents of B (e.g. police stations).
    weights : GeoDataFrame or str, optional
        Households, as for :func:`shares`; adds household figures.
    weight_column : str, optional
        The count column of a ``weights`` frame.
    tolerance_share, tolerance_m2 : float
        A piece of ground counts only if it is at least ``tolerance_m2`` m²
        **and** at least ``tolerance_share`` of the unit it belongs to (the A
        unit, or the community for station checks). Smaller pieces are
        slivers: ignored, but counted in the report.
    noise : NoiseTolerance, optional
        Pieces over those tolerances that are thin (under ``width_m`` wide) or
        light (under ``household_share`` of the grid's households and
        ``area_share`` of its area) are boundary noise: listed in
        ``report.noise`` per pair of units, not violations. Default
        :data:`DEFAULT_NOISE` (20 m, 2 %, 15 %); :data:`NO_NOISE` turns it off.
    detect_datum : bool, default True
        Look for a whole-layer GCJ-02/BD-09 offset of B from A. When found,
        it is reported (``report.datum_offset``) and the violations are those
        of B converted back to CGCS2000, not the hundreds the offset makes.
    wanted : iterable of str, optional
        Only the violations naming one of these codes are wanted (an edit's
        preview looks at the units it touches): those are the same as without
        it, the others are not made, and the ground outside the other layer
        is examined only for the units that can change them (``noise`` and
        ``slivers`` are then partial).
    reuse : Reuse, optional
        Projections, intersections and uncovered ground shared with other
        checks of the same geometry objects (an edit's preview checks before
        and after it): the same answers, the shared work done once.

    Returns
    -------
    AlignmentReport
        Violations of these kinds (see :data:`KINDS`):

        - ``grid_split_across_beats``: a grid in several beats;
        - ``grid_outside_beats``: part of a grid in no beat;
        - ``beat_not_union_of_grids``: a beat whose boundary cuts grids
          (named), or holding ground in no grid;
        - ``beat_crosses_community`` (needs community data): a beat that is
          neither inside one community nor a union of whole communities; the
          grids of the communities it holds only part of are named (when it
          holds no whole community, the one it holds most of is its home);
        - ``station_cuts_community`` (needs both parent layers): a community in
          several stations; the grids and beats outside its main station are
          named.

    Examples
    --------
    Two grids, one of them split by the beat boundary::

        +-----+--+--+
        | g1  | g2  |     beat b1 = g1 + west part of g2
        +-----+--+--+     beat b2 = east part of g2
        |  b1    |b2|

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> grids = gpd.GeoDataFrame({"code": ["g1", "g2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.601, 24.901), box(118.601, 24.900, 118.602, 24.901)])
    >>> beats = gpd.GeoDataFrame({"code": ["b1", "b2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.6017, 24.901),
    ...               box(118.6017, 24.900, 118.602, 24.901)])
    >>> report = check_alignment(grids, beats)
    >>> report.aligned
    False
    >>> [(v.kind, v.codes) for v in report.violations]  # doctest: +NORMALIZE_WHITESPACE
    [('grid_split_across_beats', ('g2', 'b1', 'b2')),
     ('beat_not_union_of_grids', ('b1', 'g2')),
     ('beat_not_union_of_grids', ('b2', 'g2'))]
    >>> print(report.violations[0].message)
    grid g2 is split across 2 beats: b1 70.0%, b2 30.0% of its area
    """
    a = a_units if isinstance(a_units, Layer) else as_layer(a_units, role="a_units")
    b = b_units if isinstance(b_units, Layer) else as_layer(b_units, role="b_units")
    ap = as_layer(a_parents, role="a_parents") if a_parents is not None else None
    bp = as_layer(b_parents, role="b_parents") if b_parents is not None else None
    offset = detect_datum_offset(a.geoms, b.geoms) if detect_datum else None
    if offset is not None:
        b, bp = in_cgcs2000(b, offset), None if bp is None else in_cgcs2000(bp, offset)
    metric = metric_for(a.geoms, b.geoms)
    ov = overlaps(a, b, weights=weights, weight_column=weight_column, metric=metric, reuse=reuse)
    point_weights = weights if isinstance(weights, gpd.GeoDataFrame) else None
    parents_ov = (
        overlaps(ap, bp, weights=point_weights, weight_column=weight_column, metric=metric)
        if ap is not None and bp is not None
        else None
    )
    report = check_overlaps(
        ov,
        a_labels=parent_labels(a, ap),
        b_labels=parent_labels(b, bp),
        parents=parents_ov,
        tolerance_share=tolerance_share,
        tolerance_m2=tolerance_m2,
        noise=noise,
        wanted=None if wanted is None else frozenset(str(c) for c in wanted),
    )
    report.datum_offset = offset
    return report


def in_cgcs2000(layer: Layer, offset: DatumOffset | None) -> Layer:
    """Return ``layer`` converted back from the datum it was drawn in (unchanged without one)."""
    if offset is None:
        return layer
    return replace(layer, geoms=convert_from_datum(layer.geoms, offset.datum))


@dataclass
class _Found:
    violations: list[Violation] = field(default_factory=list)
    slivers: int = 0
    sliver_area_m2: float = 0.0
    wanted: frozenset[str] | None = None

    def named(self, codes: Iterable[str]) -> bool:
        """Whether a violation naming ``codes`` is wanted (all are, without ``wanted``)."""
        return self.wanted is None or not self.wanted.isdisjoint(codes)

    def sliver(self, areas: Floats) -> None:
        self.slivers += len(areas)
        self.sliver_area_m2 += float(np.sum(areas))


def check_overlaps(
    ov: Overlaps,
    *,
    a_labels: Objects | None,
    b_labels: Objects | None,
    parents: Overlaps | None,
    tolerance_share: float,
    tolerance_m2: float,
    noise: NoiseTolerance | None = None,
    wanted: frozenset[str] | None = None,
) -> AlignmentReport:
    """Check computed overlaps (see :func:`check_alignment`); shared with the proposal."""
    found = _Found(wanted=wanted)
    noise = noise or NoiseTolerance()
    a_mask, b_mask = _examined(ov, wanted)
    sorted_ = classify(
        ov,
        tolerance_share=tolerance_share,
        tolerance_m2=tolerance_m2,
        noise=noise,
        a_examined=a_mask,
        b_examined=b_mask,
    )
    found.sliver(np.asarray(sorted_.sliver_areas, dtype=float))
    rows = sorted_.rows
    a_out, a_out_sig = sorted_.a_out, sorted_.a_out_real
    b_out, b_out_sig = sorted_.b_out, sorted_.b_out_real
    pieces_per_a = np.bincount(ov.ai[rows], minlength=len(ov.a))
    cut = (pieces_per_a >= 2) | ((pieces_per_a >= 1) & a_out_sig)
    _grids_split(ov, rows, pieces_per_a, found)
    _grids_outside(ov, rows, a_out, a_out_sig, found)
    _beats_cutting(ov, rows, cut, b_out, b_out_sig, found)
    noisy = list(sorted_.noise)
    checked = list(KINDS[:3])
    if a_labels is not None:
        checked.append("beat_crosses_community")
        _beats_crossing(ov, rows, a_labels, found)
    if parents is not None:
        checked.append("station_cuts_community")
        noisy += _stations_cutting(
            ov, rows, a_labels, b_labels, parents, tolerance_share, tolerance_m2, noise, found
        )

    if wanted is not None:
        found.violations = [v for v in found.violations if found.named(v.codes)]
    found.violations.sort(key=lambda v: (KINDS.index(v.kind), v.codes))
    return AlignmentReport(
        violations=found.violations,
        shares=ov.frame(),
        checked=tuple(checked),
        slivers=found.slivers,
        sliver_area_m2=found.sliver_area_m2,
        a_count=len(ov.a),
        b_count=len(ov.b),
        tolerance_share=tolerance_share,
        tolerance_m2=tolerance_m2,
        noise=noisy,
        noise_tolerance=noise,
    )


def _examined(
    ov: Overlaps, wanted: frozenset[str] | None
) -> tuple[NDArray[np.bool_] | None, NDArray[np.bool_] | None]:
    """Return the A and B units whose ground outside the other layer can change a wanted violation.

    A B unit's uncovered ground matters to the violations naming it or a unit
    it meets (it names the A units it cuts); an A unit's, to those naming it
    and to those of the B units it meets (whether it is cut). ``None``: all.
    """
    if wanted is None:
        return None, None
    a_named = np.fromiter((str(c) in wanted for c in ov.a.codes), dtype=bool, count=len(ov.a))
    b_named = np.fromiter((str(c) in wanted for c in ov.b.codes), dtype=bool, count=len(ov.b))
    b_mask = b_named.copy()
    b_mask[ov.bi[a_named[ov.ai]]] = True
    a_mask = a_named.copy()
    a_mask[ov.ai[b_mask[ov.bi]]] = True
    return a_mask, b_mask


def _grids_split(ov: Overlaps, rows: Indices, count: NDArray[np.int64], found: _Found) -> None:
    share, hh_share = ov.share, ov.household_share
    by_a = _group(ov.ai[rows], rows)
    for a in np.flatnonzero(count >= 2):
        pairs = by_a[int(a)]  # largest first: the first beat is the grid's main beat
        a_code = str(ov.a.codes[a])
        b_codes = tuple(str(ov.b.codes[ov.bi[p]]) for p in pairs)
        if not found.named((a_code, *b_codes)):
            continue
        stray = pairs[1:]
        listed = ", ".join(f"{c} {share[p]:.1%}" for c, p in zip(b_codes, pairs, strict=True))
        message = f"grid {a_code} is split across {len(pairs)} beats: {listed} of its area"
        if hh_share is not None and ov.households is not None:
            message += " (" + ", ".join(f"{hh_share[p]:.1%}" for p in pairs) + " of households)"
        found.violations.append(
            _violation(
                ov,
                "grid_split_across_beats",
                (a_code, *b_codes),
                {c: float(share[p]) for c, p in zip(b_codes, pairs, strict=True)},
                _household_shares(ov, b_codes, pairs),
                stray,
                message,
                a_codes=(a_code,),
                b_codes=b_codes,
            )
        )


def _grids_outside(
    ov: Overlaps, rows: Indices, a_out: Floats, out_sig: NDArray[np.bool_], found: _Found
) -> None:
    by_a = _group(ov.ai[rows], rows)
    for a in np.flatnonzero(out_sig):
        pairs = by_a.get(int(a), [])
        a_code = str(ov.a.codes[a])
        b_codes = tuple(str(ov.b.codes[ov.bi[p]]) for p in pairs)
        if not found.named((a_code, *b_codes)):
            continue
        inside = ov.pieces[ov.ai == a]
        ground = polygonal(shapely.difference(ov.a.geoms[a], shapely.union_all(inside)))
        lon, lat = lonlat(ground)
        fraction = a_out[a] / ov.a_area[a] if ov.a_area[a] > 0 else 1.0
        households = None
        if ov.households is not None and ov.a_households is not None:
            households = float(ov.a_households[a] - ov.households[ov.ai == a].sum())
        found.violations.append(
            Violation(
                kind="grid_outside_beats",
                codes=(a_code, *b_codes),
                shares={c: float(ov.share[p]) for c, p in zip(b_codes, pairs, strict=True)},
                household_shares=_household_shares(ov, b_codes, pairs),
                lon=lon,
                lat=lat,
                area_m2=float(a_out[a]),
                households=households,
                message=f"{fraction:.1%} of grid {a_code} ({a_out[a]:.0f} m²) is in no beat",
                a_codes=(a_code,),
                b_codes=b_codes,
                geometry=ground,
            )
        )


def _beats_cutting(
    ov: Overlaps,
    rows: Indices,
    cut: NDArray[np.bool_],
    b_out: Floats,
    out_sig: NDArray[np.bool_],
    found: _Found,
) -> None:
    cutting = rows[cut[ov.ai[rows]]]
    by_b = _group(ov.bi[cutting], cutting)
    for b in sorted(set(by_b) | {int(i) for i in np.flatnonzero(out_sig)}):
        pairs = sorted(by_b.get(b, []), key=lambda p: str(ov.a.codes[ov.ai[p]]))
        b_code = str(ov.b.codes[b])
        a_codes = tuple(str(ov.a.codes[ov.ai[p]]) for p in pairs)
        if not found.named((b_code, *a_codes)):
            continue
        parts = [f"beat {b_code}"]
        if pairs:
            listed = ", ".join(
                f"{c} ({ov.share[p]:.1%} inside)" for c, p in zip(a_codes, pairs, strict=True)
            )
            parts.append(f"cuts grid{'s' if len(pairs) > 1 else ''} {listed}")
        ground: list[BaseGeometry] = [polygonal(g) for g in ov.pieces[pairs]]
        area = float(ov.area[pairs].sum())
        if out_sig[b]:
            held = ov.pieces[ov.bi == b]
            ground.append(polygonal(shapely.difference(ov.b.geoms[b], shapely.union_all(held))))
            area += float(b_out[b])
            parts.append(f"{'and ' if pairs else ''}has {b_out[b]:.0f} m² in no grid")
        geometry = _union(ground)
        lon, lat = lonlat(geometry)
        found.violations.append(
            Violation(
                kind="beat_not_union_of_grids",
                codes=(b_code, *a_codes),
                shares={c: float(ov.share[p]) for c, p in zip(a_codes, pairs, strict=True)},
                household_shares=_household_shares(ov, a_codes, pairs),
                lon=lon,
                lat=lat,
                area_m2=area,
                households=_households(ov, pairs),
                message=" ".join(parts),
                a_codes=a_codes,
                b_codes=(b_code,),
                geometry=geometry,
            )
        )


def _beats_crossing(ov: Overlaps, rows: Indices, labels: Objects, found: _Found) -> None:
    known = rows[[labels[ov.ai[p]] is not None for p in rows]]
    beats_of: dict[str, set[int]] = defaultdict(set)
    for p in known:
        beats_of[labels[ov.ai[p]]].add(int(ov.bi[p]))
    community_area: dict[str, float] = defaultdict(float)
    for a, label in enumerate(labels):
        if label is not None:
            community_area[label] += float(ov.a_area[a])
    for b, pairs in sorted(_group(ov.bi[known], known).items()):
        by_community: dict[str, list[int]] = defaultdict(list)
        for p in pairs:
            by_community[labels[ov.ai[p]]].append(p)
        if len(by_community) < 2:
            continue
        whole = {c for c in by_community if beats_of[c] == {b}}
        partial = sorted(set(by_community) - whole)
        if not partial:
            continue  # a union of whole communities
        if not whole:
            # Neither inside one community nor made of whole ones: the beat's
            # home is the community it holds most of; the others stray in.
            home = max(partial, key=lambda c: (ov.area[by_community[c]].sum(), c))
            partial.remove(home)
        stray = sorted((p for c in partial for p in by_community[c]), key=lambda p: ov.ai[p])
        b_code = str(ov.b.codes[b])
        a_codes = tuple(str(ov.a.codes[ov.ai[p]]) for p in stray)
        if not found.named((b_code, *partial, *a_codes)):
            continue
        inside = {
            c: float(ov.area[ps].sum() / community_area[c]) if community_area[c] else 0.0
            for c, ps in sorted(by_community.items())
        }
        held = ", ".join(f"{c} {inside[c]:.1%}" for c in partial)
        others = ", ".join(sorted(set(by_community) - set(partial)))
        message = (
            f"beat {b_code} holds part of communit{'ies' if len(partial) > 1 else 'y'} "
            f"{held} besides {others}: grid{'s' if len(a_codes) > 1 else ''} "
            f"{', '.join(a_codes)}"
        )
        found.violations.append(
            _violation(
                ov,
                "beat_crosses_community",
                (b_code, *partial, *a_codes),
                inside,
                None,
                stray,
                message,
                a_codes=a_codes,
                b_codes=(b_code,),
                a_parent_codes=tuple(partial),
            )
        )


def _stations_cutting(
    ov: Overlaps,
    rows: Indices,
    a_labels: Objects | None,
    b_labels: Objects | None,
    parents: Overlaps,
    tolerance_share: float,
    tolerance_m2: float,
    noise: NoiseTolerance,
    found: _Found,
) -> list[Noise]:
    sorted_ = classify(
        parents,
        tolerance_share=tolerance_share,
        tolerance_m2=tolerance_m2,
        noise=noise,
        level="parents",
    )
    # Only the pairs matter here: ground outside the other parent layer is
    # the units' business (grid_outside_beats, beat_not_union_of_grids).
    over = (parents.area >= tolerance_m2) & (parents.share >= tolerance_share)
    found.sliver(parents.area[~over])
    prows = sorted_.rows
    count = np.bincount(parents.ai[prows], minlength=len(parents.a))
    by_community = _group(parents.ai[prows], prows)
    for c in np.flatnonzero(count >= 2):
        pairs = by_community[int(c)]  # largest first: the main station
        c_code = str(parents.a.codes[c])
        stations = tuple(str(parents.b.codes[parents.bi[p]]) for p in pairs)
        main = stations[0]
        grids: list[str] = []
        beats: list[str] = []
        if a_labels is not None:
            mine = rows[[a_labels[ov.ai[p]] == c_code for p in rows]]
            for p in sorted(mine, key=lambda p: (ov.ai[p], -ov.area[p])):
                beat = str(ov.b.codes[ov.bi[p]])
                elsewhere = b_labels is not None and b_labels[ov.bi[p]] != main
                if elsewhere and str(ov.a.codes[ov.ai[p]]) not in grids:
                    grids.append(str(ov.a.codes[ov.ai[p]]))
                if beat not in beats:
                    beats.append(beat)
            if b_labels is not None:  # beats outside the main station first
                row_of = ov.b.row_of()
                beats.sort(key=lambda code: (b_labels[row_of[code]] == main, code))
        listed = ", ".join(
            f"{s} {parents.share[p]:.1%}" for s, p in zip(stations, pairs, strict=True)
        )
        message = f"community {c_code} is cut by station boundaries: {listed} of its area"
        if grids:
            message += f"; grid{'s' if len(grids) > 1 else ''} outside {main}: {', '.join(grids)}"
        ground = _union([polygonal(g) for g in parents.pieces[pairs[1:]]])
        lon, lat = lonlat(ground)
        households = None
        if ov.households is not None and a_labels is not None and b_labels is not None:
            stray = [p for p in rows if a_labels[ov.ai[p]] == c_code and b_labels[ov.bi[p]] != main]
            households = float(ov.households[stray].sum())
        found.violations.append(
            Violation(
                kind="station_cuts_community",
                codes=(c_code, *stations, *grids, *beats),
                shares={s: float(parents.share[p]) for s, p in zip(stations, pairs, strict=True)},
                lon=lon,
                lat=lat,
                area_m2=float(parents.area[pairs[1:]].sum()),
                households=households,
                message=message,
                a_codes=tuple(grids),
                b_codes=tuple(beats),
                a_parent_codes=(c_code,),
                b_parent_codes=stations,
                geometry=ground,
            )
        )
    return [n for n in sorted_.noise if n.a_code is not None and n.b_code is not None]


def _violation(
    ov: Overlaps,
    kind: str,
    codes: tuple[str, ...],
    shares: dict[str, float],
    household_shares: dict[str, float] | None,
    stray: Iterable[int],
    message: str,
    *,
    a_codes: tuple[str, ...] = (),
    b_codes: tuple[str, ...] = (),
    a_parent_codes: tuple[str, ...] = (),
) -> Violation:
    """Build a violation whose faulty ground is the union of the ``stray`` pairs' pieces."""
    stray = list(stray)
    geometry = _union([polygonal(g) for g in ov.pieces[stray]])
    lon, lat = lonlat(geometry)
    return Violation(
        kind=kind,
        codes=codes,
        shares=shares,
        household_shares=household_shares,
        lon=lon,
        lat=lat,
        area_m2=float(ov.area[stray].sum()),
        households=_households(ov, stray),
        message=message,
        geometry=geometry,
        a_codes=a_codes,
        b_codes=b_codes,
        a_parent_codes=a_parent_codes,
    )


def _household_shares(
    ov: Overlaps, codes: tuple[str, ...], pairs: list[int]
) -> dict[str, float] | None:
    shares = ov.household_share
    if shares is None:
        return None
    return {c: float(shares[p]) for c, p in zip(codes, pairs, strict=True)}


def _households(ov: Overlaps, pairs: list[int]) -> float | None:
    return None if ov.households is None else float(ov.households[pairs].sum())


def _group(keys: NDArray[np.intp], rows: Indices) -> dict[int, list[int]]:
    """Rows grouped by key, each group in the order of ``rows``."""
    groups: dict[int, list[int]] = defaultdict(list)
    for key, row in zip(keys.tolist(), rows.tolist(), strict=True):
        groups[key].append(row)
    return groups


def _union(parts: list[BaseGeometry]) -> BaseGeometry:
    parts = [p for p in parts if not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return polygonal(shapely.union_all(parts)) if len(parts) > 1 else parts[0]
