r"""Build synthetic places for the sample city: buildings, households, points of interest.

Everything written here is synthetic. It is generated from the committed
layers of ``boundaries/licheng/`` (micro-grids and their ``households`` and
``population``, grids, communities, streets, police beats) and from the
synthetic street network of ``build_sample_city.py``, regenerated with the
same seed (the micro-grids are unions of its faces, so buildings can keep
off its roads and lanes). The layer files are read, never written.

How to run
----------
With the project's venv (numpy, shapely, pyproj, geopandas, pyarrow)::

    # licheng/governance + police -> licheng/places/*
    /work/main/.venv/bin/python boundaries/build_sample_places.py

    # rebuild into a temporary folder and compare with licheng/places/ byte for byte
    /work/main/.venv/bin/python boundaries/build_sample_places.py --check

Outputs in ``licheng/places/``:

``buildings.parquet``
    GeoParquet (EPSG:4490) of building footprints: ``key``, ``address``,
    ``road``, ``number``, ``building_no``, ``floors``, ``households``, ``use``,
    ``entrance_lon``, ``entrance_lat``.
``households.parquet``
    One row per household: ``key``, ``building_key``, ``unit_no``, ``floor``,
    ``room``, ``persons``. No names, no identity numbers.
``pois.geojson``
    Points of interest (EPSG:4490): ``key``, ``name``, ``category``,
    ``address``, ``building_key``.
``cut_buildings.json``, ``outside_buildings.json``
    The deliberate feature-integrity faults: buildings that straddle a
    micro-grid or grid boundary, and buildings just outside the district.

The build checks every promise (households per micro-grid, valid footprints,
containment, the listed straddles, no overlaps, unique keys and addresses)
and fails loudly if one is broken. Its output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.ops import nearest_points, substring

try:
    from boundaries import build_sample_city as city
except ModuleNotFoundError:  # run as a file without the project installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from boundaries import build_sample_city as city

PLACES = city.CITY / "places"
SEED = city.SEED  # the street network is regenerated with the city's own seed
PLACES_SEED = (city.SEED, 2)  # everything else draws from a stream of its own
PREFIX = "福建省泉州市鲤城区"
DECIMALS = city.DECIMALS

OLD_CITY = (118.586, 24.909)  # centre of the old city (古城), as in DENSITY_CENTRES
OLD_CITY_RADIUS = 1600.0  # metres: low-rise dense core inside
ARTERIAL_SETBACK = 6.0  # buildings keep this far from an arterial's centre line
CUT_SHARE = 0.005  # share of buildings that deliberately straddle a unit boundary
OUTSIDE_COUNT = 5  # buildings deliberately put just outside the district
NO_ENTRANCE = 0.3  # share of buildings without an entrance point

FloatArray = np.ndarray
XY = tuple[float, float]


@dataclass(frozen=True)
class Typology:
    """How the homes of one micro-grid are built.

    Attributes
    ----------
    setback : float
        Distance (m) kept from every road or lane centre line.
    cell : ((float, float), (float, float))
        Range of the lattice cell along and across the block (m).
    size : ((float, float), (float, float))
        Range of a footprint's sides along and across (m); a side never
        exceeds the cell minus ``gap``.
    gap : float
        Minimum distance between two buildings (m).
    floors : (int, int)
        Range of floors.
    lshape : float
        Probability of an L-shaped footprint.
    households : float
        Typical households per building (sets how many buildings there are).
    jitter : float
        Random rotation of a footprint (degrees).
    estate : bool
        Buildings of a micro-grid form one estate (小区): one 门牌号, 楼栋号 1幢...
    """

    setback: float
    cell: tuple[tuple[float, float], tuple[float, float]]
    size: tuple[tuple[float, float], tuple[float, float]]
    gap: float
    floors: tuple[int, int]
    lshape: float
    households: float
    jitter: float
    estate: bool


TYPOLOGIES = {
    # 老城区: 2-7 storey houses and shophouses, 1-3 households a floor, lanes ~5 m wide
    "old": Typology(2.5, ((9.0, 14.0), (10.0, 16.0)), ((6.0, 13.0), (7.0, 15.0)), 1.0,
                    (2, 7), 0.15, 3.0, 0.0, False),
    # 城中村 / 自建房: free-standing 2-6 storey village houses
    "village": Typology(3.0, ((15.0, 20.0), (16.0, 22.0)), ((9.0, 13.0), (10.0, 15.0)), 3.0,
                        (2, 6), 0.2, 3.0, 3.0, False),
    # 多层小区 (1980s-2000s): 5-9 storey walk-ups in rows, 1-3 stairwells (单元)
    "walkup": Typology(5.0, ((30.0, 46.0), (24.0, 30.0)), ((18.0, 40.0), (10.0, 14.0)), 8.0,
                       (5, 9), 0.1, 24.0, 0.0, True),
    # 高层小区 (since ~2005): 18-33 storey towers
    "highrise": Typology(8.0, ((44.0, 56.0), (44.0, 56.0)), ((18.0, 32.0), (15.0, 22.0)), 15.0,
                         (18, 33), 0.3, 66.0, 2.0, True),
    # last resort where nothing else fits: point towers, 4 households a floor
    "tower": Typology(4.0, ((26.0, 32.0), (26.0, 32.0)), ((16.0, 22.0), (15.0, 20.0)), 8.0,
                      (18, 33), 0.0, 80.0, 0.0, True),
    # very last resort, for thin leftover strips: houses dropped in one by one, up to 9 floors
    "infill": Typology(1.5, ((0.0, 0.0), (0.0, 0.0)), ((6.0, 12.0), (6.0, 12.0)), 1.0,
                       (2, 9), 0.0, 4.0, 0.0, False),
}
INFILL_ARTERIAL_SETBACK = 4.0
FALLBACK = {"old": ("walkup", "highrise", "village", "tower", "infill"),
            "village": ("walkup", "highrise", "old", "tower", "infill"),
            "walkup": ("highrise", "old", "village", "tower", "infill"),
            "highrise": ("walkup", "old", "village", "tower", "infill")}
ROOM_PER_HOUSEHOLD = 50.0  # m² of buildable land an institution must leave per household

# Non-residential parts: (use, (along m), (across m), (floors)).
Part = tuple[str, tuple[float, float], tuple[float, float], tuple[int, int]]
CAMPUSES: dict[str, tuple[Part, ...]] = {
    "中学": (("school", (30, 40), (12, 16), (4, 5)), ("school", (30, 40), (12, 16), (4, 5)),
           ("school", (20, 30), (15, 22), (2, 3)), ("school", (16, 24), (10, 14), (5, 6))),
    "小学": (("school", (28, 38), (11, 15), (3, 5)), ("school", (24, 34), (11, 15), (3, 4)),
           ("school", (18, 26), (14, 20), (2, 2))),
    "幼儿园": (("school", (18, 28), (14, 22), (2, 3)),),
    "医院": (("hospital", (30, 40), (18, 26), (8, 16)), ("hospital", (25, 40), (15, 24), (4, 6)),
           ("hospital", (14, 22), (10, 14), (2, 4))),
    "卫生服务中心": (("hospital", (18, 28), (12, 18), (3, 5)),),
    "服务中心": (("office", (14, 24), (10, 16), (3, 5)),),
    "派出所": (("office", (18, 30), (12, 18), (4, 6)),),
    "企业": (("factory", (25, 40), (20, 40), (1, 4)), ("factory", (20, 36), (14, 28), (2, 5))),
    "工业园": tuple(("factory", (25, 40), (20, 40), (1, 4)) for _ in range(6)),
    "商场": (("shop", (15, 35), (12, 30), (1, 3)),),
    "写字楼": (("office", (15, 30), (12, 20), (5, 12)),),
}
INSTITUTION_SETBACK = 5.0
INSTITUTION_GAP = 6.0

# Road names: bases of local flavour (many are place names of the district; a
# few coincide with real Quanzhou roads, but every position is synthetic).
ARTERIAL_BASES = (
    "温陵", "中山", "新华", "刺桐", "紫云", "清源", "笋江", "江滨", "金山", "常泰", "聚宝",
    "古榕", "桂坛", "承天", "通淮", "泉秀", "鲤城", "滨江", "环城", "凤凰", "宝洲", "湖心",
    "新步", "金龙", "龙岭", "华星", "华塑", "霞洲", "坂头", "仙景", "岐山", "双塔", "东岳",
    "西湖", "北峰", "南环", "津头", "江南", "锦美", "乌石", "登峰", "亭店", "明光", "五星",
    "仙塘", "树兜", "高山", "赤土", "玉霞", "梅山", "延陵", "田中", "黄石", "金浦", "东浦",
    "王宫", "开元", "浮桥", "东湖", "象峰", "后坑", "曾林", "龙门", "紫帽", "晋光", "德济",
)
LANE_FIRST = ("井亭书花竹桂榕柳梅兰松菊莲桃金银玉宝福寿康宁安平和兴荣华仁义礼德文孝忠信泰丰"
              "新古三五七九龙凤鹤云霞清")
LANE_SECOND = "井亭坊园苑塘桥池林埕坂厝埔兜山溪田湖门楼坛宫头尾"
DIRECTIONS = {2: ("{0}", "{1}"), 3: ("{0}", "中", "{1}")}

# Key enterprises: trade names and industries typical of Quanzhou (invented firms).
TRADE_NAMES = ("鸿泰", "金源", "华兴", "永信", "恒达", "鑫盛", "联丰", "德隆", "嘉禾", "宏远",
               "瑞丰", "泰和", "新艺", "荣昌", "闽兴", "海峰", "源利", "正大", "裕华", "协和",
               "天成", "万利", "明辉", "东方")
INDUSTRIES = ("鞋业", "纺织", "服装", "食品", "机械", "包装", "石材", "电子", "陶瓷", "工艺品",
              "五金", "印刷")

# Household size (1..6 persons) shape, close to the 2020 census; tilted to each
# micro-grid's people per household, then nudged so the sum is its population.
HOUSEHOLD_SIZE = np.array([0.25, 0.30, 0.21, 0.13, 0.06, 0.05])


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


@dataclass
class Unit:
    """A unit read from a committed layer (geometry both stored and in metres)."""

    code: str
    name: str
    kind: str
    households: int
    population: int
    geom: Any  # EPSG:4490 as stored
    metres: Any


@dataclass
class Inputs:
    """Everything the places are built from."""

    proj: city.Projection
    outline: Any  # county, metres
    county: Unit
    levels: dict[str, dict[str, Unit]]  # level name -> code -> unit
    beat_of: dict[str, str]  # micro-grid code -> beat code
    faces: list[Any]  # street-network faces, metres
    faces_of: dict[str, list[int]]  # micro-grid code -> its faces
    arterials: Any  # union of arterial centre lines, metres


def read_layer(path: Path, proj: city.Projection) -> dict[str, Unit]:
    """Read one committed GeoJSON layer.

    Parameters
    ----------
    path : Path
        A layer file of the sample city.
    proj : Projection
        The city's projection (to metres).

    Returns
    -------
    dict of str to Unit
        Units by code, in file order.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    geoms = np.array([shapely.from_geojson(json.dumps(f["geometry"])) for f in data["features"]])
    metres = proj.to_metres(geoms)
    units = {}
    for f, g, m in zip(data["features"], geoms, metres, strict=True):
        p = f["properties"]
        units[p["code"]] = Unit(p["code"], p["name"], p["kind"], p["households"],
                                p["population"], g, m)
    return units


