"""The least boundary change that restores nesting: whole grids move between beats."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.alignment._check import AlignmentReport, check_overlaps, in_cgcs2000
from gis.alignment._noise import NoiseTolerance, classify
from gis.alignment._shares import Overlaps, Weights, overlaps
from gis.alignment._units import (
    Floats,
    Layer,
    Objects,
    as_layer,
    metric_for,
    parent_labels,
)
from gis.crs import STORAGE_CRS
from gis.validate import DatumOffset, ValidationReport, detect_datum_offset, validate_units

__all__ = ["Move", "Proposal", "propose_alignment"]


@dataclass(frozen=True)
class Move:
    """One A unit (grid) handed wholly to one B unit (beat).

    Attributes
    ----------
    a_code : str
        The grid.
    from_b : dict of str to float
        The beats holding it before, with their share of its area.
    to_b : str
        The beat it now lies in wholly.
    area_m2 : float
        Area changing beat (the grid minus what ``to_b`` already held), m².
    households : float or None
        Households changing beat, when weights were given.
    reason : str
        The violation kind the move resolves.
    from_parents : tuple of str
        The stations of the ``from_b`` beats (when known).
    to_parent : str or None
        The station of ``to_b``.
    note : str
        What it means, for people (e.g. that two stations change).
    from_b_households : dict of str to float, or None
        As ``from_b``, by households.
    """

    a_code: str
    from_b: dict[str, float]
    to_b: str
    area_m2: float
    households: float | None
    reason: str
    from_parents: tuple[str, ...] = ()
    to_parent: str | None = None
    note: str = ""
    from_b_households: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the move as plain JSON types."""
        return {
            "a_code": self.a_code,
            "from_b": {k: round(v, 6) for k, v in self.from_b.items()},
            "from_b_households": None
            if self.from_b_households is None
            else {k: round(v, 6) for k, v in self.from_b_households.items()},
            "to_b": self.to_b,
            "area_m2": round(self.area_m2, 3),
            "households": None if self.households is None else round(self.households, 3),
            "reason": self.reason,
            "from_parents": list(self.from_parents),
            "to_parent": self.to_parent,
            "note": self.note,
        }


@dataclass
class Proposal:
    """The outcome of :func:`propose_alignment`.

    Attributes
    ----------
    b_units : GeoDataFrame
        The new B layer: the input rows and columns, each geometry replaced by
        the union of its whole A units, in the input CRS. Attribute columns
        (e.g. ``households``) are not recomputed: ``impact`` has the new figures.
    moves : list of Move
        The A units that change B unit, by A code.
    impact : DataFrame
        Per B unit: ``code``, ``parent_code`` (its station), ``area_before_m2``,
        ``area_after_m2``, ``households_before``, ``households_after``,
        ``units_before``, ``units_after`` (A units with ground in it),
        ``gained``, ``lost`` (A codes) and a ``note``.
    b_parents : GeoDataFrame or None
        When parents of B were given: each rebuilt as the union of its new B
        units (in its input CRS), so that B still nests in them.
    parent_impact : DataFrame or None
        Per B parent: ``code``, areas and households before/after, ``note``.
    report : AlignmentReport
        :func:`check_alignment` of A against the new B layer (and parents).
    validation : ValidationReport
        :func:`gis.validate.validate_units` of the new B layer, against the
        rebuilt parents when given.
    unresolved : list of str
        What could not be fixed without emptying a unit or had no neighbour.
    snapped : list of str
        B units whose boundary changes only by boundary noise: their edges
        are snapped onto A's (no A unit changes B unit).
    datum_offset : DatumOffset or None
        When B was drawn on a GCJ-02/BD-09 basemap: the offset, converted away
        in ``b_units``.
    """

    b_units: gpd.GeoDataFrame
    moves: list[Move]
    impact: pd.DataFrame
    report: AlignmentReport
    validation: ValidationReport
    b_parents: gpd.GeoDataFrame | None = None
    parent_impact: pd.DataFrame | None = None
    unresolved: list[str] = field(default_factory=list)
    snapped: list[str] = field(default_factory=list)
    datum_offset: DatumOffset | None = None

    @property
    def aligned(self) -> bool:
        """Whether the new layer nests (no violation) and is a valid coverage."""
        return self.report.aligned and self.validation.ok

    def to_dict(self) -> dict[str, Any]:
        """Return the proposal as plain JSON types (without geometries)."""
        return {
            "aligned": self.aligned,
            "moves": [m.to_dict() for m in self.moves],
            "impact": _records(self.impact),
            "parent_impact": None if self.parent_impact is None else _records(self.parent_impact),
            "unresolved": list(self.unresolved),
            "snapped": list(self.snapped),
            "datum_offset": None if self.datum_offset is None else self.datum_offset.to_dict(),
            "report": self.report.to_dict(),
            "validation": self.validation.to_dict(),
        }


