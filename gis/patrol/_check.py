"""Check existing routes against a unit, and score recorded GPS tracks against a plan.

Matching is geometric, not a hidden Markov map matcher: a street segment
counts as walked when at least ``min_share`` (80 %) of its length lies within
``tolerance_m`` (15 m) of the route or track. Consecutive track points more
than ``max_gap_m`` apart (signal lost, phone in a pocket) are not joined, so
a gap never "walks" the streets it jumps over; single outliers (a fix 200 m
off) are dropped when both neighbours agree with each other. Tracks recorded
in GCJ-02 or BD-09 (Amap, Baidu) are converted back with ``datum``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import transformer
from gis.datum import bd09_to_wgs84, gcj02_to_wgs84
from gis.errors import InputError
from gis.patrol._network import StreetNetwork
from gis.patrol._plan import PatrolPlan

__all__ = [
    "RouteCheck",
    "Track",
    "TrackScore",
    "check_route",
    "read_route",
    "read_track",
    "score_track",
]

#: GPX files larger than this are refused before parsing (bytes).
MAX_GPX_BYTES = 50 * 1024**2


@dataclass(frozen=True)
class Track:
    """GPS fixes in WGS84, in recorded order; ``times`` are aware datetimes or ``None``."""

    lon: np.ndarray
    lat: np.ndarray
    times: list[datetime | None] = field(default_factory=list)


@dataclass(frozen=True)
class RouteCheck:
    """How a route file fits a unit."""

    length_m: float
    outside_m: float
    street_length_m: float
    covered_m: float
    uncovered: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer."""
        return {
            "length_m": round(self.length_m, 1),
            "outside_m": round(self.outside_m, 1),
            "outside_share": round(self.outside_m / self.length_m, 6) if self.length_m else 0.0,
            "street_length_m": round(self.street_length_m, 1),
            "covered_m": round(self.covered_m, 1),
            "covered_share": round(self.covered_m / self.street_length_m, 6)
            if self.street_length_m
            else 0.0,
            "uncovered": self.uncovered,
        }


