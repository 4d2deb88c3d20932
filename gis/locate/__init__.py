"""Locate incidents in every layer and level at once (the "same grid" 同格 routing rule).

Like an NG9-1-1 ECRF: a point goes to the unit that covers it in every layer
(micro-grid … county, beat, station), using the boundary versions valid at
the event time. A point on a shared edge belongs to the unit with the
smallest code. A point covered by nothing is ``outside``, with the nearest
unit and its distance. With an accuracy radius, the unit containing the
whole circle wins, else the largest share, ``ambiguous`` when the top two
shares are within 10 points.

Overall status: ``ambiguous`` if any layer is, else ``outside`` if any layer
has no unit at its lowest level, else ``ok``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike

from gis.crs import CoordinateSystem, parse_crs
from gis.errors import InputError
from gis.locate._addresses import AddressCache
from gis.locate._answer import AMBIGUITY_MARGIN, LevelAnswer, answer_circle, answer_point
from gis.locate._coords import point_to_storage, to_storage_lonlat
from gis.locate._indexes import IndexCache, IndexSet
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.staff import responsible_for
from gis.times import isoformat_local, parse_time

__all__ = ["AMBIGUITY_MARGIN", "LocateService", "Visible", "to_storage_lonlat"]

_log = logging.getLogger(__name__)

#: ``visible(layer)``: the unit codes of a layer a caller may see (None: all).
Visible = Callable[[str], Collection[str] | None]

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
    ) -> dict[str, Any]:
        """Locate a Chinese standard address: address → building → units.

        The best match's building point (its entrance, else a point inside it)
        is located like coordinates. The answer carries the parsed components,
        the match score and the ranked candidates; a match that is not certain
        makes the status ``ambiguous`` and one with no candidate ``unmatched``
        — a guess is never presented as certain.
        """
        if not text or not text.strip() or len(text) > 200:
            raise InputError("address must have 1 to 200 characters", field="address")
        when = parse_time(at, field="at")
        hit = self.addresses.match(text, indexes=self.cache.get(when), limit=limit)
        details: dict[str, Any] = {
            "input": text,
            "parsed": hit.parsed,
            "candidates": [m.to_dict() for m in hit.matches],
        }
        if not hit.matches:
            return {
                "input": {"address": text, "at": _iso(at)},
                "status": "unmatched",
                "address": details,
                "layers": {},
                "responsible": [],
            }
        best = hit.matches[0]
        lon, lat = hit.points[str(best.key)]
        answer = self.locate(lon, lat, crs="cgcs2000", at=when)
        answer["input"] = {"address": text, "at": _iso(at)}
        answer["address"] = {
            **details,
            "building_key": best.key,
            "matched": best.address,
            "score": best.score,
            "certain": best.certain,
        }
        if not best.certain:
            answer["status"] = "ambiguous"
        return answer

    def locate(
        self,
        x: float,
        y: float,
        *,
        crs: str = "cgcs2000",
        accuracy_m: float | None = None,
        at: str | date | datetime | None = None,
    ) -> dict[str, Any]:
        """Locate one point in every layer; return the JSON-ready answer.

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
        indexes = self.cache.get(when)
        point = shapely.Point(*indexes.to_metric.transform(lon_value, lat_value))
        layers = {}
        # One-element arrays shared by every level's lookup of this point.
        xs, ys = np.array([lon_value]), np.array([lat_value])
        out = np.empty(1, dtype=np.int64)
        for layer, levels in indexes.layers().items():
            answers = []
            for depth, level in enumerate(levels):
                row = level.index.lookup_into(xs, ys, out)
                if accuracy_m:
                    answers.append(answer_circle(level, row, point, accuracy_m))
                else:
                    # The boundary distance matters for the most local unit;
                    # measuring it at every level would double the cost.
                    lowest = depth == len(levels) - 1
                    answers.append(answer_point(level, row, point, measure=lowest))
            layers[layer] = _layer(answers)
        staff = self.cache.staff()
        answer = {
            "input": {
                "x": x,
                "y": y,
                "crs": system.name,
                "accuracy_m": accuracy_m,
                "at": _iso(at),
            },
            "lon": round(lon_value, 8),
            "lat": round(lat_value, 8),
            "crs": "EPSG:4490",
            "at": when.isoformat(),
            "status": _overall(layers),
            "layers": layers,
            "responsible": responsible_for(staff, _local_first(layers)) if staff else [],
        }
        if indexes.start is None and indexes.end is not None:
            # No version had started yet: "outside" would say the place is off the map.
            first = isoformat_local(indexes.end)
            answer["status"] = "before_first_version"
            answer["first_version"] = first
            answer["message"] = (
                f"at {isoformat_local(when)} is before the first boundary version ({first}): "
                "no unit existed then"
            )
        return answer

    def locate_many(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        crs: str | CoordinateSystem = "cgcs2000",
        at: str | date | datetime | None = None,
        visible: Visible | None = None,
    ) -> pd.DataFrame:
        """Locate many points at once; one row per point.

        Columns: ``lon``, ``lat`` (CGCS2000), ``status`` (``ok``, ``outside``,
        ``before_first_version`` when no boundary version had started, or
        ``invalid`` for unusable coordinates) and one ``<layer>_<level>``
        column of unit codes per level. ``visible(layer)`` returns the codes
        the caller may see (None: all); other codes are left empty.
        """
        lon, lat, ok = to_storage_lonlat(x, y, crs, strict=False)
        indexes = self.cache.get(parse_time(at, field="at"))
        return locate_arrays(indexes, lon, lat, ok, visible=visible)


