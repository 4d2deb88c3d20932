"""Streets service: read and import street lines, all or nothing; read them back; export.

A file is read whole and checked first (line geometries, unique keys, a CRS,
names of sensible length); any bad row refuses the import with the rows
named, and nothing is written.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.crs import parse_crs, to_storage_crs
from gis.errors import InputError
from gis.files import ReadLimits
from gis.io import read_frame
from gis.repository import Database
from gis.types import Progress

__all__ = [
    "STREET_EXPORT_FORMATS",
    "StreetsImport",
    "export_streets",
    "import_streets",
    "read_streets",
    "streets_frame",
    "streets_geojson",
]

STREET_EXPORT_FORMATS = ("geojson", "gpkg")
_KEY_CANDIDATES = ("key", "id", "osm_id", "编码")
_NAME_CANDIDATES = ("name", "名称", "road_name", "道路名称", "街路巷")
_CLASS_CANDIDATES = ("class", "highway", "fclass", "type", "道路等级", "等级")
_DEFAULT_CLASS = "street"
_MAX_ERRORS = 10
_MAX_NAME = 200
_MAX_CLASS = 32
_OSM_SUFFIXES = (".osm.pbf", ".pbf")
_OSM_NETWORKS = ("driving", "walking", "cycling", "all")


@dataclass(frozen=True)
class StreetsImport:
    """What an import stored: how many lines, per class."""

    count: int
    classes: dict[str, int]
    replaced: bool


def read_streets(
    path: str | Path, *, crs: str | None = None, osm_network: str = "driving"
) -> gpd.GeoDataFrame:
    """Read a street file as ``key``, ``name``, ``class``, ``attributes`` lines in EPSG:4490.

    Parameters
    ----------
    path : str or Path
        GeoPackage, GeoJSON (any vector format of :mod:`gis.files`), or an
        OpenStreetMap ``.osm.pbf`` extract (its ways of ``osm_network``,
        ``class`` = the ``highway`` tag, keys ``way/<id>``).
    crs : str, optional
        The CRS when the file has none, or ``gcj02``/``bd09`` (converted).
    osm_network : str
        For PBF: ``driving`` (default), ``walking``, ``cycling`` or ``all``.

    Returns
    -------
    GeoDataFrame
        Keys come from a ``key``/``id``/``osm_id`` column, else ``S`` + the
        row number; names from ``name``/``名称``; classes from
        ``class``/``highway``/``fclass``/``type`` (default ``street``).

    Raises
    ------
    InputError
        Unreadable file, no CRS, non-line or empty geometries, duplicate
        keys, over-long names — naming up to 10 offending rows.
    """
    label = Path(path).name
    if str(path).lower().endswith(_OSM_SUFFIXES):
        frame = _read_osm(Path(path), osm_network)
    else:
        frame = read_frame(path)
    declared = parse_crs(crs) if crs else None
    try:
        frame = to_storage_crs(frame, declared=declared)
    except InputError as error:
        raise InputError(f"{label}: {error.message}", rule=error.rule, field="crs") from None
    columns = [c for c in frame.columns if c != frame.geometry.name]
    key_field = _pick(columns, _KEY_CANDIDATES)
    name_field = _pick(columns, _NAME_CANDIDATES)
    class_field = _pick(columns, _CLASS_CANDIDATES)
    errors: list[str] = []
    keys = _keys(frame, key_field, errors)
    types = frame.geometry.geom_type.fillna("None").to_numpy()
    lines = np.isin(types, ("LineString", "MultiLineString"))
    for i in np.flatnonzero(~lines):
        errors.append(f"street {keys[i]!r}: geometry is {types[i]}, expected a line")
    lengths = shapely.length(frame.geometry.values)
    for i in np.flatnonzero(lines & ~(lengths > 0)):
        errors.append(f"street {keys[i]!r}: empty or zero-length line")
    names = _texts(frame, name_field)
    classes = [c or _DEFAULT_CLASS for c in _texts(frame, class_field)]
    for key, name in zip(keys, names, strict=True):
        if name is not None and len(name) > _MAX_NAME:
            errors.append(f"street {key!r}: name longer than {_MAX_NAME} characters")
    for key, value in zip(keys, classes, strict=True):
        if len(value) > _MAX_CLASS:
            errors.append(f"street {key!r}: class longer than {_MAX_CLASS} characters")
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS])
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise InputError(
            f"{label}: {len(errors)} problem(s), nothing imported: {shown}{more}",
            field="geometry" if not lines.all() else "file",
        )
    used = {key_field, name_field, class_field, frame.geometry.name}
    extra = [c for c in frame.columns if c not in used]
    return gpd.GeoDataFrame(
        {
            "key": keys,
            "name": names,
            "class": classes,
            "attributes": [_plain(r) for r in frame[extra].to_dict("records")],
        },
        geometry=frame.geometry.values,
        crs=frame.crs,
    )


def import_streets(
    db: Database,
    *,
    path: str | Path,
    crs: str | None = None,
    replace: bool = False,
    osm_network: str = "driving",
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
) -> StreetsImport:
    """Import street lines in one transaction (see :func:`read_streets` for the file).

    ``replace`` deletes every stored street first (a whole new network);
    otherwise lines with a stored key replace it and the others are added.
    """
    frame = read_streets(path, crs=crs, osm_network=osm_network)
    with db.transaction() as repo:
        count = repo.streets.upsert(frame, replace_all=replace, on_progress=on_progress)
        append_audit(
            repo,
            actor=actor,
            action="streets.import",
            target="streets",
            detail={"source": Path(path).name, "rows": count, "replace": replace},
        )
    return StreetsImport(count, dict(Counter(frame["class"])), replace)


def streets_frame(
    db: Database, *, bbox: tuple[float, float, float, float] | None = None
) -> gpd.GeoDataFrame:
    """Return the stored streets (``key``, ``name``, ``class``, ``attributes``) in EPSG:4490."""
    with db.reader() as repo:
        return repo.streets.frame(bbox=bbox)


def export_streets(db: Database, *, path: str | Path, fmt: str = "geojson") -> int:
    """Write the stored streets to ``path`` (GeoJSON or GeoPackage, EPSG:4490); return the count.

    ``attributes`` are spread into columns (never over ``key``, ``name``, ``class``).
    """
    if fmt not in STREET_EXPORT_FORMATS:
        raise InputError(
            f"unknown format {fmt!r}: use one of {', '.join(STREET_EXPORT_FORMATS)}",
            field="format",
        )
    flat = _flat(streets_frame(db))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    driver = {"geojson": "GeoJSON", "gpkg": "GPKG"}[fmt]
    pyogrio.write_dataframe(flat, target, driver=driver, layer="streets")
    return len(flat)


def streets_geojson(db: Database) -> str:
    """Return the stored streets as GeoJSON text (EPSG:4490, with a ``crs`` member)."""
    flat = _flat(streets_frame(db))
    text = flat.to_json(drop_id=True, ensure_ascii=False)
    head = (
        '{"type": "FeatureCollection", "crs": {"type": "name", "properties": '
        '{"name": "urn:ogc:def:crs:EPSG::4490"}}, '
    )
    return head + text[len('{"type": "FeatureCollection", ') :]


def _flat(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # attributes spread into columns, never over the standard ones
    extra = pd.DataFrame(list(frame["attributes"]), index=frame.index)
    extra = extra[[c for c in extra.columns if c not in ("key", "name", "class", "geometry")]]
    return gpd.GeoDataFrame(
        pd.concat([frame[["key", "name", "class"]], extra], axis=1),
        geometry=frame.geometry.values,
        crs=frame.crs,
    )


def _read_osm(path: Path, network: str) -> gpd.GeoDataFrame:
    if network not in _OSM_NETWORKS:
        raise InputError(
            f"unknown OSM network {network!r}: use one of {', '.join(_OSM_NETWORKS)}",
            field="osm_network",
        )
    if not path.is_file():
        raise InputError(f"{path.name}: no such file", field="file")
    ReadLimits.from_settings().check_bytes(path.name, path.stat().st_size)
    try:
        from pyrosm import OSM
    except ImportError:
        raise InputError(
            f"{path.name}: reading OpenStreetMap PBF needs the pyrosm package; "
            "convert the file to GeoPackage (ogr2ogr) or install pyrosm",
            field="file",
        ) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = OSM(str(path)).get_network(network_type=network)
    except Exception as error:  # pyrosm raises bare exceptions on corrupt files
        raise InputError(
            f"{path.name}: not a readable OSM PBF file ({error})", field="file"
        ) from None
    if raw is None or len(raw) == 0:
        raise InputError(f"{path.name}: has no streets of the {network} network", field="file")
    ReadLimits.from_settings().check_rows(path.name, len(raw))
    keep = [c for c in ("name", "highway", "ref", "oneway", "lanes", "maxspeed") if c in raw]
    frame = gpd.GeoDataFrame(
        {"key": "way/" + raw["id"].astype(str), **{c: raw[c].to_numpy() for c in keep}},
        geometry=raw.geometry.values,
        crs=raw.crs,
    )
    return frame


def _pick(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {str(c).lower(): c for c in columns}
    for candidate in candidates:
        if candidate in lowered:
            return str(lowered[candidate])
    return None


def _keys(frame: pd.DataFrame, field: str | None, errors: list[str]) -> list[str]:
    if field is None:
        return [f"S{i:06d}" for i in range(1, len(frame) + 1)]
    keys = ["" if _missing(k) else str(k).strip() for k in frame[field]]
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if not key:
            errors.append(f"row {i + 1}: {field} is empty")
        elif len(key) > 64:
            errors.append(f"row {i + 1}: {field} longer than 64 characters")
        elif key in seen:
            errors.append(f"key {key!r} appears more than once")
        seen.add(key)
    return keys


def _texts(frame: pd.DataFrame, field: str | None) -> list[str | None]:
    if field is None:
        return [None] * len(frame)
    return [None if _missing(v) else str(v).strip() for v in frame[field]]


def _missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, list | dict | np.ndarray) or _missing(value):
            continue
        value = value.item() if isinstance(value, np.generic) else value
        # JSON-safe: dates and other objects are kept as their text.
        out[str(key)] = value if isinstance(value, str | int | float | bool) else str(value)
    return out
