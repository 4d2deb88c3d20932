"""Street networks for patrol planning: noded segments in a metric CRS.

A :class:`StreetNetwork` is a table of *segments* — pieces of street between
two nodes (junctions, dead ends, points where a street crosses the unit's
boundary) — in a local projected CRS (metres), with integer node ids. It is
built from any line data:

- a line file GDAL reads (through the guarded reader :func:`gis.io.read_frame`,
  the format declared by the file's suffix), noded at every crossing (street
  centre-line data without grade-separation information);
- OSM PBF through pyrosm (:func:`read_network`), noded only where ways share
  a vertex, so bridges and tunnels do not become junctions.

Driving networks respect one-way streets when the data says so (``oneway``
``yes/true/1/-1/reverse``, ``junction=roundabout``); walking networks ignore
them. Zero-length pieces are dropped (counted in ``dropped``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import local_projected_crs
from gis.errors import InputError

__all__ = ["Mode", "StreetNetwork", "network_from_frame", "read_network"]

Mode = Literal["walk", "drive"]
MODES: tuple[str, ...] = ("walk", "drive")
#: Coordinates are snapped to this grid (metres) to find shared nodes.
SNAP_M = 0.01
_FORWARD = {"yes", "true", "1"}
_REVERSE = {"-1", "reverse"}


@dataclass(frozen=True)
class StreetNetwork:
    """Noded street segments in a projected CRS.

    Attributes
    ----------
    segments : GeoDataFrame
        One row per segment: ``u``, ``v`` (node ids, the geometry runs from
        ``u`` to ``v``), ``length`` (m), ``oneway`` (bool: only ``u``→``v``
        may be driven), ``name`` and the LineString geometry.
    nodes : ndarray
        ``(n, 2)`` node coordinates in ``crs``; node id = row.
    crs : pyproj.CRS
        The projected CRS (metres) of ``segments`` and ``nodes``.
    mode : {"walk", "drive"}
        Which traffic rules the network carries.
    dropped : int
        Zero-length pieces left out.
    islands_m : float
        Length of the streets left out because no street joins them to the
        largest connected part (footways in a private garden...).
    """

    segments: gpd.GeoDataFrame
    nodes: np.ndarray
    crs: CRS
    mode: Mode = "walk"
    dropped: int = field(default=0)
    islands_m: float = field(default=0.0)

    @property
    def directed(self) -> bool:
        """Whether some segment may be used in one direction only."""
        return bool(self.segments["oneway"].any())

    def nearest_node(self, x: float, y: float) -> int:
        """Return the id of the node nearest to ``(x, y)`` (in :attr:`crs`)."""
        d = np.hypot(self.nodes[:, 0] - x, self.nodes[:, 1] - y)
        return int(np.argmin(d))


def read_network(
    path: str | Path,
    *,
    mode: Mode = "walk",
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    largest_part: bool = True,
    label: str | None = None,
) -> StreetNetwork:
    """Read a street network from a line file or an OSM PBF.

    Parameters
    ----------
    path : str or Path
        ``*.osm.pbf`` (read with pyrosm) or any line file :func:`gis.io.read_frame`
        accepts (GeoJSON, GeoPackage, Shapefile, KML, FlatGeobuf, GeoParquet,
        CSV with WKT), with a CRS.
    mode : {"walk", "drive"}
        Walking ignores one-way streets; driving respects them.
    area : shapely geometry, optional
        The unit; streets crossing its edge are split there. A PBF is read
        only around it (1 km margin).
    area_crs : CRS or str
        The CRS of ``area`` (default WGS84).
    largest_part : bool
        Keep only the largest connected part (see :func:`network_from_frame`).
    label : str, optional
        How messages name the file.

    Raises
    ------
    InputError
        Unreadable file, no lines, no CRS, unknown mode.
    """
    _check_mode(mode)
    shown = label if label is not None else str(path)
    if str(path).lower().endswith(".pbf"):
        frame = _read_pbf(Path(path), shown, mode=mode, area=area, area_crs=area_crs)
        return network_from_frame(
            frame,
            mode=mode,
            area=area,
            area_crs=area_crs,
            node_crossings=False,
            largest_part=largest_part,
            label=shown,
        )
    from gis.io import read_frame

    frame = read_frame(path, label=shown)
    return network_from_frame(
        frame, mode=mode, area=area, area_crs=area_crs, largest_part=largest_part, label=shown
    )


def network_from_frame(
    frame: gpd.GeoDataFrame,
    *,
    mode: Mode = "walk",
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    node_crossings: bool = True,
    crs: CRS | None = None,
    largest_part: bool = True,
    label: str = "network",
) -> StreetNetwork:
    """Build a noded network from line features.

    Parameters
    ----------
    frame : GeoDataFrame
        Lines (LineString/MultiLineString; other geometries are ignored) with
        a CRS; optional columns ``oneway``, ``junction``, ``name``.
    mode : {"walk", "drive"}
        Driving respects one-way streets.
    area : shapely geometry, optional
        Streets crossing its edge are split there (in ``area_crs``).
    area_crs : CRS or str
        CRS of ``area``.
    node_crossings : bool
        Node lines wherever they cross (``False``: only at shared vertices,
        for OSM data whose bridges do not meet the streets below).
    crs : pyproj.CRS, optional
        The projected CRS to work in (default: chosen around the data).
    largest_part : bool
        Keep only the largest connected part of the streets (default): real
        data has unconnected fragments no patrol can reach. ``False`` keeps
        everything; planning then refuses pieces no street connects.
    label : str
        How messages name the data.

    Raises
    ------
    InputError
        No CRS, no lines, or nothing left after dropping zero-length lines.
    """
    _check_mode(mode)
    if frame.crs is None:
        raise InputError(f"{label}: the street data has no CRS", field="crs")
    lines = _lines(frame, label)
    if crs is None:
        centre = lines.to_crs("EPSG:4326").geometry.union_all().centroid
        crs = local_projected_crs(centre.x, centre.y)
    lines = lines.to_crs(crs)
    oneway = _oneway(lines) if mode == "drive" else np.zeros(len(lines), dtype=np.int8)
    names = (
        lines["name"].astype(object).where(lines["name"].notna(), None)
        if "name" in lines
        else pd.Series([None] * len(lines), index=lines.index)
    )
    table = gpd.GeoDataFrame(
        {"oneway": oneway, "name": names.values}, geometry=lines.geometry.values, crs=crs
    )
    # A reverse one-way street is turned around so "oneway" always means u→v.
    reverse = table["oneway"].to_numpy() < 0
    if reverse.any():
        table.loc[reverse, "geometry"] = shapely.reverse(table.geometry.values[reverse])
    table["oneway"] = table["oneway"] != 0
    if node_crossings:
        table = _node_crossings(table)
    if area is not None:
        cut = gpd.GeoSeries([area], crs=area_crs).to_crs(crs).iloc[0]
        table = _split_at(table, shapely.boundary(cut))
    network = _assemble(table, crs=crs, mode=mode, label=label)
    return _largest_part(network) if largest_part else network


def _largest_part(network: StreetNetwork) -> StreetNetwork:
    import networkx as nx

    # Driving with one-way streets: the largest *strongly* connected part
    # (a one-way street cut by the edge of the data cannot be left).
    seg = network.segments
    u = seg["u"].to_numpy().tolist()
    v = seg["v"].to_numpy().tolist()
    oneway = seg["oneway"].to_numpy()
    graph: nx.Graph
    if network.mode == "drive" and oneway.any():
        graph = nx.DiGraph()
        graph.add_edges_from(zip(u, v, strict=True))
        graph.add_edges_from((b, a) for a, b, o in zip(u, v, oneway, strict=True) if not o)
        parts = list(nx.strongly_connected_components(graph))
    else:
        graph = nx.Graph()
        graph.add_edges_from(zip(u, v, strict=True))
        parts = list(nx.connected_components(graph))
    if len(parts) == 1:
        return network
    lengths = seg["length"].to_numpy()
    owner = {n: k for k, part in enumerate(parts) for n in part}
    part_u = np.array([owner[n] for n in u])
    part_v = np.array([owner[n] for n in v])
    inner = part_u == part_v
    totals = np.bincount(part_u[inner], weights=lengths[inner], minlength=len(parts))
    if not totals.any():
        raise InputError(
            "no street can be driven in a closed route: the one-way streets lead nowhere "
            "(check the one-way data or plan on foot with mode walk)",
            field="network",
        )
    keep = inner & (part_u == int(np.argmax(totals)))
    used, ids = np.unique(np.concatenate([seg["u"][keep], seg["v"][keep]]), return_inverse=True)
    kept = seg[keep].copy()
    kept["u"] = ids[: keep.sum()]
    kept["v"] = ids[keep.sum() :]
    return StreetNetwork(
        kept.reset_index(drop=True),
        network.nodes[used],
        network.crs,
        network.mode,
        network.dropped,
        network.islands_m + float(lengths[~keep].sum()),
    )


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of walk, drive", field="mode")


def _read_pbf(
    path: Path, label: str, *, mode: Mode, area: BaseGeometry | None, area_crs: CRS | str
) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise InputError(f"{label}: no such file", field="network")
    with path.open("rb") as handle:
        head = handle.read(16)
    # An OSM PBF starts with a 4-byte header length, then the "OSMHeader" blob type.
    if b"OSMHeader" not in head:
        raise InputError(f"{label}: not an OSM PBF file", field="network")
    try:
        import pyrosm
    except ImportError:  # pragma: no cover - pyrosm is installed with the dev extras
        raise InputError(
            "reading OSM PBF needs pyrosm (pip install pyrosm)", field="network"
        ) from None
    bbox = None
    if area is not None:
        wgs = gpd.GeoSeries([area], crs=area_crs).to_crs("EPSG:4326")
        local = local_projected_crs(*wgs.union_all().centroid.coords[0])
        bbox = wgs.to_crs(local).buffer(1000).to_crs("EPSG:4326").iloc[0]
    try:
        osm = pyrosm.OSM(str(path), bounding_box=bbox)
        frame = osm.get_network(network_type="driving" if mode == "drive" else "walking")
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        raise InputError(f"{label}: cannot read the OSM PBF ({error})", field="network") from None
    if frame is None or len(frame) == 0:
        raise InputError(f"{label}: has no streets here", field="network")
    return frame.set_crs("EPSG:4326", allow_override=True)


def _lines(frame: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    keep = frame[frame.geometry.notna()]
    keep = keep[keep.geometry.geom_type.isin(["LineString", "MultiLineString"])]
    if len(keep) == 0:
        found = frame.geometry.geom_type.fillna("None").value_counts()
        what = ", ".join(f"{t} x {n}" for t, n in found.items()) or "nothing"
        raise InputError(f"{label}: has no lines (found {what})", field="network")
    exploded = keep.explode(index_parts=False, ignore_index=True)
    return exploded[~exploded.geometry.is_empty]


def _oneway(lines: gpd.GeoDataFrame) -> np.ndarray:
    # +1: u→v only, -1: v→u only, 0: both ways.
    out = np.zeros(len(lines), dtype=np.int8)
    if "oneway" in lines:
        text = lines["oneway"].astype(str).str.strip().str.lower()
        out[text.isin(_FORWARD).to_numpy()] = 1
        out[text.isin(_REVERSE).to_numpy()] = -1
    if "junction" in lines:
        ring = lines["junction"].astype(str).str.lower().isin(["roundabout", "circular"])
        out[ring.to_numpy() & (out == 0)] = 1
    return out


def _node_crossings(table: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # GEOS nodes the union at every crossing; each piece takes the
    # attributes (and direction) of the line it lies on.
    pieces = shapely.get_parts(shapely.union_all(table.geometry.values))
    pieces = pieces[shapely.get_type_id(pieces) == 1]
    mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
    tree = shapely.STRtree(table.geometry.values)
    found, owner = tree.query_nearest(mids, all_matches=False)
    order = np.argsort(found)
    owner = owner[order]
    pieces = pieces[found[order]]
    # Piece direction along its owner: reverse those running backwards.
    lines = table.geometry.values[owner]
    start = shapely.line_locate_point(lines, shapely.get_point(pieces, 0))
    end = shapely.line_locate_point(lines, shapely.get_point(pieces, -1))
    backwards = end < start
    pieces = np.where(backwards, shapely.reverse(pieces), pieces)
    return gpd.GeoDataFrame(
        {
            "oneway": table["oneway"].to_numpy()[owner],
            "name": table["name"].to_numpy()[owner],
        },
        geometry=pieces,
        crs=table.crs,
    )


def _split_at(table: gpd.GeoDataFrame, edge: BaseGeometry) -> gpd.GeoDataFrame:
    crossing = shapely.intersects(table.geometry.values, edge) & ~shapely.touches(
        table.geometry.values, edge
    )
    if not crossing.any():
        return table
    rows = []
    for index in np.flatnonzero(crossing):
        line = table.geometry.values[index]
        cut = shapely.difference(line, edge)
        parts = [p for p in shapely.get_parts(cut) if p.geom_type == "LineString"]
        parts = [p for p in parts if not p.is_empty]
        for part in _ordered(line, parts):
            rows.append((index, part))
    keep = table[~crossing]
    extra = gpd.GeoDataFrame(
        {
            "oneway": [table["oneway"].iloc[i] for i, _ in rows],
            "name": [table["name"].iloc[i] for i, _ in rows],
        },
        geometry=[p for _, p in rows],
        crs=table.crs,
    )
    return gpd.GeoDataFrame(pd.concat([keep, extra], ignore_index=True), crs=table.crs)


def _ordered(line: BaseGeometry, parts: list[BaseGeometry]) -> list[BaseGeometry]:
    out = []
    for part in parts:
        a = line.project(shapely.get_point(part, 0))
        b = line.project(shapely.get_point(part, -1))
        out.append(shapely.reverse(part) if b < a else part)
    return out


def _assemble(table: gpd.GeoDataFrame, *, crs: CRS, mode: Mode, label: str) -> StreetNetwork:
    geoms = table.geometry.values
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    keys = np.round(coords / SNAP_M).astype(np.int64)
    _, vertex_id, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    vertex_id = vertex_id.reshape(-1)
    # A vertex is a node where lines meet (used more than once) or a line ends.
    first = np.r_[True, owner[1:] != owner[:-1]]
    last = np.r_[owner[1:] != owner[:-1], True]
    is_node = (counts[vertex_id] > 1) | first | last
    pieces: list[tuple[int, np.ndarray, np.ndarray]] = []
    starts = np.flatnonzero(first)
    ends = np.flatnonzero(last)
    for row, (s, e) in enumerate(zip(starts, ends, strict=True)):
        cuts = s + np.flatnonzero(is_node[s : e + 1])
        for a, b in itertools.pairwise(cuts):
            pieces.append((row, coords[a : b + 1], vertex_id[[a, b]]))
    if not pieces:
        raise InputError(f"{label}: has no street segments", field="network")
    rows = np.array([p[0] for p in pieces])
    sizes = np.array([len(p[1]) for p in pieces])
    lines = shapely.linestrings(
        np.concatenate([p[1] for p in pieces]), indices=np.repeat(np.arange(len(pieces)), sizes)
    )
    lengths = shapely.length(lines)
    ends_uv = np.array([p[2] for p in pieces])
    zero = lengths < SNAP_M
    dropped = int(zero.sum())
    keep = ~zero
    if not keep.any():
        raise InputError(f"{label}: every street segment has zero length", field="network")
    used, node_ids = np.unique(ends_uv[keep], return_inverse=True)
    node_ids = node_ids.reshape(-1, 2)
    vertex_xy = np.zeros((counts.size, 2))
    vertex_xy[vertex_id] = coords
    segments = gpd.GeoDataFrame(
        {
            "u": node_ids[:, 0],
            "v": node_ids[:, 1],
            "length": lengths[keep],
            "oneway": table["oneway"].to_numpy()[rows[keep]].astype(bool),
            "name": table["name"].to_numpy()[rows[keep]],
        },
        geometry=lines[keep],
        crs=crs,
    )
    return StreetNetwork(segments, vertex_xy[used], crs, mode, dropped)