def load() -> Inputs:
    """Read the committed layers and regenerate the street network they were built on.

    Returns
    -------
    Inputs

    Raises
    ------
    SystemExit
        If the regenerated faces do not tile the committed micro-grids (the
        layers were built by another version of ``build_sample_city.py``).
    """
    outline_deg = city.read_outline()
    proj = city.Projection.around(outline_deg.centroid.x)
    outline = proj.to_metres(outline_deg)
    levels = {name: read_layer(city.CITY / "governance" / f"{name}.geojson", proj)
              for name in ("county", "street", "community", "grid", "micro_grid")}
    for name in ("station", "beat"):
        levels[name] = read_layer(city.CITY / "police" / f"{name}.geojson", proj)
    county = levels["county"][city.COUNTY_CODE]

    faces, _, _, _ = city.make_blocks(outline, proj, np.random.default_rng(SEED))
    micro = list(levels["micro_grid"].values())
    tree = shapely.STRtree([u.metres for u in micro])
    points = shapely.point_on_surface(np.array(faces, dtype=object))
    face_idx, micro_idx = tree.query(points, predicate="within")
    if len(face_idx) != len(faces) or len(set(face_idx.tolist())) != len(faces):
        raise SystemExit("the street network does not match the micro-grids: rebuild the city")
    faces_of: dict[str, list[int]] = defaultdict(list)
    for f, m in sorted(zip(face_idx.tolist(), micro_idx.tolist(), strict=True)):
        faces_of[micro[m].code].append(f)
    for u in micro:
        area = sum(faces[f].area for f in faces_of[u.code])
        if abs(area - u.metres.area) > 0.02 * u.metres.length:  # 7-decimal rounding: ~1 cm
            raise SystemExit(f"faces of {u.code} do not make up the micro-grid: rebuild the city")

    beats = list(levels["beat"].values())
    btree = shapely.STRtree([b.metres for b in beats])
    m_idx, b_idx = btree.query(shapely.point_on_surface([u.metres for u in micro]),
                               predicate="within")
    beat_of = {micro[m].code: beats[b].code for m, b in zip(m_idx, b_idx, strict=True)}

    roads = shapely.intersection(city.main_roads(outline, np.random.default_rng(SEED)), outline)
    arterials = shapely.union_all([r for r in roads if not r.is_empty])
    return Inputs(proj, outline, county, levels, beat_of, faces, dict(faces_of), arterials)


# --------------------------------------------------------------------------------------
# Roads: strokes of the street network, named
# --------------------------------------------------------------------------------------


@dataclass
class Road:
    """One named road piece (街路巷)."""

    name: str
    geom: Any  # LineString, metres, oriented west->east or north->south
    arterial: bool
    rank: int = 0  # order of the pieces of one name


def _direction(line: Any, at_start: bool) -> FloatArray:
    """Return the unit vector leaving ``line``'s start (or end) along it."""
    length = line.length
    d = min(10.0, length)
    a = shapely.line_interpolate_point(line, 0.0 if at_start else length)
    b = shapely.line_interpolate_point(line, d if at_start else length - d)
    v = np.array([b.x - a.x, b.y - a.y])
    return v / (np.hypot(*v) or 1.0)