def propose_alignment(
    a_units: gpd.GeoDataFrame,
    b_units: gpd.GeoDataFrame,
    *,
    a_parents: gpd.GeoDataFrame | None = None,
    b_parents: gpd.GeoDataFrame | None = None,
    weights: Weights = None,
    weight_column: str | None = None,
    tolerance_share: float = 0.001,
    tolerance_m2: float = 1.0,
    noise: NoiseTolerance | None = None,
    detect_datum: bool = True,
) -> Proposal:
    """Propose the least change of layer B that makes layer A nest in it.

    Layer A (grids) never changes; B units (beats) are rebuilt as exact unions
    of whole A units. Each A unit goes, in this order:

    1. to the B unit holding most of its households (of its area without
       weights): this moves the minority part of every split grid, and gives a
       grid lying in no beat to the beat sharing the longest edge with it;
    2. when grids and beats have parents (``parent_code`` or parent layers):
       a community in several stations goes wholly to the station holding most
       of its households, each stray grid to the beat of that station holding
       most of the community;
    3. a beat holding part of a community besides others (see
       ``beat_crosses_community``) hands the stray grids to the beat lying
       inside that community and holding most of it, or, when there is none,
       the community is gathered into the beat holding most of it.

    No B unit is ever emptied: a B unit left without A units keeps the A unit
    covering most of it, and a move that would empty one is not made (it is
    listed in ``unresolved``).

    Stations are rebuilt too, rather than only choosing beats of the same
    station: a grid split across beats of two stations is cut by the station
    boundary itself, and a community cut by stations can only be made whole by
    moving a station boundary, so no choice of beat avoids it. Each move says
    when it changes stations, and ``parent_impact`` shows by how much.

    Parameters
    ----------
    a_units, b_units, a_parents, b_parents, weights, weight_column
        As for :func:`check_alignment`.
    tolerance_share, tolerance_m2, noise, detect_datum
        As for :func:`check_alignment`: slivers and boundary noise do not make
        a grid "split". Rebuilding B from whole A units also snaps B's noisy
        edges onto A's: the B units that change only that way are listed in
        ``snapped``. A layer drawn on a GCJ-02/BD-09 basemap is converted first.

    Returns
    -------
    Proposal
        The new B layer (and parents), the moves, the impact, and the
        re-check (``report``) and validation of the result.

    Examples
    --------
    ::

        +-----+--+--+-----+
        | g1  | g2  | g3  |     b1 = g1 + 70% of g2
        +-----+--+--+-----+     b2 = 30% of g2 + g3
        |  b1    |   b2   |

    >>> import geopandas as gpd
    >>> from shapely import box
    >>> x, y = 118.600, 24.900
    >>> grids = gpd.GeoDataFrame({"code": ["g1", "g2", "g3"]}, crs="EPSG:4490",
    ...     geometry=[box(x + i * 0.001, y, x + (i + 1) * 0.001, y + 0.001) for i in range(3)])
    >>> beats = gpd.GeoDataFrame({"code": ["b1", "b2"]}, crs="EPSG:4490",
    ...     geometry=[box(x, y, x + 0.0017, y + 0.001), box(x + 0.0017, y, x + 0.003, y + 0.001)])
    >>> proposal = propose_alignment(grids, beats)
    >>> [(m.a_code, m.to_b, round(m.area_m2, -1)) for m in proposal.moves]
    [('g2', 'b1', 3360.0)]
    >>> proposal.aligned
    True
    >>> [round(beat.bounds[2], 4) for beat in proposal.b_units.geometry]  # new east edges
    [118.602, 118.603]
    """
    a = as_layer(a_units, role="a_units")
    b = as_layer(b_units, role="b_units")
    ap = as_layer(a_parents, role="a_parents") if a_parents is not None else None
    bp = as_layer(b_parents, role="b_parents") if b_parents is not None else None
    noise = noise or NoiseTolerance()
    offset = detect_datum_offset(a.geoms, b.geoms) if detect_datum else None
    b, bp = in_cgcs2000(b, offset), None if bp is None else in_cgcs2000(bp, offset)
    metric = metric_for(a.geoms, b.geoms)
    ov = overlaps(a, b, weights=weights, weight_column=weight_column, metric=metric)
    a_labels = parent_labels(a, ap)
    b_labels = parent_labels(b, bp)

    plan = _Plan(ov, a_labels, b_labels, tolerance_share, tolerance_m2, noise)
    plan.majority()
    plan.keep_every_beat()
    if a_labels is not None and b_labels is not None:
        plan.one_station_per_community()
    if a_labels is not None:
        plan.beats_nest_in_communities()

    new_geoms = plan.rebuild()
    new_b = b.frame.copy()
    new_b = new_b.set_geometry(
        gpd.GeoSeries(new_geoms, index=new_b.index, crs=STORAGE_CRS).to_crs(b.frame.crs)
    )
    new_bp = None
    parent_impact = None
    if bp is not None:
        assert b_labels is not None
        new_bp, parent_impact = plan.rebuild_parents(bp, new_geoms)

    # Re-check exactly as a caller would, from the returned frames.
    nb = as_layer(new_b, role="new b_units")
    nbp = as_layer(new_bp, role="new b_parents") if new_bp is not None else None
    new_ov = overlaps(a, nb, weights=weights, weight_column=weight_column, metric=metric)
    report = check_overlaps(
        new_ov,
        a_labels=a_labels,
        b_labels=parent_labels(nb, nbp),
        parents=overlaps(ap, nbp, metric=metric) if ap is not None and nbp is not None else None,
        tolerance_share=tolerance_share,
        tolerance_m2=tolerance_m2,
        noise=noise,
    )
    validation = validate_units(new_b, parents=new_bp)
    return Proposal(
        b_units=new_b,
        moves=plan.moves(),
        impact=plan.impact(new_ov),
        report=report,
        validation=validation,
        b_parents=new_bp,
        parent_impact=parent_impact,
        unresolved=plan.unresolved,
        snapped=plan.snapped(new_geoms),
        datum_offset=None if offset is None else replace(offset, converted=True),
    )