@dataclass(frozen=True)
class TrackScore:
    """How much of a plan a recorded track walked."""

    planned_m: float
    walked_m: float
    track_m: float
    inside_s: float | None
    checkpoints: dict[str, bool]
    points: int
    dropped_points: int

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer."""
        return {
            "planned_street_m": round(self.planned_m, 1),
            "walked_street_m": round(self.walked_m, 1),
            "walked_share": round(self.walked_m / self.planned_m, 6) if self.planned_m else 0.0,
            "track_m": round(self.track_m, 1),
            "time_inside_s": None if self.inside_s is None else round(self.inside_s),
            "checkpoints_reached": [k for k, v in self.checkpoints.items() if v],
            "checkpoints_missed": [k for k, v in self.checkpoints.items() if not v],
            "points": self.points,
            "dropped_points": self.dropped_points,
        }


def read_track(path: str | Path, *, datum: str = "wgs84", label: str | None = None) -> Track:
    """Read the track points (``trk``; else ``rte``) of a GPX file.

    Raises
    ------
    InputError
        Missing, too large or not GPX, fewer than two points, unknown datum.
    """
    shown = label if label is not None else str(path)
    gpx = _parse_gpx(Path(path), shown)
    points = [p for t in gpx.tracks for s in t.segments for p in s.points]
    if not points:
        points = [p for r in gpx.routes for p in r.points]
    if len(points) < 2:
        raise InputError(f"{shown}: the GPX holds fewer than two track points", field="track")
    lon = np.array([p.longitude for p in points], dtype=float)
    lat = np.array([p.latitude for p in points], dtype=float)
    lon, lat = _unshift(lon, lat, datum)
    # GPX times are UTC; a time without a zone is read as UTC (the GPX 1.1 rule).
    times = [
        None if p.time is None else p.time if p.time.tzinfo else p.time.replace(tzinfo=UTC)
        for p in points
    ]
    return Track(lon, lat, times)


def read_route(
    path: str | Path, *, datum: str = "wgs84", label: str | None = None
) -> list[BaseGeometry]:
    """Read the lines of a route file: GPX (``rte``/``trk``), KML or GeoJSON, as WGS84.

    Raises
    ------
    InputError
        Unreadable, no lines, unknown datum.
    """
    shown = label if label is not None else str(path)
    if str(path).lower().endswith(".gpx"):
        gpx = _parse_gpx(Path(path), shown)
        runs = [[(p.longitude, p.latitude) for p in r.points] for r in gpx.routes]
        runs += [
            [(p.longitude, p.latitude) for p in s.points] for t in gpx.tracks for s in t.segments
        ]
        lines = [shapely.LineString(r) for r in runs if len(r) >= 2]
    else:
        from gis.io import read_frame

        frame = read_frame(path, label=shown)
        if frame.crs is None:
            frame = frame.set_crs("EPSG:4326")
        frame = frame.to_crs("EPSG:4326")
        parts = shapely.get_parts(frame.geometry.values[frame.geometry.notna().to_numpy()])
        lines = [g for g in parts if g.geom_type == "LineString" and not g.is_empty]
    if not lines:
        raise InputError(f"{shown}: has no route lines", field="route")

    def back(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(_unshift(coords[:, 0], coords[:, 1], datum))

    return [shapely.transform(line, back) for line in lines]


def check_route(
    network: StreetNetwork,
    lines: list[BaseGeometry],
    *,
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    tolerance_m: float = 15.0,
    min_share: float = 0.8,
) -> RouteCheck:
    """Check a route (WGS84 lines) against a unit: length outside it, its streets not covered.

    Parameters
    ----------
    network : StreetNetwork
        The streets.
    lines : list of LineString
        The route, WGS84 (see :func:`read_route`).
    area : shapely geometry, optional
        The unit (default: the whole network, nothing is outside).
    tolerance_m, min_share : float
        A street counts as covered when ``min_share`` of it is within ``tolerance_m``.
    """
    from gis.patrol._plan import _inside

    route = _project(lines, network.crs)
    length = float(shapely.length(route))
    outside = 0.0
    if area is not None:
        unit = gpd.GeoSeries([area], crs=area_crs).to_crs(network.crs).iloc[0]
        outside = float(shapely.length(shapely.difference(route, unit)))
    required = _inside(network, area, area_crs)
    covered = _covered(network, route, tolerance_m, min_share) & required
    seg = network.segments
    lengths = seg["length"].to_numpy()
    to_wgs = transformer(network.crs, CRS.from_epsg(4326))
    missing = []
    for i in np.flatnonzero(required & ~covered):
        mid = shapely.line_interpolate_point(seg.geometry.values[i], 0.5, normalized=True)
        lon, lat = to_wgs.transform(mid.x, mid.y)
        name = seg["name"].iloc[i]
        missing.append(
            {
                "segment": int(i),
                "name": None if name is None else str(name),
                "length_m": round(float(lengths[i]), 1),
                "lon": round(float(lon), 7),
                "lat": round(float(lat), 7),
            }
        )
    return RouteCheck(
        length_m=length,
        outside_m=outside,
        street_length_m=float(lengths[required].sum()),
        covered_m=float(lengths[covered].sum()),
        uncovered=missing,
    )


def score_track(
    plan: PatrolPlan,
    track: Track,
    *,
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    tolerance_m: float = 15.0,
    min_share: float = 0.8,
    max_gap_m: float = 150.0,
    checkpoint_m: float = 30.0,
) -> TrackScore:
    """Score a recorded track against a plan.

    Parameters
    ----------
    plan : PatrolPlan
        What should have been walked (its streets are the planned ones).
    track : Track
        The recording (:func:`read_track`).
    area : shapely geometry, optional
        The unit, for the time spent inside it.
    tolerance_m, min_share : float
        Matching rule (module docstring).
    max_gap_m : float
        Fixes farther apart are not joined.
    checkpoint_m : float
        A checkpoint is reached by a fix within this distance.
    """
    network = plan.network
    xy = np.column_stack(
        transformer(CRS.from_epsg(4326), network.crs).transform(track.lon, track.lat)
    )
    keep = _not_outliers(xy, max_gap_m)
    xy_kept = xy[keep]
    times = [t for t, k in zip(track.times or [None] * len(xy), keep, strict=True) if k]
    runs = _runs(xy_kept, max_gap_m)
    route = shapely.MultiLineString(runs) if runs else shapely.MultiLineString()
    covered = _covered(network, route, tolerance_m, min_share) & plan.required
    lengths = network.segments["length"].to_numpy()
    points = shapely.points(xy_kept)
    reached = {}
    to_net = transformer(CRS.from_epsg(4326), network.crs)
    for checkpoint in plan.checkpoints:
        cx, cy = to_net.transform(checkpoint.lon, checkpoint.lat)
        near = shapely.distance(points, shapely.Point(cx, cy))
        reached[checkpoint.name] = bool(len(near) and near.min() <= checkpoint_m)
    return TrackScore(
        planned_m=float(lengths[plan.required].sum()),
        walked_m=float(lengths[covered].sum()),
        track_m=float(shapely.length(route)),
        inside_s=_time_inside(points, times, area, area_crs, network.crs),
        checkpoints=reached,
        points=len(xy),
        dropped_points=int((~keep).sum()),
    )


# -- pipeline ----------------------------------------------------------------


def _parse_gpx(path: Path, label: str) -> Any:
    import gpxpy
    import gpxpy.gpx

    if not path.is_file():
        raise InputError(f"{label}: no such file", field="track")
    if path.stat().st_size > MAX_GPX_BYTES:
        raise InputError(
            f"{label}: too large to read: more than {MAX_GPX_BYTES:,} bytes",
            field="track",
            status=413,
        )
    data = path.read_bytes()
    if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        raise InputError(f"{label}: GPX with a DOCTYPE or entities is not accepted", field="track")
    try:
        return gpxpy.parse(data.decode("utf-8-sig"))
    except (gpxpy.gpx.GPXException, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{label}: not a readable GPX file ({error})", field="track") from None


def _unshift(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "wgs84":
        return lon, lat
    if datum == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if datum == "bd09":
        return bd09_to_wgs84(lon, lat)
    raise InputError(f"datum {datum!r} is not one of wgs84, gcj02, bd09", field="datum")


def _project(lines: list[BaseGeometry], crs: CRS) -> BaseGeometry:
    series = gpd.GeoSeries(lines, crs="EPSG:4326").to_crs(crs)
    return shapely.MultiLineString(
        [g for g in series.values if g.geom_type == "LineString" and len(g.coords) >= 2]
    )


def _covered(
    network: StreetNetwork, route: BaseGeometry, tolerance_m: float, min_share: float
) -> np.ndarray:
    segments = network.segments.geometry.values
    if route.is_empty:
        return np.zeros(len(segments), dtype=bool)
    zone = shapely.buffer(route, tolerance_m)
    shapely.prepare(zone)
    near = shapely.intersects(zone, segments)
    shares = np.zeros(len(segments))
    if near.any():
        inside = shapely.intersection(segments[near], zone)
        shares[near] = shapely.length(inside) / np.maximum(shapely.length(segments[near]), 1e-9)
    covered: np.ndarray = shares >= min_share
    return covered


def _not_outliers(xy: np.ndarray, max_gap_m: float) -> np.ndarray:
    # A fix far from both neighbours whose neighbours are close to each other
    # is a multipath jump, not a walk.
    keep = np.ones(len(xy), dtype=bool)
    if len(xy) < 3:
        return keep
    before = np.hypot(*(xy[1:-1] - xy[:-2]).T)
    after = np.hypot(*(xy[2:] - xy[1:-1]).T)
    across = np.hypot(*(xy[2:] - xy[:-2]).T)
    keep[1:-1] = ~((before > max_gap_m / 2) & (after > max_gap_m / 2) & (across < max_gap_m / 2))
    return keep


def _runs(xy: np.ndarray, max_gap_m: float) -> list[np.ndarray]:
    if len(xy) < 2:
        return []
    step = np.hypot(*(xy[1:] - xy[:-1]).T)
    breaks = np.flatnonzero(step > max_gap_m) + 1
    return [run for run in np.split(xy, breaks) if len(run) >= 2]


def _time_inside(
    points: np.ndarray,
    times: list[datetime | None],
    area: BaseGeometry | None,
    area_crs: CRS | str,
    crs: CRS,
) -> float | None:
    if area is None or not times or any(t is None for t in times):
        return None
    unit = gpd.GeoSeries([area], crs=area_crs).to_crs(crs).iloc[0]
    inside = shapely.covers(unit, points)
    total = 0.0
    for k in range(1, len(points)):
        a, b = times[k - 1], times[k]
        if inside[k - 1] and inside[k] and a is not None and b is not None:
            total += max((b - a).total_seconds(), 0.0)
    return total