def strokes(faces: list[Any], outline: Any) -> list[Any]:
    """Return the roads of the network as strokes: edges joined straight through junctions.

    Parameters
    ----------
    faces : list of Polygon
        Faces of the street network (metres).
    outline : Polygon
        The district (metres); its boundary is not a road.

    Returns
    -------
    list of LineString
        Each stroke follows one road through junctions where it continues
        within 30 degrees, the straightest pairs first.
    """
    merged = shapely.line_merge(shapely.union_all(shapely.boundary(np.array(faces, dtype=object))))
    edges = list(shapely.get_parts(merged))
    mids = shapely.line_interpolate_point(edges, 0.5, normalized=True)
    edges = [e for e, d in zip(edges, shapely.distance(outline.boundary, mids), strict=True)
             if d > 0.05]
    at: dict[XY, list[tuple[int, FloatArray]]] = defaultdict(list)
    for i, e in enumerate(edges):
        c = shapely.get_coordinates(e)
        for end, xy in ((True, c[0]), (False, c[-1])):
            at[(round(xy[0], 2), round(xy[1], 2))].append((i, _direction(e, end)))
    parent = list(range(len(edges)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    limit = math.cos(math.radians(30.0))
    for node in sorted(at):
        incident = at[node]
        pairs = sorted((float(np.dot(a[1], b[1])), a[0], b[0])
                       for k, a in enumerate(incident) for b in incident[k + 1:])
        used: set[int] = set()
        for dot, i, j in pairs:
            if -dot >= limit and i not in used and j not in used and i != j:
                used.update((i, j))
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(edges)):
        groups[find(i)].append(i)
    lines = []
    for members in groups.values():
        merged_line = shapely.line_merge(shapely.multilinestrings([edges[i] for i in members]))
        lines.extend(shapely.get_parts(merged_line))
    return [_orient(line) for line in lines]


def _orient(line: Any) -> Any:
    """Orient a line west->east (mostly east-west lines) or north->south."""
    c = shapely.get_coordinates(line)
    dx, dy = c[-1] - c[0]
    flip = dx < 0 if abs(dx) >= abs(dy) else dy > 0
    return shapely.reverse(line) if flip else line


def name_roads(lines: list[Any], arterials: Any, old_city: XY,
               rng: np.random.Generator) -> list[Road]:
    """Name the strokes: arterials 路/大道/街 (long ones split 东/西 or 北/中/南), lanes 巷/里/街.

    Parameters
    ----------
    lines : list of LineString
        Strokes (metres).
    arterials : Geometry
        Arterial centre lines (metres).
    old_city : (float, float)
        Old-city centre (metres): its arterials may be called 街.
    rng : numpy.random.Generator
        Seeded source of randomness.

    Returns
    -------
    list of Road
        Names are unique in the district.
    """
    lines = sorted(lines, key=lambda g: (-round(g.length, 1), *shapely.get_coordinates(g)[0]))
    near = arterials.buffer(1.5)
    share = shapely.length(shapely.intersection(lines, near)) / shapely.length(lines)
    is_art = share > 0.6
    roads: list[Road] = []
    used: set[str] = set()
    bases = list(ARTERIAL_BASES)
    rng.shuffle(bases)
    lane_bases = [a + b for a in LANE_FIRST for b in LANE_SECOND if a != b]
    rng.shuffle(lane_bases)
    # lanes are mostly 巷 (some 里), long lanes 街 or 路; every base is used once per pool
    pools = {"short": [b + ("里" if rng.random() < 0.2 else "巷") for b in lane_bases],
             "long": [b + ("路" if rng.random() < 0.5 else "街") for b in lane_bases[::-1]]}
    for k, line in enumerate(lines[i] for i in np.flatnonzero(is_art)):
        base = bases.pop()
        mid = line.interpolate(0.5, normalized=True)
        in_old = math.dist((mid.x, mid.y), old_city) < OLD_CITY_RADIUS
        kind = "大道" if k < 2 else ("街" if in_old and rng.random() < 0.5 else "路")
        pieces = 1 if line.length < 3000 or kind != "路" else min(3, math.ceil(line.length / 3000))
        c = shapely.get_coordinates(line)
        east_west = abs(c[-1, 0] - c[0, 0]) >= abs(c[-1, 1] - c[0, 1])
        if pieces == 1:
            names = [base + kind]
        else:
            ends = ("西", "东") if east_west else ("北", "南")
            names = [base + d.format(*ends) + kind for d in DIRECTIONS[pieces]]
        for rank, name in enumerate(names):
            part = substring(line, line.length * rank / pieces,
                                         line.length * (rank + 1) / pieces)
            roads.append(Road(name, part, True, rank))
            used.add(name)
    art_roads = list(roads)
    art_tree = shapely.STRtree([r.geom for r in art_roads])
    numbered: dict[int, list[tuple[float, int]]] = defaultdict(list)
    lanes = [lines[i] for i in np.flatnonzero(~is_art)]
    for line in lanes:
        c = shapely.get_coordinates(line)
        touching = sorted(set(art_tree.query(shapely.multipoints([c[0], c[-1]]),
                                             predicate="dwithin", distance=1.0).tolist()))
        if touching and line.length < 250 and rng.random() < 0.5:
            a = touching[0]
            numbered[a].append((float(art_roads[a].geom.project(shapely.Point(c[0]))),
                                len(roads)))
            roads.append(Road("", line, False))
            continue
        pool = pools["long" if line.length >= 300 else "short"]
        while (name := pool.pop()) in used:
            pass
        used.add(name)
        roads.append(Road(name, line, False))
    for a in sorted(numbered):
        for n, (_, r) in enumerate(sorted(numbered[a]), start=1):
            roads[r].name = f"{art_roads[a].name}{n}巷"
    if len({r.name for r in roads if not r.arterial}) != sum(not r.arterial for r in roads):
        raise SystemExit("lane names are not unique")
    return roads


# --------------------------------------------------------------------------------------
# Buildings
# --------------------------------------------------------------------------------------


@dataclass
class Building:
    """One building while it is being built (geometry in metres)."""

    micro: str
    geom: Any
    use: str
    typology: str
    floors: int = 1
    households: int = 0
    units: int = 1
    per_unit: int = 1
    group: str | None = None  # estate or campus id: its buildings share one 门牌号
    key: str = ""
    road: int = -1
    number: str = ""
    building_no: str | None = None
    entrance: Any = None
    faults: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    """A footprint that fits in a lattice cell of a block."""

    geom: Any
    along: float
    across: float
    front: float = 0.0  # distance to the edge of the buildable block (m)


def orientation(face: Any) -> float:
    """Return the angle (radians) of the long side of a face's oriented envelope."""
    c = shapely.get_coordinates(shapely.oriented_envelope(face))
    e1, e2 = c[1] - c[0], c[2] - c[1]
    e = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    return math.atan2(e[1], e[0])


def _frame(theta: float) -> FloatArray:
    """Rotation matrix taking row vectors from local (along, across) to map axes."""
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, s], [-s, c]])


def footprint(u: float, v: float, w: float, h: float, notch: tuple[float, float, int] | None,
              spin: float) -> FloatArray:
    """Return a footprint ring in local coordinates: rectangle, or L if ``notch``.

    Parameters
    ----------
    u, v : float
        Lower-left corner (local metres).
    w, h : float
        Sides along and across.
    notch : (float, float, int) or None
        Size of the corner cut out to make an L, and which corner (0-3).
    spin : float
        Rotation about the centre (radians).

    Returns
    -------
    numpy.ndarray
        Closed ring, counter-clockwise.
    """
    if notch is None:
        ring = np.array([[0, 0], [w, 0], [w, h], [0, h], [0, 0]], dtype=float)
    else:
        a, b, corner = notch
        ring = np.array([[0, 0], [w, 0], [w, h - b], [w - a, h - b], [w - a, h], [0, h], [0, 0]],
                        dtype=float)
        if corner & 1:
            ring[:, 0] = w - ring[:, 0]
        if corner & 2:
            ring[:, 1] = h - ring[:, 1]
        if (corner & 1) ^ (corner >> 1 & 1):
            ring = ring[::-1]
    centre = np.array([w / 2, h / 2])
    ring = (ring - centre) @ _frame(spin) + centre
    return ring + np.array([u, v])


def lattice(area: Any, theta: float, t: Typology, rng: np.random.Generator) -> list[Candidate]:
    """Return footprints, one per lattice cell, that fit in ``area``.

    The lattice is aligned with the block (``theta``), its cells have a random
    size in ``t.cell``; each footprint is a random rectangle (or L) in its cell
    at least ``t.gap`` from the cell's neighbours.
    """
    if area.is_empty or area.area < t.size[0][0] * t.size[1][0]:
        return []
    origin = np.array(shapely.get_coordinates(area.centroid)[0])
    rot = _frame(theta)
    local = shapely.transform(area, lambda c: (c - origin) @ rot.T)
    u0, v0, u1, v1 = local.bounds
    cw, ch = rng.uniform(*t.cell[0]), rng.uniform(*t.cell[1])
    u0 -= rng.uniform(0, cw)
    v0 -= rng.uniform(0, ch)
    nu, nv = math.ceil((u1 - u0) / cw), math.ceil((v1 - v0) / ch)
    n = nu * nv
    w = rng.uniform(t.size[0][0], min(t.size[0][1], cw - t.gap), n)
    h = rng.uniform(t.size[1][0], min(t.size[1][1], ch - t.gap), n)
    du = t.gap / 2 + rng.random(n) * (cw - t.gap - w)
    dv = t.gap / 2 + rng.random(n) * (ch - t.gap - h)
    ell = rng.random(n) < t.lshape
    notch = rng.uniform(0.35, 0.55, (n, 2))
    corner = rng.integers(0, 4, n)
    spin = np.radians(rng.uniform(-t.jitter, t.jitter, n))
    i, j = np.divmod(np.arange(n), nv)
    lower_left = np.column_stack([u0 + i * cw + du, v0 + j * ch + dv])
    size = np.column_stack([w, h])
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    c, s = np.cos(spin), np.sin(spin)
    turn = np.stack([np.column_stack([c, s]), np.column_stack([-s, c])], axis=1)
    rings = np.einsum("nkj,nji->nki", unit[None] * size[:, None] - size[:, None] / 2, turn)
    rings += size[:, None] / 2 + lower_left[:, None]
    polys = shapely.polygons(rings @ rot + origin)
    for k in np.flatnonzero(ell & (np.minimum(w, h) >= 9.0)):
        cut = (notch[k, 0] * w[k], notch[k, 1] * h[k], int(corner[k]))
        ring = footprint(lower_left[k, 0], lower_left[k, 1], w[k], h[k], cut, spin[k])
        polys[k] = shapely.Polygon(ring @ rot + origin)
    found = [Candidate(g, a, b) for g, a, b in zip(polys, w, h, strict=True)]
    shapely.prepare(area)
    keep = shapely.covers(area, [c.geom for c in found])
    # Where a footprint does not fit, try the smallest one, centred in its cell.
    w0, h0 = t.size[0][0], t.size[1][0]
    for k in np.flatnonzero(~keep):
        i, j = divmod(int(k), nv)
        ring = footprint(u0 + (i + 0.5) * cw - w0 / 2, v0 + (j + 0.5) * ch - h0 / 2, w0, h0,
                         None, 0.0)
        small = shapely.Polygon(ring @ rot + origin)
        if area.covers(small):
            found[k], keep[k] = Candidate(small, w0, h0), True
    geoms = [c.geom for c in found]
    front = shapely.distance(area.boundary, geoms)
    for c, d in zip(found, front, strict=True):
        c.front = float(d)
    return [c for c, ok in zip(found, keep, strict=True) if ok]


