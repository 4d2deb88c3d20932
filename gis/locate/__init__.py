"""Locate incidents in every layer and level at once (the "same grid" 同格 routing rule).

Like an NG9-1-1 ECRF: a point goes to the unit that covers it in every layer
(micro-grid … county, beat, station), using the boundary versions valid at
the event time. A point on a shared edge belongs to the unit with the
smallest code. A point covered by nothing is ``outside``, with the nearest
unit and its distance. With an accuracy radius, the unit containing the
whole circle wins, else the largest share, ``ambiguous`` when the top two
shares are within 10 points.

Overall status: ``ambiguous`` if any layer is, else ``outside`` if any layer
has no unit at its lowest level, else ``ok``. Answers are typed
(:mod:`gis.locate.answers`); given a ``viewer`` (a caller's jurisdiction)
they are cut down to it, and a place outside its area is
``outside_jurisdiction`` — decided before anything is looked up, so that a
place in another unit and a place in none cost alike.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike

from gis.crs import CoordinateSystem, parse_crs
from gis.errors import InputError
from gis.locate._addresses import AddressCache
from gis.locate._answer import AMBIGUITY_MARGIN, answer_circle, answer_point
from gis.locate._coords import point_to_storage, to_storage_lonlat
from gis.locate._indexes import IndexCache, IndexSet
from gis.locate.answers import (
    OUTSIDE_JURISDICTION,
    AddressAnswer,
    LayerAnswer,
    LevelAnswer,
    LocateAnswer,
    LocateInput,
    Viewer,
)
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.times import isoformat_local, parse_time

__all__ = [
    "AMBIGUITY_MARGIN",
    "OUTSIDE_JURISDICTION",
    "LocateAnswer",
    "LocateService",
    "Viewer",
    "Visible",
    "to_storage_lonlat",
]

_log = logging.getLogger(__name__)

#: What a caller may see, for batch answers (the same as :class:`Viewer`).
Visible = Viewer

MAX_ACCURACY_M = 10_000.0


class LocateService:
    """Answers locate requests from versioned in-memory indexes of the registry.

    Parameters
    ----------
    db : Database
        The registry; indexes are (re)built from it when boundaries change.
    refresh_seconds : float
        How often to look for boundary changes (0: on every request); not
        used when ``clock`` is given.
    clock : RevisionClock, optional
        The change counters shared with the application's other caches.
    background : bool
        Rebuild indexes in a background thread after a change, answering
        from the previous ones meanwhile (a served application).
    """

    def __init__(
        self,
        db: Database,
        *,
        refresh_seconds: float = 1.0,
        clock: RevisionClock | None = None,
        background: bool = False,
    ) -> None:
        clock = clock or RevisionClock(db, refresh_seconds=refresh_seconds)
        self.cache = IndexCache(db, clock=clock, background=background)
        self.addresses = AddressCache(db, clock=clock)

    def warm(self) -> None:
        """Build the indexes of the boundaries valid now (at start-up; errors are logged)."""
        try:
            self.cache.get()
        except Exception:  # a broken registry must not stop the server from starting
            _log.exception("building the locate indexes at start-up failed")

    def ready(self, *, at: str | date | datetime | None = None, address: bool = False) -> bool:
        """Whether a locate at ``at`` would answer at once, without building an index."""
        try:
            when = parse_time(at, field="at")
        except InputError:
            return True  # answered at once, with the error
        if not self.cache.ready(when):
            return False
        return not address or self.addresses.ready(self.cache.get(when))

    def locate_address(
        self,
        text: str,
        *,
        at: str | date | datetime | None = None,
        limit: int = 5,
        viewer: Viewer | None = None,
    ) -> LocateAnswer:
        """Locate a Chinese standard address: address → building → units.

        The best match's building point (its entrance, else a point inside it)
        is located like coordinates. The answer carries the parsed components,
        the match score and the ranked candidates; a match that is not certain
        makes the status ``ambiguous`` and one with no candidate ``unmatched``
        — a guess is never presented as certain. With ``viewer``, an address
        certainly matched to a building outside its area is
        ``outside_jurisdiction`` and an uncertain match there ``unmatched``
        (nothing of the building either way).
        """
        if not text or not text.strip() or len(text) > 200:
            raise InputError("address must have 1 to 200 characters", field="address")
        when = parse_time(at, field="at")
        hit = self.addresses.match(text, indexes=self.cache.get(when), limit=limit)
        request = LocateInput(address=text, at=_iso(at))
        if not hit.matches:
            return LocateAnswer(
                input=request,
                status="unmatched",
                layers={},
                address=AddressAnswer(input=text, parsed=hit.parsed),
            )
        best = hit.matches[0]
        lon, lat = hit.points[str(best.key)]
        address = AddressAnswer(
            input=text, parsed=hit.parsed, candidates=tuple(hit.matches), best=best
        )
        if viewer is not None and not viewer.covers(lon, lat):
            # A certain match elsewhere is outside the jurisdiction; a guess
            # elsewhere is not presented at all: as if nothing matched.
            return LocateAnswer(
                input=request,
                status=OUTSIDE_JURISDICTION if best.certain else "unmatched",
                layers={},
                address=AddressAnswer(input=text, parsed=hit.parsed),
            )
        located = self.locate(lon, lat, crs="cgcs2000", at=when)
        answer = dataclasses.replace(
            located,
            input=request,
            address=address,
            status=located.status if best.certain else "ambiguous",
        )
        return answer if viewer is None else answer.cut_inside(viewer)

    def locate(
        self,
        x: float,
        y: float,
        *,
        crs: str = "cgcs2000",
        accuracy_m: float | None = None,
        at: str | date | datetime | None = None,
        viewer: Viewer | None = None,
    ) -> LocateAnswer:
        """Locate one point in every layer (cut down to ``viewer`` when given).

        Raises
        ------
        InputError
            Bad coordinates, unknown CRS, accuracy out of range, bad time.
        """
        system = parse_crs(crs)
        if accuracy_m is not None and not (0 <= accuracy_m <= MAX_ACCURACY_M):
            raise InputError(
                f"accuracy_m must be between 0 and {MAX_ACCURACY_M:.0f} metres, not {accuracy_m}",
                field="accuracy_m",
            )
        when = parse_time(at, field="at")
        lon_value, lat_value = point_to_storage(x, y, system)
        request = LocateInput(x=x, y=y, crs=system.name, accuracy_m=accuracy_m, at=_iso(at))
        lon, lat = round(lon_value, 8), round(lat_value, 8)
        if viewer is not None and not viewer.covers(lon, lat):
            # Decided before any lookup: another unit's ground and no unit's
            # ground answer alike, in the same time.
            return LocateAnswer(
                input=request,
                status=OUTSIDE_JURISDICTION,
                layers={},
                lon=lon,
                lat=lat,
                at=when.isoformat(),
            )
        indexes = self.cache.get(when)
        point = shapely.Point(*indexes.to_metric.transform(lon_value, lat_value))
        layers: dict[str, LayerAnswer] = {}
        # One-element arrays shared by every level's lookup of this point.
        xs, ys = np.array([lon_value]), np.array([lat_value])
        out = np.empty(1, dtype=np.int64)
        for layer, levels in indexes.layers().items():
            answers: list[LevelAnswer] = []
            for depth, level in enumerate(levels):
                row = level.index.lookup_into(xs, ys, out)
                if accuracy_m:
                    answers.append(answer_circle(level, row, point, accuracy_m))
                else:
                    # The boundary distance matters for the most local unit;
                    # measuring it at every level would double the cost.
                    lowest = depth == len(levels) - 1
                    answers.append(answer_point(level, row, point, measure=lowest))
            layers[layer] = LayerAnswer.of(answers)
        first_version = message = None
        status = _overall(layers)
        if indexes.start is None and indexes.end is not None:
            # No version had started yet: "outside" would say the place is off the map.
            first_version = isoformat_local(indexes.end)
            status = "before_first_version"
            message = (
                f"at {isoformat_local(when)} is before the first boundary version "
                f"({first_version}): no unit existed then"
            )
        answer = LocateAnswer(
            input=request,
            status=status,
            layers=layers,
            responsible=self.cache.responsible(_local_first(layers)),
            lon=lon,
            lat=lat,
            at=when.isoformat(),
            first_version=first_version,
            message=message,
        )
        return answer if viewer is None else answer.cut_inside(viewer)

    def locate_many(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        crs: str | CoordinateSystem = "cgcs2000",
        at: str | date | datetime | None = None,
        visible: Visible | None = None,
        names: bool = False,
    ) -> pd.DataFrame:
        """Locate many points at once; one row per point.

        Columns: ``lon``, ``lat`` (CGCS2000), ``status`` (``ok``, ``outside``,
        ``outside_jurisdiction``, ``before_first_version`` when no boundary
        version had started, or ``invalid`` for unusable coordinates) and one
        ``<layer>_<level>`` column of unit codes per level (with ``names``,
        each followed by a ``<layer>_<level>_name`` column). With ``visible``
        (a caller's jurisdiction) only the codes it may see are written, and a
        point outside its area has no code at all.
        """
        lon, lat, ok = to_storage_lonlat(x, y, crs, strict=False)
        indexes = self.cache.get(parse_time(at, field="at"))
        return locate_arrays(indexes, lon, lat, ok, visible=visible, names=names)

    def locate_addresses(
        self,
        texts: Sequence[object],
        *,
        at: str | date | datetime | None = None,
        visible: Visible | None = None,
        names: bool = False,
    ) -> pd.DataFrame:
        """Locate many standard addresses; one row per address (see ``locate_many``).

        Each address goes to its best-matching building's point, like
        :meth:`locate_address`; the columns of :meth:`locate_many` follow
        ``address_match`` (the standard address matched) and
        ``address_score``. ``status`` is ``unmatched`` without a match and
        ``ambiguous`` when the match is not certain — never ``ok`` for a guess.
        """
        indexes = self.cache.get(parse_time(at, field="at"))
        count = len(texts)
        lon = np.full(count, np.nan)
        lat = np.full(count, np.nan)
        matched: list[str | None] = [None] * count
        scores = np.full(count, np.nan)
        certain = np.zeros(count, dtype=bool)
        seen: dict[str, tuple[float, float, str, float, bool] | None] = {}
        for i, raw in enumerate(texts):
            text = raw.strip() if isinstance(raw, str) else ""
            if not text or len(text) > 200:
                continue
            if text not in seen:
                hit = self.addresses.match(text, indexes=indexes, limit=2)
                best = hit.matches[0] if hit.matches else None
                seen[text] = (
                    None
                    if best is None
                    else (*hit.points[str(best.key)], best.address, best.score, best.certain)
                )
            found = seen[text]
            if found is not None:
                lon[i], lat[i], matched[i], scores[i], certain[i] = found
        found_any = ~np.isnan(lon)
        located = locate_arrays(indexes, lon, lat, found_any, visible=visible, names=names)
        status = located["status"].to_numpy(dtype=object)
        elsewhere = status == "outside_jurisdiction"
        status[~found_any] = "unmatched"
        status[found_any & ~certain] = "ambiguous"
        # As for one address: a certain match outside the caller's area says
        # only that; an uncertain one there is unmatched. Neither names it.
        status[elsewhere & certain] = "outside_jurisdiction"
        status[elsewhere & ~certain] = "unmatched"
        scores[elsewhere] = np.nan
        for row in np.flatnonzero(elsewhere):
            matched[int(row)] = None
        located["status"] = status
        located.insert(0, "address_score", scores)
        located.insert(0, "address_match", matched)
        return located


def locate_arrays(
    indexes: IndexSet,
    lon: np.ndarray,
    lat: np.ndarray,
    ok: np.ndarray,
    *,
    visible: Visible | None = None,
    names: bool = False,
) -> pd.DataFrame:
    """Locate CGCS2000 lon/lat arrays with a ready index set (see ``locate_many``)."""
    result: dict[str, Any] = {"lon": lon, "lat": lat}
    found_everywhere = np.ones(len(lon), dtype=bool)
    inside = visible.covers_points(lon, lat) if visible is not None else None
    for layer, levels in indexes.layers().items():
        allowed = visible.codes(layer) if visible is not None else None
        for level in levels:
            rows = level.index.lookup_index(lon, lat)
            codes = level.codes[np.maximum(rows, 0)].copy()
            codes[rows < 0] = None
            if allowed is not None:
                codes[~pd.Series(codes).isin(allowed).to_numpy()] = None
            if inside is not None:
                codes[~inside] = None
            result[f"{layer}_{level.level}"] = codes
            if names:
                labels = level.names[np.maximum(rows, 0)].copy()
                labels[pd.isna(codes)] = None
                result[f"{layer}_{level.level}_name"] = labels
        found_everywhere &= rows >= 0  # the layer's lowest level decides
    status = np.where(found_everywhere, "ok", "outside").astype(object)
    if not indexes.levels:
        # No unit at that time: never "ok" with every level blank.
        early = indexes.start is None and indexes.end is not None
        status[:] = "before_first_version" if early else "outside"
    if inside is not None:
        status[~inside] = OUTSIDE_JURISDICTION
    status[~ok] = "invalid"
    result["status"] = status
    return pd.DataFrame(result)


def _iso(value: str | date | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _local_first(layers: dict[str, LayerAnswer]) -> list[tuple[str, str]]:
    # Most local unit of every layer first (micro-grid, beat), then upwards.
    columns = [list(reversed(body.units)) for body in layers.values()]
    names = list(layers)
    ordered = []
    for depth in range(max((len(c) for c in columns), default=0)):
        for name, units in zip(names, columns, strict=True):
            if depth < len(units) and units[depth].code is not None:
                ordered.append((name, str(units[depth].code)))
    return ordered


def _overall(layers: dict[str, LayerAnswer]) -> str:
    statuses = {layer.status for layer in layers.values()}
    if "ambiguous" in statuses:
        return "ambiguous"
    if "outside" in statuses or not statuses:
        return "outside"
    return "ok"