def locate_arrays(
    indexes: IndexSet,
    lon: np.ndarray,
    lat: np.ndarray,
    ok: np.ndarray,
    *,
    visible: Visible | None = None,
) -> pd.DataFrame:
    """Locate CGCS2000 lon/lat arrays with a ready index set (see ``locate_many``)."""
    result: dict[str, Any] = {"lon": lon, "lat": lat}
    found_everywhere = np.ones(len(lon), dtype=bool)
    for layer, levels in indexes.layers().items():
        for level in levels:
            rows = level.index.lookup_index(lon, lat)
            codes = level.codes[np.maximum(rows, 0)].copy()
            codes[rows < 0] = None
            allowed = visible(layer) if visible is not None else None
            if allowed is not None:
                codes[~pd.Series(codes).isin(allowed).to_numpy()] = None
            result[f"{layer}_{level.level}"] = codes
        found_everywhere &= rows >= 0  # the layer's lowest level decides
    status = np.where(found_everywhere, "ok", "outside").astype(object)
    if not indexes.levels:
        # No unit at that time: never "ok" with every level blank.
        early = indexes.start is None and indexes.end is not None
        status[:] = "before_first_version" if early else "outside"
    status[~ok] = "invalid"
    result["status"] = status
    return pd.DataFrame(result)


def _iso(value: str | date | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _local_first(layers: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    # Most local unit of every layer first (micro-grid, beat), then upwards.
    columns = [list(reversed(body["units"])) for body in layers.values()]
    names = list(layers)
    ordered = []
    for depth in range(max((len(c) for c in columns), default=0)):
        for name, units in zip(names, columns, strict=True):
            if depth < len(units) and units[depth]["code"] is not None:
                ordered.append((name, units[depth]["code"]))
    return ordered


def _layer(answers: list[LevelAnswer]) -> dict[str, Any]:
    lowest = answers[-1]
    if any(a.status == "ambiguous" for a in answers):
        status = "ambiguous"
    elif lowest.code is None:
        status = "outside"
    else:
        status = "ok"
    return {
        "status": status,
        "units": [a.to_dict() for a in answers],
        "boundary_distance_m": lowest.boundary_distance_m,
        "nearest": lowest.nearest,
    }


def _overall(layers: dict[str, dict[str, Any]]) -> str:
    statuses = {layer["status"] for layer in layers.values()}
    if "ambiguous" in statuses:
        return "ambiguous"
    if "outside" in statuses or not statuses:
        return "outside"
    return "ok"