def darts(area: Any, t: Typology, rng: np.random.Generator, tries: int = 400
          ) -> list[Candidate]:
    """Return footprints dropped at random points of ``area``, kept if they fit and keep apart.

    Used where a lattice finds no room (thin or ragged leftovers): footprints
    are aligned with ``area`` itself, accepted one by one, ``t.gap`` apart.
    """
    if area.is_empty or area.area < t.size[0][0] * t.size[1][0]:
        return []
    theta = orientation(area)
    rot = _frame(theta)
    x0, y0, x1, y1 = area.bounds
    xy = rng.uniform((x0, y0), (x1, y1), (tries, 2))
    xy = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
    w = rng.uniform(*t.size[0], len(xy))
    h = rng.uniform(*t.size[1], len(xy))
    small = rng.random(len(xy)) < 0.5
    w[small], h[small] = t.size[0][0], t.size[1][0]
    polys = [shapely.Polygon(footprint(-a / 2, -b / 2, a, b, None, 0.0) @ rot + p)
             for p, a, b in zip(xy, w, h, strict=True)]
    shapely.prepare(area)
    fits = shapely.covers(area, polys)
    found: list[Candidate] = []
    for k in np.flatnonzero(fits):
        if all(polys[k].distance(c.geom) >= t.gap for c in found):
            found.append(Candidate(polys[k], float(w[k]), float(h[k])))
    front = shapely.distance(area.boundary, [c.geom for c in found])
    for c, d in zip(found, front, strict=True):
        c.front = float(d)
    return found