class _Plan:
    """The assignment of every A unit to one B unit, built step by step."""

    def __init__(
        self,
        ov: Overlaps,
        a_labels: Objects | None,
        b_labels: Objects | None,
        tolerance_share: float,
        tolerance_m2: float,
        noise: NoiseTolerance,
    ) -> None:
        self.ov = ov
        self.a_labels = a_labels
        self.b_labels = b_labels
        # Boundary noise is not a share: a grid with a noisy edge stays where it is.
        sorted_ = classify(
            ov, tolerance_share=tolerance_share, tolerance_m2=tolerance_m2, noise=noise
        )
        self.rows = sorted_.rows
        self.outside = sorted_.a_out_real
        self.pairs_of: dict[int, list[int]] = defaultdict(list)  # largest first
        for p in self.rows.tolist():
            self.pairs_of[int(ov.ai[p])].append(p)
        self.all_pairs_of: dict[int, list[int]] = defaultdict(list)
        for p in range(len(ov.ai)):
            self.all_pairs_of[int(ov.ai[p])].append(p)
        # Households decide where a grid goes; area when there are none.
        self.weight: Floats = (
            ov.a_households if ov.a_households is not None else ov.a_area
        ).astype(float)
        self.owner = np.full(len(ov.a), -1, dtype=np.intp)
        self.reason: dict[int, str] = {}
        self.notes: dict[int, str] = {}
        self.unresolved: list[str] = []

    # -- steps -------------------------------------------------------------

    def majority(self) -> None:
        """Step 1: each A unit to the B unit holding most of its households (or area)."""
        ov = self.ov
        for a in range(len(ov.a)):
            pairs = self.pairs_of.get(a) or self.all_pairs_of.get(a, [])
            if pairs:
                best = max(pairs, key=lambda p: (self._pair_weight(p), ov.area[p], -p))
                self.owner[a] = ov.bi[best]
            else:
                self.owner[a] = self._longest_edge(a)
                if self.owner[a] < 0:
                    self.unresolved.append(f"grid {ov.a.codes[a]} touches no beat: left out")
                    continue
            if len(self.pairs_of.get(a, [])) >= 2:
                self.reason[a] = "grid_split_across_beats"
            elif self.outside[a]:
                self.reason[a] = "grid_outside_beats"

    def keep_every_beat(self) -> None:
        """Keep at least one A unit in every B unit that held ground of one (none vanishes)."""
        ov = self.ov
        members = Counter(self.owner[self.owner >= 0].tolist())
        for b in sorted({int(ov.bi[p]) for p in self.rows}):
            if members[b]:
                continue
            # Give it the A unit covering most of it whose own beat keeps others.
            held = [p for p in self.rows if ov.bi[p] == b]
            for p in sorted(held, key=lambda p: -ov.area[p]):
                a = int(ov.ai[p])
                if members[int(self.owner[a])] > 1:
                    members[int(self.owner[a])] -= 1
                    members[b] += 1
                    self.owner[a] = b
                    self.notes[a] = f"given to {ov.b.codes[b]}, which would otherwise be empty"
                    break
            else:
                self.unresolved.append(f"beat {ov.b.codes[b]} would be left empty")

    def one_station_per_community(self) -> None:
        """Step 2: every community's grids in beats of one station."""
        assert self.a_labels is not None and self.b_labels is not None
        for _community, grids in sorted(self._grids_by_community().items()):
            by_station: dict[str, float] = defaultdict(float)
            for a in grids:
                by_station[self._station(a)] += self.weight[a]
            if len(by_station) < 2:
                continue
            main = max(by_station, key=lambda s: (by_station[s], s))
            held: dict[int, float] = defaultdict(float)
            for a in grids:
                if self._station(a) == main:
                    held[int(self.owner[a])] += self.weight[a]
            target = max(held, key=lambda b: (held[b], -b))
            for a in grids:
                if self._station(a) != main:
                    self._move(a, target, "station_cuts_community")

    def beats_nest_in_communities(self) -> None:
        """Step 3: each beat inside one community or a union of whole communities."""
        for _ in range(len(self.ov.b) + 2):
            if not self._nest_round():
                return
        self.unresolved.append("beats still cross communities after every round")

    def _nest_round(self) -> bool:
        labels = self.a_labels
        assert labels is not None
        members: dict[int, list[int]] = defaultdict(list)
        for a in np.flatnonzero(self.owner >= 0).tolist():
            if labels[a] is not None:
                members[int(self.owner[a])].append(a)
        beats_of: dict[str, set[int]] = defaultdict(set)
        communities_of: dict[int, set[str]] = defaultdict(set)
        for b, grids in members.items():
            for a in grids:
                beats_of[labels[a]].add(b)
                communities_of[b].add(labels[a])
        for b in sorted(members):
            held = communities_of[b]
            if len(held) < 2:
                continue
            whole = {c for c in held if beats_of[c] == {b}}
            partial = sorted(held - whole)
            if not partial:
                continue
            if not whole:
                home = max(
                    partial,
                    key=lambda c: (sum(self.weight[a] for a in members[b] if labels[a] == c), c),
                )
                partial.remove(home)
            moved = False
            for community in partial:
                moved |= self._settle(b, community, members, beats_of, communities_of)
            if moved:
                return True
        return False

    def _settle(
        self,
        b: int,
        community: str,
        members: dict[int, list[int]],
        beats_of: dict[str, set[int]],
        communities_of: dict[int, set[str]],
    ) -> bool:
        labels = self.a_labels
        assert labels is not None

        def weight_in(beat: int) -> float:
            return sum(self.weight[a] for a in members[beat] if labels[a] == community)

        inside = [x for x in beats_of[community] - {b} if communities_of[x] == {community}]
        moved = False
        if inside:
            target = max(inside, key=lambda x: (weight_in(x), -x))
            for a in [a for a in members[b] if labels[a] == community]:
                moved |= self._move(a, target, "beat_crosses_community")
            return moved
        # No beat lies inside the community: gather it into the one holding most.
        target = max(beats_of[community], key=lambda x: (weight_in(x), -x))
        for x in sorted(beats_of[community] - {target}):
            for a in [a for a in members[x] if labels[a] == community]:
                moved |= self._move(a, target, "beat_crosses_community")
        return moved

    # -- helpers -----------------------------------------------------------

    def _pair_weight(self, p: int) -> float:
        ov = self.ov
        # A grid without households (a park) goes by area.
        households, totals = ov.households, ov.a_households
        if households is not None and totals is not None and totals[ov.ai[p]] > 0:
            return float(households[p])
        return float(ov.area[p])

    def _longest_edge(self, a: int) -> int:
        ov = self.ov
        near = shapely.STRtree(ov.b.geoms).query(ov.a.geoms[a], predicate="intersects")
        if not len(near):
            return -1
        edges = shapely.length(
            shapely.intersection(
                shapely.boundary(ov.a.geoms[a]), shapely.boundary(ov.b.geoms[near])
            )
        )
        return int(near[int(np.argmax(edges))]) if np.max(edges) > 0 else -1

    def _station(self, a: int) -> str:
        assert self.b_labels is not None
        return str(self.b_labels[self.owner[a]])

    def _grids_by_community(self) -> dict[str, list[int]]:
        assert self.a_labels is not None
        grids: dict[str, list[int]] = defaultdict(list)
        for a in np.flatnonzero(self.owner >= 0).tolist():
            if self.a_labels[a] is not None:
                grids[str(self.a_labels[a])].append(a)
        return grids

    def _move(self, a: int, target: int, reason: str) -> bool:
        source = int(self.owner[a])
        if source == target:
            return False
        if int(np.count_nonzero(self.owner == source)) <= 1:
            self.unresolved.append(
                f"grid {self.ov.a.codes[a]} ({reason}) not moved from beat "
                f"{self.ov.b.codes[source]} to {self.ov.b.codes[target]}: the beat would be empty"
            )
            return False
        self.owner[a] = target
        self.reason.setdefault(a, reason)
        return True

    # -- results -----------------------------------------------------------

    def rebuild(self) -> Objects:
        """Return new B geometries (EPSG:4490): the coverage union of each one's A units."""
        ov = self.ov
        out = ov.b.geoms.copy()
        order = np.argsort(self.owner, kind="stable")
        owners = self.owner[order]
        for b in range(len(ov.b)):
            start, stop = np.searchsorted(owners, [b, b + 1])
            if stop > start:
                # Whole A units of a valid coverage share their edges exactly,
                # so their coverage union is exact and stays a valid coverage.
                out[b] = shapely.coverage_union_all(ov.a.geoms[order[start:stop]])
        return out

    def snapped(self, new_geoms: Objects) -> list[str]:
        """B units that gain or lose no A unit but whose boundary changes (noise snapped)."""
        ov = self.ov
        moved = {m.to_b for m in self.moves()} | {b for m in self.moves() for b in m.from_b}
        changed = ~shapely.equals(ov.b.geoms, new_geoms)
        return sorted(str(c) for c in ov.b.codes[changed] if str(c) not in moved)

    def rebuild_parents(
        self, parents: Layer, new_geoms: Objects
    ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
        """Rebuild each B parent as the union of its B units; return it and its impact."""
        ov = self.ov
        labels = self.b_labels
        assert labels is not None
        out = parents.geoms.copy()
        before_hh: dict[str, float] = defaultdict(float)
        after_hh: dict[str, float] = defaultdict(float)
        rows: dict[str, list[int]] = defaultdict(list)
        for b, label in enumerate(labels):
            if label is not None:
                rows[label].append(b)
                if ov.b_households is not None:
                    before_hh[label] += float(ov.b_households[b])
        for a in np.flatnonzero(self.owner >= 0).tolist():
            label = labels[self.owner[a]]
            if label is not None and ov.a_households is not None:
                after_hh[label] += float(ov.a_households[a])
        rebuilt = {b for b in range(len(ov.b)) if np.any(self.owner == b)}
        for i, code in enumerate(parents.codes):
            beats = rows.get(str(code), [])
            if not beats:
                continue
            parts = new_geoms[beats]
            exact = all(b in rebuilt for b in beats)
            out[i] = shapely.coverage_union_all(parts) if exact else shapely.union_all(parts)
        frame = parents.frame.copy()
        frame = frame.set_geometry(
            gpd.GeoSeries(out, index=frame.index, crs=STORAGE_CRS).to_crs(parents.frame.crs)
        )
        before = ov.metric.area(parents.geoms)
        after = ov.metric.area(out)
        notes = []
        moves = self.moves()
        for code in parents.codes:
            crossing = [m for m in moves if code in (*m.from_parents, m.to_parent)]
            crossing = [m for m in crossing if set(m.from_parents) != {m.to_parent}]
            gained = [m.a_code for m in crossing if m.to_parent == code]
            lost = [m.a_code for m in crossing if m.to_parent != code]
            text = []
            if gained:
                text.append(f"gains {', '.join(gained)}")
            if lost:
                text.append(f"loses {', '.join(lost)}")
            notes.append("; ".join(text))
        impact = pd.DataFrame(
            {
                "code": parents.codes.astype(str),
                "area_before_m2": before,
                "area_after_m2": after,
                "households_before": [before_hh.get(str(c), np.nan) for c in parents.codes]
                if ov.b_households is not None
                else np.nan,
                "households_after": [after_hh.get(str(c), np.nan) for c in parents.codes]
                if ov.a_households is not None
                else np.nan,
                "note": notes,
            }
        )
        return frame, impact

    def moves(self) -> list[Move]:
        """List the A units whose B unit changes, by A code."""
        ov = self.ov
        share, hh_share = ov.share, ov.household_share
        out = []
        for a in np.argsort(ov.a.codes.astype(str)).tolist():
            target = int(self.owner[a])
            if target < 0:
                continue
            pairs = self.pairs_of.get(a, [])
            before = {int(ov.bi[p]) for p in pairs}
            if before == {target} and self.reason.get(a) != "grid_outside_beats":
                continue
            kept = [p for p in self.all_pairs_of.get(a, []) if int(ov.bi[p]) == target]
            area = float(ov.a_area[a] - ov.area[kept].sum())
            households = None
            if ov.households is not None and ov.a_households is not None:
                households = float(ov.a_households[a] - ov.households[kept].sum())
            from_b = {str(ov.b.codes[ov.bi[p]]): float(share[p]) for p in pairs}
            from_hh = (
                {str(ov.b.codes[ov.bi[p]]): float(hh_share[p]) for p in pairs}
                if hh_share is not None
                else None
            )
            to_code = str(ov.b.codes[target])
            from_parents: tuple[str, ...] = ()
            to_parent = None
            note = self.notes.get(a, "")
            if self.b_labels is not None:
                from_parents = tuple(
                    dict.fromkeys(str(self.b_labels[ov.bi[p]]) for p in pairs).keys()
                )
                to_parent = None if self.b_labels[target] is None else str(self.b_labels[target])
                others = [s for s in from_parents if s != to_parent]
                if others:
                    text = (
                        f"{to_code} is in station {to_parent}, not {', '.join(others)}: "
                        f"stations {', '.join([to_parent or '?', *others])} change"
                    )
                    note = f"{note}; {text}" if note else text
            out.append(
                Move(
                    a_code=str(ov.a.codes[a]),
                    from_b=from_b,
                    to_b=to_code,
                    area_m2=area,
                    households=households,
                    reason=self.reason.get(a, "grid_split_across_beats"),
                    from_parents=from_parents,
                    to_parent=to_parent,
                    note=note,
                    from_b_households=from_hh,
                )
            )
        return out

    def impact(self, new: Overlaps) -> pd.DataFrame:
        """Per B unit: area, households and A units before and after."""
        ov = self.ov
        before_units: dict[int, set[str]] = defaultdict(set)
        for p in self.rows.tolist():
            before_units[int(ov.bi[p])].add(str(ov.a.codes[ov.ai[p]]))
        after_units: dict[int, set[str]] = defaultdict(set)
        for a in np.flatnonzero(self.owner >= 0).tolist():
            after_units[int(self.owner[a])].add(str(ov.a.codes[a]))
        moves = {m.a_code: m for m in self.moves()}
        hh_after = (
            np.bincount(
                self.owner[self.owner >= 0],
                weights=ov.a_households[self.owner >= 0],
                minlength=len(ov.b),
            )
            if ov.a_households is not None
            else np.full(len(ov.b), np.nan)
        )
        records = []
        for b in range(len(ov.b)):
            code = str(ov.b.codes[b])
            gained = sorted(after_units[b] - before_units[b])
            lost = sorted(before_units[b] - after_units[b])
            notes = [moves[g].note for g in gained + lost if g in moves and moves[g].note]
            records.append(
                {
                    "code": code,
                    "parent_code": None if self.b_labels is None else self.b_labels[b],
                    "area_before_m2": float(ov.b_area[b]),
                    "area_after_m2": float(new.b_area[b]),
                    "households_before": float(ov.b_households[b])
                    if ov.b_households is not None
                    else np.nan,
                    "households_after": float(hh_after[b]),
                    "units_before": len(before_units[b]),
                    "units_after": len(after_units[b]),
                    "gained": gained,
                    "lost": lost,
                    "note": "; ".join(dict.fromkeys(notes)),
                }
            )
        return pd.DataFrame.from_records(records)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        for row in clean.to_dict("records")
    ]
