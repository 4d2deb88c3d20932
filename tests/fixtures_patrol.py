"""Street networks for the patrol tests: tiny hand-drawn ones, random grids, real data."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from pyproj import CRS

from gis.patrol import StreetNetwork, network_from_frame

MONACO_PBF = Path(__file__).resolve().parents[2] / "shared" / "data" / "monaco" / "monaco.osm.pbf"
#: UTM 50N: the tiny networks are drawn in metres near Quanzhou.
UTM = CRS.from_epsg(32650)
X0, Y0 = 660_000.0, 2_755_000.0


def lines_frame(
    lines: Sequence[Sequence[tuple[float, float]]], *, oneway: list[str] | None = None
) -> gpd.GeoDataFrame:
    """Return lines drawn in metres (offset to UTM 50N) as a frame."""
    geoms = [shapely.LineString([(X0 + x, Y0 + y) for x, y in line]) for line in lines]
    data = {"name": [f"街{i}" for i in range(len(lines))]}
    if oneway is not None:
        data["oneway"] = oneway
    return gpd.GeoDataFrame(data, geometry=geoms, crs=UTM)


def tiny(
    lines: Sequence[Sequence[tuple[float, float]]],
    *,
    oneway: list[str] | None = None,
    mode: str = "walk",
    largest_part: bool = True,
) -> StreetNetwork:
    """Build a network from hand-drawn lines (metres), in UTM so lengths stay exact."""
    return network_from_frame(
        lines_frame(lines, oneway=oneway),
        mode=mode,  # type: ignore[arg-type]
        crs=UTM,
        largest_part=largest_part,
    )


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Return WGS84 lon/lat of a hand-drawn point."""
    from gis.crs import transformer

    lon, lat = transformer(UTM, CRS.from_epsg(4326)).transform(X0 + x, Y0 + y)
    return float(lon), float(lat)


def nx_graph(network: StreetNetwork) -> nx.MultiGraph:
    """Return the network as a networkx multigraph with ``weight`` = length."""
    graph = nx.MultiGraph()
    seg = network.segments
    for u, v, w in zip(seg["u"], seg["v"], seg["length"], strict=True):
        graph.add_edge(int(u), int(v), weight=float(w))
    return graph


def eulerize_length(network: StreetNetwork) -> float:
    """Length of networkx ``eulerize`` + ``eulerian_circuit`` on the whole network."""
    graph = nx_graph(network)
    shortest: dict[tuple[int, int], float] = {}
    for u, v, w in graph.edges(data="weight"):
        for key in ((u, v), (v, u)):
            shortest[key] = min(shortest.get(key, np.inf), w)
    euler = nx.eulerize(nx.MultiGraph(graph))
    total = 0.0
    for u, v, key in nx.eulerian_circuit(euler, keys=True):
        # eulerize adds its copies without attributes: they are the shortest street.
        total += euler[u][v][key].get("weight", shortest[(u, v)])
    return total


def brute_force_length(network: StreetNetwork) -> float:
    """Return the undirected postman optimum by enumerating every pairing of odd nodes."""
    graph = nx_graph(network)
    simple = nx.Graph()
    for u, v, w in graph.edges(data="weight"):
        if not simple.has_edge(u, v) or simple[u][v]["weight"] > w:
            simple.add_edge(u, v, weight=w)
    odd = [n for n, d in graph.degree() if d % 2]
    dist = dict(nx.all_pairs_dijkstra_path_length(simple, weight="weight"))
    street = float(network.segments["length"].sum())
    return street + _best_pairing(odd, dist)


def _best_pairing(nodes: list[int], dist: dict[int, dict[int, float]]) -> float:
    if not nodes:
        return 0.0
    first, rest = nodes[0], nodes[1:]
    best = np.inf
    for i, partner in enumerate(rest):
        remaining = rest[:i] + rest[i + 1 :]
        best = min(best, dist[first][partner] + _best_pairing(remaining, dist))
    return float(best)


def grid_lines(
    keep: list[bool], *, width: int, height: int, spacing: float = 100.0
) -> list[list[tuple[float, float]]]:
    """Street segments of a ``width`` x ``height`` node grid, those with ``keep`` set."""
    edges = []
    for x, y in itertools.product(range(width), range(height)):
        if x + 1 < width:
            edges.append([(x * spacing, y * spacing), ((x + 1) * spacing, y * spacing)])
        if y + 1 < height:
            edges.append([(x * spacing, y * spacing), (x * spacing, (y + 1) * spacing)])
    return [e for e, k in zip(edges, itertools.cycle(keep), strict=False) if k]


#: The GPX 1.1 schema (TopoGrafix), kept with the tests (see its README).
GPX_XSD = Path(__file__).resolve().parent / "data" / "gpx-1.1.xsd"


def validate_gpx11(document: bytes | str) -> None:
    """Raise unless ``document`` is valid GPX 1.1 (the schema; extensions are lax there)."""
    import xmlschema

    schema = xmlschema.XMLSchema(str(GPX_XSD))
    text = document.decode("utf-8") if isinstance(document, bytes) else document
    schema.validate(text)