def layout(typology: str, c: Candidate) -> tuple[int, int, int]:
    """Return ``(units, households per unit and floor, max floors)`` for a footprint."""
    area = c.geom.area
    if typology == "old":
        return 1, int(np.clip(area // 70, 1, 3)), 7
    if typology == "village":
        return 1, 1 if area < 110 else 2, 6
    if typology == "walkup":
        return int(np.clip(round(c.along / 13.0), 1, 3)), 2, 9
    if typology == "tower":
        return 2, 2, 33
    if typology == "infill":
        return 1, int(np.clip(area // 60, 1, 4)), 9
    per_floor = 2 if area < 350 else 3 if area < 500 else 4
    return (2, 2, 33) if per_floor == 4 else (1, per_floor, 33)


def share_out(total: int, caps: Sequence[int], weights: FloatArray) -> list[int]:
    """Share ``total`` among bins, each 1..cap, in proportion to ``weights``.

    Raises
    ------
    ValueError
        If ``total`` does not fit (fewer than one per bin, or over the caps).
    """
    caps_arr = np.asarray(caps)
    if not len(caps_arr) <= total <= caps_arr.sum():
        raise ValueError(f"{total} does not fit in {len(caps_arr)} bins of {caps_arr.sum()}")
    share = np.clip(np.floor(weights / weights.sum() * total).astype(int), 1, caps_arr)
    while share.sum() < total:
        share[int(np.argmax((caps_arr - share) / caps_arr))] += 1
    while share.sum() > total:
        share[int(np.argmax(np.where(share > 1, share / caps_arr, -1.0)))] -= 1
    return share.tolist()


class Placer:
    """Places the buildings of every micro-grid in the blocks of the street network."""

    def __init__(self, inputs: Inputs, rng: np.random.Generator) -> None:
        self.inputs = inputs
        self.rng = rng
        self.art_zone = inputs.arterials.buffer(ARTERIAL_SETBACK)
        self.infill_zone = inputs.arterials.buffer(INFILL_ARTERIAL_SETBACK)
        shapely.prepare(self.art_zone)
        shapely.prepare(self.infill_zone)
        self.reserved: dict[str, Any] = {}  # micro-grid -> area taken by institutions
        self.buildings: dict[str, list[Building]] = defaultdict(list)
        self.old_centre = inputs.proj.point(*OLD_CITY)

    def blocks(self, code: str, setback: float, infill: bool = False) -> list[tuple[Any, float]]:
        """Return the buildable part of each face of a micro-grid, and its orientation."""
        found = []
        zone = self.infill_zone if infill else self.art_zone
        for f in self.inputs.faces_of[code]:
            face = self.inputs.faces[f]
            inner = face.buffer(-setback, join_style="mitre")
            if inner.is_empty:
                continue
            if zone.intersects(inner):
                inner = inner.difference(zone)
            if code in self.reserved:
                inner = inner.difference(self.reserved[code])
            if not inner.is_empty:
                found.append((inner, orientation(face)))
        return found

    def typology(self, unit: Unit) -> str:
        """Choose how a micro-grid's homes are built, from its density and position."""
        density = unit.households / (unit.metres.area / 1e4)
        c = unit.metres.centroid
        r = math.dist((c.x, c.y), self.old_centre)
        u = self.rng.random()
        if r < OLD_CITY_RADIUS:
            choice = "old" if u < 0.8 else "walkup"
        elif density >= 25:
            choice = "walkup" if u < 0.45 else "highrise" if u < 0.8 else "village"
        else:
            choice = "village" if u < 0.6 else "walkup" if u < 0.85 else "highrise"
        if choice == "highrise" and unit.households < 40:
            choice = "walkup"
        return choice

    def institution(self, codes: Sequence[str], parts: Sequence[Part], group: str,
                    spread: bool = False) -> list[Building]:
        """Place a campus (its parts in order) in the first of ``codes`` with room.

        With ``spread`` each part goes to the first of ``codes`` with room for
        it (a dedicated grid's campus may span several of its micro-grids).

        Returns
        -------
        list of Building
            The placed parts (an empty list if no micro-grid had room for the first).
        """
        if spread:
            placed = []
            for part in parts:
                placed += next((got for code in codes if (got := self._place(code, [part], group))),
                               [])
            return placed
        return next((got for code in codes if (got := self._place(code, parts, group))), [])

    def _place(self, code: str, parts: Sequence[Part], group: str) -> list[Building]:
        """Place the parts of a campus in one micro-grid, if it keeps room for its homes."""
        before = self.reserved.get(code)
        placed: list[Building] = []
        for use, along, across, floors in parts:
            fp = self._fit(code, along, across)
            if fp is None:
                break
            zone = fp.buffer(INSTITUTION_GAP)
            self.reserved[code] = (zone if code not in self.reserved
                                   else self.reserved[code].union(zone))
            lo, hi = floors
            placed.append(Building(code, fp, use, "institution",
                                   floors=int(self.rng.integers(lo, hi + 1)), group=group))
        room = sum(a.area for a, _ in self.blocks(code, TYPOLOGIES["walkup"].setback))
        households = self.inputs.levels["micro_grid"][code].households
        if placed and room >= ROOM_PER_HOUSEHOLD * households:
            self.buildings[code].extend(placed)
            return placed
        if before is None:
            self.reserved.pop(code, None)
        else:
            self.reserved[code] = before
        return []

    def _fit(self, code: str, along: tuple[float, float], across: tuple[float, float]
             ) -> Any | None:
        """Return a footprint of the given size range that fits in ``code``, or None."""
        w, h = self.rng.uniform(*along), self.rng.uniform(*across)
        blocks = sorted(self.blocks(code, INSTITUTION_SETBACK), key=lambda b: -b[0].area)
        for _ in range(4):
            for area, theta in blocks:
                rot = _frame(theta)
                origin = np.array(shapely.get_coordinates(area.centroid)[0])
                local = shapely.transform(area, lambda c, o=origin, r=rot: (c - o) @ r.T)
                u0, v0, u1, v1 = local.bounds
                us, vs = np.arange(u0, u1 - w, 3.0), np.arange(v0, v1 - h, 3.0)
                if not len(us) or not len(vs):
                    continue
                gu, gv = (a.ravel() for a in np.meshgrid(us, vs, indexing="ij"))
                ring = footprint(0.0, 0.0, w, h, None, 0.0)
                corners = np.column_stack([gu, gv])[:, None, :]
                polys = shapely.polygons((ring[None] + corners) @ rot + origin)
                shapely.prepare(area)
                ok = np.flatnonzero(shapely.covers(area, polys))
                if len(ok):
                    return polys[int(ok[self.rng.integers(len(ok))])]
            w, h = max(along[0], w * 0.85), max(across[0], h * 0.85)
        return None

    def homes(self, unit: Unit) -> None:
        """Place the residential buildings of a micro-grid and share out its households."""
        first = self.typology(unit)
        total = unit.households
        for name in (n for n in (first, *FALLBACK[first]) for _ in range(3)):
            t = TYPOLOGIES[name]  # each typology gets three lattices (random offsets)
            if name == "infill":
                cands = [c for area, _ in self.blocks(unit.code, t.setback, infill=True)
                         for part in shapely.get_parts(area) for c in darts(part, t, self.rng)]
            else:
                cands = [c for area, theta in self.blocks(unit.code, t.setback)
                         for c in lattice(area, theta, t, self.rng)]
            if not cands:
                continue
            ranked = self._rank(cands, name)
            n = int(np.clip(round(total / t.households), 1, min(len(ranked), total)))
            while True:
                chosen = ranked[:n]
                caps = [math.prod(layout(name, c)) for c in chosen]
                if sum(caps) >= total:
                    self._fill(unit, name, chosen, caps)
                    return
                if n >= min(len(ranked), total):
                    break
                more = math.ceil((total - sum(caps)) / (sum(caps) / n))
                n = min(len(ranked), total, n + max(1, more))
        raise SystemExit(f"no room for {total} households in micro-grid {unit.code}")

    def _rank(self, cands: list[Candidate], typology: str) -> list[Candidate]:
        """Order candidate footprints: street fronts first (old town), clusters (villages)."""
        noise = self.rng.normal(0.0, 1.0, len(cands))
        centres = shapely.get_coordinates(shapely.centroid([c.geom for c in cands]))
        if typology == "old":
            key = np.array([c.front for c in cands]) + 3.0 * noise
        elif typology == "infill":
            key = noise
        else:  # villages cluster loosely, estates tightly around a random seed
            seed = centres[self.rng.integers(len(cands))]
            key = np.hypot(*(centres - seed).T) + (25.0 if typology == "village" else 5.0) * noise
        order = np.lexsort((np.arange(len(cands)), key))
        return [cands[i] for i in order]

    def _fill(self, unit: Unit, typology: str, chosen: list[Candidate], caps: list[int]) -> None:
        """Give the chosen footprints the micro-grid's households and pick their floors."""
        t = TYPOLOGIES[typology]
        weights = np.array(caps, dtype=float) * self.rng.lognormal(0.0, 0.25, len(caps))
        counts = share_out(unit.households, caps, weights)
        group = f"E{unit.code}" if t.estate else None
        lo, hi = t.floors
        for c, hh in zip(chosen, counts, strict=True):
            units, per_unit, _ = layout(typology, c)
            need = math.ceil(hh / (units * per_unit))
            extra = int(self.rng.integers(0, 2 if typology != "highrise" else 4))
            floors = int(np.clip(need + extra, lo, hi))
            if typology in ("old", "village") and need <= 2:
                floors = max(need, int(self.rng.integers(lo, lo + 3)))
            self.buildings[unit.code].append(
                Building(unit.code, c.geom, "residential", typology, floors=floors, households=hh,
                         units=units, per_unit=per_unit, group=group))


# --------------------------------------------------------------------------------------
# Institutions, points of interest and their plan
# --------------------------------------------------------------------------------------


@dataclass
class Poi:
    """A point of interest while it is being built."""

    micro: str
    name: str
    category: str
    building: Building | None = None
    point: Any = None  # metres; None: inside the building
    key: str = ""


def short(name: str) -> str:
    """Return a community or street name without its 社区/街道 suffix."""
    return name.removesuffix("社区").removesuffix("街道")


def plan_places(inputs: Inputs, placer: Placer, rng: np.random.Generator
                ) -> tuple[list[Poi], int]:
    """Place every institution and standalone non-residential building.

    Returns
    -------
    pois : list of Poi
        Points of interest in buildings (alarm posts and police posts are added later).
    dropped : int
        Institutions for which no micro-grid had room (0 in the committed build).
    """
    lv = inputs.levels
    micro = lv["micro_grid"]
    by_community: dict[str, list[str]] = defaultdict(list)
    for code in micro:
        by_community[code[:12]].append(code)
    density = {c: u.households / (u.metres.area / 1e4) for c, u in micro.items()}
    area = {c: u.metres.area for c, u in micro.items()}
    pois: list[Poi] = []
    dropped = 0
    campuses = 0

    def roomy(codes: list[str]) -> list[str]:
        """Micro-grids with the most room first, the first few shuffled."""
        ranked = sorted(codes, key=lambda c: (density[c] / math.sqrt(area[c]), c))
        head = ranked[: max(1, len(ranked) // 3)]
        rng.shuffle(head)
        return head + ranked[len(head):]

    def add(codes: list[str], kind: str, name: str, category: str | None,
            spread: bool = False) -> None:
        nonlocal dropped, campuses
        campuses += 1
        group = f"C{campuses:04d}"
        placed = placer.institution(codes, CAMPUSES[kind], group, spread)
        if not placed:
            dropped += 1
            return
        if len(placed) == 1:
            placed[0].group = None
        if category is not None:
            pois.append(Poi(placed[0].micro, name, category, placed[0]))

    # Dedicated grids (专属网格) hold the institution they are named after.
    for gcode, grid in lv["grid"].items():
        if grid.kind != "dedicated":
            continue
        inst = next(k for k in ("中学", "小学", "医院", "工业园")
                    if grid.name.endswith(f"{k}专属网格"))
        base = short(lv["community"][gcode[:12]].name)
        codes = sorted((c for c in micro if c.startswith(gcode)), key=lambda c: (-area[c], c))
        name, category = {
            "中学": (f"鲤城区{base}中学", "school"), "小学": (f"鲤城区{base}小学", "school"),
            "医院": (f"鲤城区{base}医院", "hospital"),
            "工业园": (f"{base}工业园", "industrial_park"),
        }[inst]
        add(codes, inst, name, category, spread=True)
    dedicated = {p.name for p in pois}

    communities = sorted(lv["community"])
    for ccode in communities:
        cname = lv["community"][ccode].name
        add(roomy(by_community[ccode]), "服务中心", f"{cname}服务中心", "community_service_centre")
    picks = list(communities)
    rng.shuffle(picks)
    for ccode in picks[:40]:
        base = short(lv["community"][ccode].name)
        add(roomy(by_community[ccode]), "幼儿园", f"鲤城区{base}幼儿园", "kindergarten")
    rng.shuffle(picks)
    for k, ccode in enumerate(picks[:34]):
        base = short(lv["community"][ccode].name)
        kind = "中学" if k < 8 else "小学"
        name = f"鲤城区{base}{kind}"
        if name not in dedicated:
            add(roomy(by_community[ccode]), kind, name, "school")
    for scode, street in lv["street"].items():
        codes = [c for c in micro if c.startswith(scode)]
        add(roomy(codes), "卫生服务中心", f"鲤城区{street.name}社区卫生服务中心", "hospital")
    rng.shuffle(picks)
    for ccode in picks[:4]:
        base = short(lv["community"][ccode].name)
        if f"鲤城区{base}医院" not in dedicated:
            add(roomy(by_community[ccode]), "医院", f"鲤城区{base}医院", "hospital")
    for station in lv["station"].values():
        street = next(s for s in lv["street"].values() if station.name == short(s.name) + "派出所")
        codes = [c for c in micro if c.startswith(street.code)]
        add(roomy(codes), "派出所", f"泉州市公安局鲤城分局{station.name}", "police_station")
    sparse = sorted((c for c in micro if density[c] < 15), key=lambda c: (density[c], c))
    sparse = [sparse[i] for i in rng.permutation(len(sparse))]
    firms: set[str] = set()
    grids: set[str] = set()
    for code in sparse:
        if len(firms) == 20:
            break
        if code[:15] in grids or lv["grid"][code[:15]].kind == "dedicated":
            continue
        trade = TRADE_NAMES[len(firms) % len(TRADE_NAMES)]
        industry = INDUSTRIES[int(rng.integers(len(INDUSTRIES)))]
        name = f"泉州{trade}{industry}有限公司"
        grids.add(code[:15])
        firms.add(name)
        add([code], "企业", name, "enterprise")
    # Standalone shops (markets, stores) and offices: no point of interest.
    codes = sorted(micro)
    weights = np.array([micro[c].households for c in codes], dtype=float)
    by_grid: dict[str, list[str]] = defaultdict(list)
    for code in codes:
        by_grid[code[:15]].append(code)
    for code in rng.choice(codes, 150, replace=False, p=weights / weights.sum()):
        add([str(code), *roomy(by_grid[code[:15]])], "商场", "", None)
    for code in rng.choice(codes, 60, replace=False):
        add([str(code), *roomy(by_grid[code[:15]])], "写字楼", "", None)
    return pois, dropped


def posts(inputs: Inputs, buildings: list[Building], pois: list[Poi],
          rng: np.random.Generator) -> list[Poi]:
    """Return police posts (警务室, one per beat) and alarm posts (报警点) at schools and hospitals.

    A police post is in a residential or office building of its beat; an alarm
    post stands by the road 2 m in front of its institution's entrance.
    """
    lv = inputs.levels
    found: list[Poi] = []
    by_beat: dict[str, list[Building]] = defaultdict(list)
    for b in buildings:
        if b.use in ("residential", "office") and not b.faults:
            by_beat[inputs.beat_of[b.micro]].append(b)
    for bcode in lv["beat"]:
        pool = sorted(by_beat[bcode], key=lambda b: b.key)
        host = pool[int(rng.integers(len(pool)))]
        station = lv["station"][bcode[:9]].name
        community = lv["community"][host.micro[:12]].name
        found.append(Poi(host.micro, f"{station}{community}警务室", "police_post", host))
    for poi in pois:
        if poi.category not in ("school", "hospital") or poi.building is None:
            continue
        point = _front(poi.building, inputs)
        if point is not None:
            found.append(Poi(poi.micro, f"{poi.name}报警点", "alarm_post", None, point))
    return found


def _front(b: Building, inputs: Inputs) -> Any | None:
    """Return a point 2 m out of a building's road-facing side, inside its micro-grid."""
    unit = inputs.levels["micro_grid"][b.micro].metres
    ring = shapely.get_coordinates(b.geom.exterior)
    mids = (ring[:-1] + ring[1:]) / 2
    order = np.argsort(shapely.distance(unit.boundary, shapely.points(mids)), kind="stable")
    for i in order:
        d = ring[i + 1] - ring[i]
        normal = np.array([d[1], -d[0]]) / np.hypot(*d)
        for sign in (1.0, -1.0):
            p = shapely.Point(mids[i] + sign * 2.0 * normal)
            if unit.contains(p) and not b.geom.intersects(p):
                return p
    return None


# --------------------------------------------------------------------------------------
# Deliberate faults: straddling and outside buildings
# --------------------------------------------------------------------------------------


def boundary_level(a: str, b: str) -> str:
    """Return the highest level whose boundary lies between micro-grids ``a`` and ``b``."""
    for level, n in (("street", 9), ("community", 12), ("grid", 15)):
        if a[:n] != b[:n]:
            return level
    return "micro_grid"


def _translate(geom: Any, v: FloatArray) -> Any:
    return shapely.transform(geom, lambda c: c + v)


def make_cuts(inputs: Inputs, buildings: list[Building], count: int,
              rng: np.random.Generator) -> list[dict[str, Any]]:
    """Push ``count`` buildings part-way over a neighbouring micro-grid.

    Half cross a grid (or higher) boundary, half a boundary between two
    micro-grids of one grid. Each keeps 55-90% of its area in its own
    micro-grid and overlaps no other building.

    Returns
    -------
    list of dict
        One entry per cut building (``cut_buildings.json``).
    """
    micro = inputs.levels["micro_grid"]
    codes = list(micro)
    tree = shapely.STRtree([micro[c].metres for c in codes])
    btree = shapely.STRtree([b.geom for b in buildings])
    county_edge = inputs.outline.boundary
    quota = {"higher": count // 2, "micro_grid": count - count // 2}
    found: list[dict[str, Any]] = []
    order = rng.permutation(len(buildings))
    for i in order:
        if not any(quota.values()):
            break
        b = buildings[int(i)]
        if b.use != "residential" or b.typology == "highrise":
            continue
        own = micro[b.micro].metres
        inner = own.boundary.difference(county_edge.buffer(1.0))
        if inner.is_empty or inner.distance(b.geom) > 8.0:
            continue
        c = b.geom.centroid
        _, p = nearest_points(c, inner)
        v = np.array([p.x - c.x, p.y - c.y])
        v /= np.hypot(*v)
        across = shapely.Point(p.x + v[0] * 0.5, p.y + v[1] * 0.5)
        other = [codes[j] for j in tree.query(across, predicate="within")]
        if len(other) != 1 or other[0] == b.micro:
            continue
        level = boundary_level(b.micro, other[0])
        bucket = "micro_grid" if level == "micro_grid" else "higher"
        if not quota[bucket]:
            continue
        target = rng.uniform(0.12, 0.4)
        lo, hi = 0.0, 60.0
        for _ in range(40):
            mid = (lo + hi) / 2
            out = 1 - _translate(b.geom, v * mid).intersection(own).area / b.geom.area
            lo, hi = (mid, hi) if out < target else (lo, mid)
        moved = _translate(b.geom, v * hi)
        near = [buildings[j] for j in btree.query(moved.buffer(1.0)) if buildings[j] is not b]
        if any(n.geom.distance(moved) < 1.0 for n in [*near, *(f["key"] for f in found)]):
            continue
        if not inputs.outline.covers(moved):
            continue
        shares = {}
        for j in tree.query(moved, predicate="intersects"):
            piece = micro[codes[j]].metres.intersection(moved).area / moved.area
            if piece >= 0.01:
                shares[codes[j]] = piece
        if len(shares) < 2 or shares.get(b.micro, 0) < 0.55 or max(shares.values()) > 0.9:
            continue
        b.geom = moved
        b.faults.append("cut")
        quota[bucket] -= 1
        found.append({"key": b, "shares": shares})
    if any(quota.values()):
        raise SystemExit(f"could not make enough cut buildings: {quota} left")
    return found


def make_outside(inputs: Inputs, buildings: list[Building], count: int,
                 rng: np.random.Generator) -> list[Building]:
    """Push ``count`` village or old-town houses next to the outline just outside it.

    The houses stay registered to their micro-grid (their households count
    there); each lies 3-15 m beyond the district outline, in distinct streets.

    Returns
    -------
    list of Building
        The moved buildings.
    """
    edge = inputs.outline.boundary
    tree = shapely.STRtree([b.geom for b in buildings])
    streets: set[str] = set()
    moved: list[Building] = []
    for i in rng.permutation(len(buildings)):
        b = buildings[int(i)]
        if len(moved) == count:
            break
        if (b.use != "residential" or b.typology not in ("old", "village") or b.faults
                or b.micro[:9] in streets or b.geom.distance(edge) > 12.0):
            continue
        c = b.geom.centroid
        _, p = nearest_points(c, edge)
        v = np.array([p.x - c.x, p.y - c.y])
        v /= np.hypot(*v)
        clearance = rng.uniform(3.0, 15.0)
        geom = None
        for step in np.arange(1.0, 120.0, 1.0):
            g = _translate(b.geom, v * step)
            if g.distance(inputs.outline) >= clearance:
                geom = g
                break
        if geom is None:
            continue
        near = [buildings[j] for j in tree.query(geom.buffer(3.0)) if buildings[j] is not b]
        if any(n.geom.distance(geom) < 3.0 for n in near) or any(
                m.geom.distance(geom) < 3.0 for m in moved):
            continue
        b.geom = geom
        b.faults.append("outside")
        streets.add(b.micro[:9])
        moved.append(b)
    if len(moved) != count:
        raise SystemExit("could not place the outside buildings")
    return moved


# --------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------


def address(inputs: Inputs, buildings: list[Building], roads: list[Road],
            rng: np.random.Generator) -> None:
    """Give every building its road, 门牌号, 楼栋号 and entrance point.

    A building, or an estate or campus as a whole, takes the nearest road
    (an estate prefers an arterial within 40 m). Numbers run from the west
    or north end of each road piece, odd on the left and even on the right,
    with a few gaps.
    """
    tree = shapely.STRtree([r.geom for r in roads])
    arterial = np.array([r.arterial for r in roads])
    groups: dict[str, list[Building]] = defaultdict(list)
    items: list[list[Building]] = []
    for b in buildings:
        if b.group is None:
            items.append([b])
        else:
            if b.group not in groups:
                items.append(groups[b.group])
            groups[b.group].append(b)
    entries: dict[str, list[tuple[int, float, int, int]]] = defaultdict(list)
    unions = [shapely.union_all([m.geom for m in members]) for members in items]
    for k, (members, geom, road) in enumerate(zip(items, unions, _nearest(tree, unions),
                                                  strict=True)):
        road = int(road)
        if len(members) > 1:
            close = [int(j) for j in tree.query(geom, predicate="dwithin", distance=40.0)
                     if arterial[j]]
            if close:
                road = min(close, key=lambda j: (roads[j].geom.distance(geom), j))
        line = roads[road].geom
        anchor, on_road = nearest_points(geom, line)
        s = line.project(on_road)
        a = line.interpolate(max(s - 1.0, 0.0))
        z = line.interpolate(min(s + 1.0, line.length))
        cross = (z.x - a.x) * (anchor.y - a.y) - (z.y - a.y) * (anchor.x - a.x)
        entries[roads[road].name].append((roads[road].rank, s, 0 if cross > 0 else 1, k))
        for m in members:
            m.road = road
    for name in sorted(entries):
        nxt = [1, 2]
        for _, _, side, k in sorted(entries[name]):
            number = nxt[side]
            nxt[side] += 2 if rng.random() > 0.12 else 4
            members = items[k]
            estate = len(members) > 1 or members[0].group is not None
            order = sorted(members, key=lambda m: (-round(m.geom.centroid.y), m.geom.centroid.x))
            for seq, m in enumerate(order, start=1):
                m.number = f"{number}号"
                m.building_no = f"{seq}幢" if estate else None
    micro = inputs.levels["micro_grid"]
    nearest = _nearest(tree, [b.geom for b in buildings])
    for b, near in zip(buildings, nearest.tolist(), strict=True):
        if rng.random() < NO_ENTRANCE:
            continue
        ring = shapely.get_coordinates(b.geom.exterior)
        mids = shapely.points((ring[:-1] + ring[1:]) / 2)
        dist = shapely.distance(roads[near].geom, mids)
        if "cut" in b.faults:
            dist = np.where(shapely.covers(micro[b.micro].metres, mids), dist, np.inf)
        b.entrance = mids[int(np.argmin(dist))]


def _nearest(tree: shapely.STRtree, geoms: Sequence[Any]) -> FloatArray:
    """Index of the tree geometry nearest each of ``geoms`` (smallest index on ties)."""
    which, found = tree.query_nearest(geoms, all_matches=True)
    best = np.full(len(geoms), np.iinfo(np.int64).max)
    np.minimum.at(best, which, found)
    return best


# --------------------------------------------------------------------------------------
# Households
# --------------------------------------------------------------------------------------


def household_sizes(n: int, total: int, rng: np.random.Generator) -> FloatArray:
    """Return ``n`` household sizes in 1..6 summing to ``total``.

    Sizes are drawn from :data:`HOUSEHOLD_SIZE` tilted to the mean
    ``total / n``, then single persons are moved until the sum is exact.
    """
    k = np.arange(1, 7)
    target = total / n
    lo, hi = -5.0, 5.0
    for _ in range(60):
        lam = (lo + hi) / 2
        p = HOUSEHOLD_SIZE * np.exp(lam * k)
        lo, hi = (lam, hi) if (p * k).sum() / p.sum() < target else (lo, lam)
    p = HOUSEHOLD_SIZE * np.exp(lo * k)
    sizes = rng.choice(k, n, p=p / p.sum())
    diff = total - int(sizes.sum())
    while diff:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(sizes < 6) if step > 0 else np.flatnonzero(sizes > 1)
        sizes[room[int(rng.integers(len(room)))]] += step
        diff -= step
    return sizes


def households(inputs: Inputs, buildings: list[Building], rng: np.random.Generator
               ) -> pd.DataFrame:
    """Return one row per household: key, building, 单元号, floor, 户号 and persons."""
    rows: dict[str, list[Any]] = {k: [] for k in ("key", "building_key", "unit_no", "floor",
                                                  "room", "persons")}
    by_micro: dict[str, list[Building]] = defaultdict(list)
    for b in buildings:
        by_micro[b.micro].append(b)
    for code, unit in inputs.levels["micro_grid"].items():
        homes = [b for b in by_micro[code] if b.households]
        sizes = household_sizes(unit.households, unit.population, rng)
        at = 0
        for b in homes:
            per_floor = b.units * b.per_unit
            slots = rng.choice(per_floor * b.floors, b.households, replace=False)
            slots.sort()
            for seq, slot in enumerate(slots.tolist(), start=1):
                floor, rest = divmod(slot, per_floor)
                unit_no, door = divmod(rest, b.per_unit)
                rows["key"].append(f"H{b.key}{seq:04d}")
                rows["building_key"].append(b.key)
                rows["unit_no"].append(f"{unit_no + 1}单元" if b.group is not None else None)
                rows["floor"].append(floor + 1)
                rows["room"].append(f"{floor + 1:02d}{door + 1:02d}")
                rows["persons"].append(int(sizes[at]))
                at += 1
    frame = pd.DataFrame(rows)
    for col in ("building_key", "unit_no", "room"):
        frame[col] = frame[col].astype("category")
    frame["floor"] = frame["floor"].astype("int16")
    frame["persons"] = frame["persons"].astype("int8")
    return frame


# --------------------------------------------------------------------------------------
# Build, check, write
# --------------------------------------------------------------------------------------


def build(out: Path) -> None:
    """Generate every place file into ``out``, check them and print a summary."""
    rng = np.random.default_rng(PLACES_SEED)
    inputs = load()
    lines = strokes(inputs.faces, inputs.outline)
    roads = name_roads(lines, inputs.arterials, inputs.proj.point(*OLD_CITY), rng)
    placer = Placer(inputs, rng)
    pois, dropped = plan_places(inputs, placer, rng)
    micro = inputs.levels["micro_grid"]
    for unit in micro.values():
        placer.homes(unit)
    buildings: list[Building] = []
    for code in micro:
        mine = sorted(placer.buildings[code],
                      key=lambda b: (-round(b.geom.centroid.y), round(b.geom.centroid.x)))
        for n, b in enumerate(mine, start=1):
            b.key = f"B{code}{n:03d}"
        buildings.extend(mine)
    cuts = make_cuts(inputs, buildings, round(CUT_SHARE * len(buildings)), rng)
    outside = make_outside(inputs, buildings, OUTSIDE_COUNT, rng)
    address(inputs, buildings, roads, rng)
    pois += posts(inputs, buildings, pois, rng)
    homes = households(inputs, buildings, rng)

    proj = inputs.proj
    storage = proj.to_storage(np.array([b.geom for b in buildings], dtype=object))
    entrances = [None if b.entrance is None else proj.to_storage(b.entrance) for b in buildings]
    street = {c: s.name for c, s in inputs.levels["street"].items()}
    frame = gpd.GeoDataFrame({
        "key": [b.key for b in buildings],
        "address": [f"{PREFIX}{street[b.micro[:9]]}{roads[b.road].name}{b.number}"
                    f"{b.building_no or ''}" for b in buildings],
        "road": [roads[b.road].name for b in buildings],
        "number": [b.number for b in buildings],
        "building_no": [b.building_no for b in buildings],
        "floors": np.array([b.floors for b in buildings], dtype="int16"),
        "households": np.array([b.households for b in buildings], dtype="int16"),
        "use": pd.Categorical([b.use for b in buildings]),
        "entrance_lon": pd.array([None if e is None else e.x for e in entrances], dtype="Float64"),
        "entrance_lat": pd.array([None if e is None else e.y for e in entrances], dtype="Float64"),
    }, geometry=storage, crs=f"EPSG:{city.STORAGE_EPSG}")
    addr = dict(zip(frame["key"], frame["address"], strict=True))
    seq: dict[str, int] = defaultdict(int)
    for poi in sorted(pois, key=lambda p: (p.micro, p.category, p.name)):
        seq[poi.micro] += 1
        poi.key = f"P{poi.micro}{seq[poi.micro]:02d}"
    poi_rows = _poi_rows(pois, addr, proj)
    cut_rows = [_cut_row(c) for c in cuts]
    outside_rows = [{"key": b.key, "micro_grid": b.micro, "households": b.households,
                     "distance_m": round(b.geom.distance(inputs.outline), 1),
                     "note": "registered to the micro-grid, footprint outside the district"}
                    for b in sorted(outside, key=lambda b: b.key)]

    check(inputs, buildings, frame, homes, poi_rows, cut_rows, outside_rows)
    write(out, frame, homes, poi_rows, cut_rows, outside_rows)
    summary(out, buildings, frame, homes, poi_rows, cut_rows, dropped, roads)


def _cut_row(entry: dict[str, Any]) -> dict[str, Any]:
    b = entry["key"]
    shares = sorted(entry["shares"].items(), key=lambda kv: (-kv[1], kv[0]))
    level = max((boundary_level(b.micro, c) for c, _ in shares),
                key=("micro_grid", "grid", "community", "street").index)
    return {"key": b.key, "micro_grid": b.micro, "crosses": level,
            "units": [{"micro_grid": c, "grid": c[:15], "share": round(s, 3)} for c, s in shares]}


def _poi_rows(pois: list[Poi], addr: dict[str, str], proj: city.Projection
              ) -> list[dict[str, Any]]:
    rows = []
    for poi in sorted(pois, key=lambda p: p.key):
        b = poi.building
        if b is not None:
            point = shapely.point_on_surface(b.geom)
            where = addr[b.key]
        else:
            point = poi.point
            where = addr[min(_institution_keys(poi, pois))]
        rows.append({"key": poi.key, "name": poi.name, "category": poi.category,
                     "address": where, "building_key": None if b is None else b.key,
                     "geometry": proj.to_storage(point)})
    return rows


def _institution_keys(alarm: Poi, pois: list[Poi]) -> list[str]:
    """Key of the building an alarm post stands in front of."""
    name = alarm.name.removesuffix("报警点")
    return [p.building.key for p in pois if p.name == name and p.building is not None]


def check(inputs: Inputs, buildings: list[Building], frame: gpd.GeoDataFrame,
          homes: pd.DataFrame, pois: list[dict[str, Any]], cuts: list[dict[str, Any]],
          outside: list[dict[str, Any]]) -> None:
    """Verify every promise of the places; raise ``SystemExit`` on the first broken one."""
    micro = inputs.levels["micro_grid"]
    proj = inputs.proj

    def fail(message: str) -> None:
        raise SystemExit(f"check failed: {message}")

    geoms = frame.geometry.values
    if not frame["key"].is_unique or not frame["address"].is_unique:
        fail("building keys or addresses repeat")
    if not (shapely.is_valid(geoms).all() and (shapely.get_type_id(geoms) == 3).all()):
        fail("a footprint is not a valid Polygon")
    per_micro = frame.groupby(frame["key"].str[1:19])["households"].sum().astype(int).to_dict()
    if per_micro != {c: u.households for c, u in micro.items()}:
        fail("households per micro-grid differ from the layer")
    cut_keys = {c["key"] for c in cuts}
    out_keys = {o["key"] for o in outside}
    own = [micro[k[1:19]].geom for k in frame["key"]]
    covered = shapely.covers(own, geoms)
    normal = ~frame["key"].isin(cut_keys | out_keys).to_numpy()
    if not covered[normal].all():
        fail(f"{int((~covered[normal]).sum())} buildings are not inside their micro-grid")
    metres = proj.to_metres(geoms)
    codes = list(micro)
    tree = shapely.STRtree([micro[c].metres for c in codes])
    for c in cuts:
        i = int(np.flatnonzero(frame["key"].to_numpy() == c["key"])[0])
        hits = tree.query(metres[i], predicate="intersects")
        share = {codes[j]: micro[codes[j]].metres.intersection(metres[i]).area / metres[i].area
                 for j in hits}
        real = {k for k, s in share.items() if s >= 0.01 and s * metres[i].area >= 1.0}
        if covered[i] or len(real) < 2 or share[c["micro_grid"]] < 0.5:
            fail(f"{c['key']} does not straddle as listed")
    county = inputs.county.geom
    for o in outside:
        i = int(np.flatnonzero(frame["key"].to_numpy() == o["key"])[0])
        if geoms[i].intersects(county):
            fail(f"{o['key']} is not outside the district")
    btree = shapely.STRtree(metres)
    left, right = btree.query(metres, predicate="intersects")
    if (left != right).any():
        pairs = sorted({tuple(sorted((frame["key"].iat[i], frame["key"].iat[j])))
                        for i, j in zip(left, right, strict=True) if i != j})
        fail(f"{len(pairs)} pairs of buildings overlap: {pairs[:5]}")
    counts = homes.groupby("building_key", observed=True).size()
    with_homes = frame.set_index("key")["households"]
    if not counts.reindex(with_homes.index, fill_value=0).astype(int).equals(
            with_homes.astype(int)):
        fail("household rows per building differ from the buildings' counts")
    persons = homes.groupby(homes["building_key"].astype(str).str[1:19])["persons"].sum()
    if persons.astype(int).to_dict() != {c: u.population for c, u in micro.items()}:
        fail("persons per micro-grid differ from the layer's population")
    if not homes["key"].is_unique or not homes["persons"].between(1, 6).all():
        fail("household keys repeat or persons out of 1..6")
    for code, grid in inputs.levels["grid"].items():
        if grid.kind != "dedicated":
            continue
        inst = grid.name.removesuffix("专属网格").removeprefix(
            inputs.levels["community"][code[:12]].name)
        inside = [p for p in pois if p["name"].endswith(inst) and p["building_key"]
                  and p["building_key"][1:16] == code and grid.geom.covers(p["geometry"])]
        if not inside:
            fail(f"dedicated grid {code} has no {inst}")
    keys = [p["key"] for p in pois]
    if len(set(keys)) != len(keys):
        fail("POI keys repeat")
    if not all(micro[p["key"][1:19]].geom.covers(p["geometry"]) for p in pois):
        fail("a POI lies outside its micro-grid")


def write(out: Path, frame: gpd.GeoDataFrame, homes: pd.DataFrame, pois: list[dict[str, Any]],
          cuts: list[dict[str, Any]], outside: list[dict[str, Any]]) -> None:
    """Write the place files into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "buildings.parquet", index=False, compression="zstd",
                     compression_level=9)
    homes.to_parquet(out / "households.parquet", index=False, compression="zstd",
                     compression_level=9)
    head = {"type": "FeatureCollection", "name": "pois",
            "crs": {"type": "name",
                    "properties": {"name": f"urn:ogc:def:crs:EPSG::{city.STORAGE_EPSG}"}}}
    lines = []
    for p in pois:
        props = {k: v for k, v in p.items() if k != "geometry"}
        geometry = {"type": "Point", "coordinates": [p["geometry"].x, p["geometry"].y]}
        lines.append(json.dumps({"type": "Feature", "properties": props, "geometry": geometry},
                                ensure_ascii=False, separators=(",", ":")))
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    text += ',"features":[\n' + ",\n".join(lines) + "\n]}\n"
    (out / "pois.geojson").write_text(text, encoding="utf-8")
    for name, data in (("cut_buildings.json", cuts), ("outside_buildings.json", outside)):
        (out / name).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n",
                                encoding="utf-8")


def summary(out: Path, buildings: list[Building], frame: gpd.GeoDataFrame, homes: pd.DataFrame,
            pois: list[dict[str, Any]], cuts: list[dict[str, Any]], dropped: int,
            roads: list[Road]) -> None:
    """Print counts, typologies, file sizes."""
    used = frame["road"].nunique()
    kinds = pd.DataFrame({"typology": [b.typology for b in buildings],
                          "households": [b.households for b in buildings]})
    by_kind = kinds.groupby("typology")["households"].agg(["size", "sum"])
    print(f"buildings {len(frame)} ({frame['households'].gt(0).sum()} residential, "
          f"{frame['households'].eq(0).sum()} non-residential)")
    for typology, row in by_kind.iterrows():
        print(f"  {typology:12s} {row['size']:6d} buildings {row['sum']:7d} households")
    print(f"  floors {frame['floors'].min()}-{frame['floors'].max()}; "
          f"entrances {frame['entrance_lon'].notna().mean():.0%}; roads named {len(roads)}, "
          f"used in addresses {used}; uses {frame['use'].value_counts().to_dict()}")
    print(f"households {len(homes)}, persons {int(homes['persons'].sum())} "
          f"(mean {homes['persons'].mean():.2f})")
    print(f"pois {len(pois)}: {pd.Series([p['category'] for p in pois]).value_counts().to_dict()}"
          f"; institutions without room: {dropped}")
    levels = pd.Series([c["crosses"] for c in cuts]).value_counts().to_dict()
    print(f"cut buildings {len(cuts)} {levels}")
    for path in sorted(out.iterdir()):
        print(f"  {path.name:24s} {path.stat().st_size / 1024:8.1f} KiB")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build into ``licheng/places/``, or ``--check`` it is reproduced."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temporary folder and compare with licheng/places/")
    args = parser.parse_args(argv)
    if not args.check:
        build(PLACES)
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        names = sorted(p.name for p in Path(tmp).iterdir())
        differ = [n for n in names
                  if not (PLACES / n).is_file()
                  or (PLACES / n).read_bytes() != (Path(tmp) / n).read_bytes()]
    if differ:
        raise SystemExit(f"not reproduced byte for byte: {differ}")
    print(f"reproduced byte for byte: {', '.join(names)}")


if __name__ == "__main__":
    main()
