"""Places service: import buildings, households and points of interest; assign; workload.

Imports are validated first and written in one transaction: a file with any
bad row is refused with the rows and fields named, and nothing is written.
Households are personal data: only a key, the building, where in it and the
number of persons are kept — no names, no ID numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.assign import Assignment, Workload, assign_buildings, diff, workload
from gis.crs import CoordinateSystem, parse_crs, to_storage_crs
from gis.errors import InputError
from gis.files import format_for, open_source, read_table
from gis.gridindex import GridIndex
from gis.io import read_frame
from gis.repository import Database, Repository
from gis.times import isoformat_local, parse_time
from gis.types import Progress

__all__ = [
    "PlacesImport",
    "assign_places",
    "import_buildings",
    "import_households",
    "import_pois",
    "moved_by_change",
    "reassignment_diff",
    "unit_workload",
]

_MAX_ERRORS = 10
_MAX_PERSONS = 50
_POI_COLUMNS = {"key", "name", "category", "address", "building_key", "lon", "lat", "geometry"}


@dataclass(frozen=True)
class PlacesImport:
    """What an import stored, and which columns it deliberately did not."""

    kind: str
    count: int
    ignored_columns: tuple[str, ...] = ()
    encoding: str | None = None
    """How the file's text was read, e.g. ``GBK (detected)``, when worth saying."""


def import_buildings(
    db: Database,
    *,
    path: str | Path,
    crs: str | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
    encoding: str | None = None,
) -> PlacesImport:
    """Import building footprints (key, address, floors, use, entrance_lon/lat).

    ``encoding`` is the text encoding of a CSV or Shapefile (default: found
    from the bytes), for every import here.

    Raises
    ------
    InputError
        Unreadable file, missing ``key``, duplicate keys, non-polygon or invalid
        footprints, bad numbers — naming up to 10 offending rows.
    """
    frame = read_frame(path, encoding=encoding)
    used = _encoding(frame)
    declared = parse_crs(crs) if crs else None
    frame = _storage(frame, declared, path)
    errors: list[str] = []
    keys = _keys(frame, path, errors)
    types = frame.geometry.geom_type.fillna("None")
    for i in np.flatnonzero(~types.isin(["Polygon", "MultiPolygon"]).to_numpy()):
        errors.append(f"building {keys[i]!r}: geometry is {types.iloc[i]}, expected a polygon")
    valid = shapely.is_valid(frame.geometry.values)
    for i in np.flatnonzero(~valid & types.isin(["Polygon", "MultiPolygon"]).to_numpy()):
        reason = shapely.is_valid_reason(frame.geometry.values[i])
        errors.append(f"building {keys[i]!r}: invalid footprint ({reason})")
    floors = _integers(frame, "floors", keys, errors, minimum=0, maximum=200)
    entrances = _entrances(frame, keys, errors)
    _raise(errors, path)
    known = {"key", "address", "floors", "use", "entrance_lon", "entrance_lat", frame.geometry.name}
    extra = [c for c in frame.columns if c not in known]
    table = gpd.GeoDataFrame(
        {
            "key": keys,
            "address": _texts(frame, "address"),
            "floors": floors,
            "use": _texts(frame, "use"),
            "entrance_lon": entrances[0],
            "entrance_lat": entrances[1],
            "attributes": [_plain(r) for r in frame[extra].to_dict("records")],
        },
        geometry=frame.geometry.values,
        crs=frame.crs,
    )
    with db.transaction() as repo:
        count = repo.places.upsert_buildings(table, on_progress=on_progress)
        _audit(repo, actor, "buildings", path, count)
    return PlacesImport("buildings", count, encoding=used)


def import_households(
    db: Database,
    *,
    path: str | Path,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
    encoding: str | None = None,
) -> PlacesImport:
    """Import households (key, building_key, unit_no, floor, room, persons).

    Every household must hang on a stored building (or fail, naming it).
    """
    table = _table(path, encoding)
    errors: list[str] = []
    keys = _keys(table, path, errors)
    if "building_key" not in table:
        raise InputError(f"{path}: no building_key column", field="building_key")
    buildings = [None if _missing(b) else str(b) for b in table["building_key"]]
    persons = _integers(
        table, "persons", keys, errors, minimum=0, maximum=_MAX_PERSONS, required=True
    )
    floors = _integers(table, "floor", keys, errors, minimum=-10, maximum=200)
    with db.reader() as repo:
        stored = repo.places.building_keys([b for b in buildings if b])
    for key, building in zip(keys, buildings, strict=True):
        if building is None or building not in stored:
            errors.append(f"household {key!r}: building {building!r} does not exist")
            if len(errors) > _MAX_ERRORS:
                break
    _raise(errors, path)
    rows = pd.DataFrame(
        {
            "key": keys,
            "building_key": buildings,
            "unit_no": _texts(table, "unit_no"),
            "floor": floors,
            "room": _texts(table, "room"),
            "persons": persons,
        }
    )
    with db.transaction() as repo:
        count = repo.places.upsert_households(rows, on_progress=on_progress)
        _audit(repo, actor, "households", path, count)
    # Personal-data minimisation: anything else (names, ID numbers...) is not
    # stored; say so rather than drop it silently.
    kept = {"key", "building_key", "unit_no", "floor", "room", "persons"}
    return PlacesImport(
        "households",
        count,
        tuple(c for c in table.columns if c not in kept),
        encoding=_encoding(table),
    )


def import_pois(
    db: Database,
    *,
    path: str | Path,
    crs: str | None = None,
    actor: Principal = SYSTEM,
    encoding: str | None = None,
) -> PlacesImport:
    """Import points of interest (key, name, category; points or lon/lat columns).

    Institutions may name the dedicated grid (专属网格) they own in a
    ``dedicated_grid`` column; it is checked and kept with the place.
    """
    frame = _points_table(path, crs, encoding)
    used = _encoding(frame)
    errors: list[str] = []
    keys = _keys(frame, path, errors)
    for column in ("name", "category"):
        if column not in frame:
            raise InputError(f"{path}: no {column} column", field=column)
    types = frame.geometry.geom_type.fillna("None").to_numpy()
    for i in np.flatnonzero(types != "Point"):
        errors.append(f"place {keys[i]!r}: geometry is {types[i]}, expected a point")
    if "dedicated_grid" in frame:
        _check_dedicated(db, frame, keys, errors)
    _raise(errors, path)
    table = pd.DataFrame(
        {
            "key": keys,
            "name": _texts(frame, "name"),
            "category": _texts(frame, "category"),
            "address": _texts(frame, "address"),
            "building_key": _texts(frame, "building_key"),
            "lon": shapely.get_x(frame.geometry.values),
            "lat": shapely.get_y(frame.geometry.values),
            "attributes": [
                _plain(r)
                for r in frame[[c for c in frame.columns if c not in _POI_COLUMNS]].to_dict(
                    "records"
                )
            ],
        }
    )
    with db.transaction() as repo:
        count = repo.places.upsert_pois(table)
        _audit(repo, actor, "pois", path, count)
    return PlacesImport("places", count, encoding=used)


def _audit(repo: Repository, actor: Principal, kind: str, path: str | Path, count: int) -> None:
    # File name and count only: the rows themselves are personal data.
    append_audit(
        repo,
        actor=actor,
        action=f"places.import.{kind}",
        target=f"places:{kind}",
        detail={"source": Path(path).name, "rows": count},
    )


def _check_dedicated(
    db: Database, frame: gpd.GeoDataFrame, keys: list[str], errors: list[str]
) -> None:
    # An institution may own a dedicated grid (专属网格): it must be a current
    # grid of kind "dedicated" that contains the institution.
    wanted = {str(c) for c in frame["dedicated_grid"] if not _missing(c)}
    with db.reader() as repo:
        grids = repo.units_frame(codes=sorted(wanted)).set_index("code") if wanted else None
    for key, code, point in zip(keys, frame["dedicated_grid"], frame.geometry.values, strict=True):
        if _missing(code):
            continue
        if grids is None or str(code) not in grids.index:
            errors.append(f"place {key!r}: dedicated grid {code!r} does not exist")
        elif grids.loc[str(code), "kind"] != "dedicated":
            errors.append(f"place {key!r}: grid {code!r} is not a dedicated (专属) grid")
        elif not shapely.covers(grids.loc[str(code)].geometry, point):
            errors.append(f"place {key!r}: lies outside its dedicated grid {code!r}")


def _points_table(path: str | Path, crs: str | None, encoding: str | None) -> gpd.GeoDataFrame:
    # Points come as geometries (GeoJSON, GeoPackage...) or as lon/lat columns
    # of a CSV/Parquet/Excel table (then in CGCS2000 unless --crs says otherwise).
    tabular = format_for(str(path), path).reader in ("csv", "parquet", "xlsx")
    if tabular and "lon" in (table := _table(path, encoding)):
        if "lat" not in table:
            raise InputError(f"{path}: a lon column needs a lat column", field="lat")
        x = pd.to_numeric(table["lon"], errors="coerce")
        y = pd.to_numeric(table["lat"], errors="coerce")
        bad = np.flatnonzero((x.isna() | y.isna()).to_numpy())
        if len(bad):
            raise InputError(f"{path}: row {bad[0] + 1}: lon/lat is not numeric", field="lon")
        frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y), crs=None)
        frame.attrs = dict(table.attrs)
        stored = _storage(frame, parse_crs(crs or "cgcs2000"), path)
    else:
        frame = read_frame(path, encoding=encoding)
        stored = _storage(frame, parse_crs(crs) if crs else None, path)
    stored.attrs = dict(frame.attrs)
    return stored


def assign_places(
    db: Database,
    *,
    layer: str = "governance",
    level: str = "micro_grid",
    at: str | date | datetime | None = None,
    index: GridIndex | None = None,
) -> Assignment:
    """Assign every stored building to the units of one level valid at ``at``.

    ``index`` is a :class:`GridIndex` of those units already built (e.g. the
    locate service's); it is used when it indexes exactly them.
    """
    when = parse_time(at, field="at")
    with db.reader() as repo:
        units = repo.units_frame(layer=layer, level=level, at=when)
        buildings = repo.places.buildings_frame()
    if units.empty:
        raise InputError(f"{layer}:{level} has no units at {isoformat_local(when)}", field="level")
    if buildings.empty:
        raise InputError("no buildings are stored: import some first", field="buildings")
    entrance = gpd.points_from_xy(buildings["entrance_lon"], buildings["entrance_lat"], crs=4490)
    buildings["entrance"] = [
        None if p is None or p.is_empty or math.isnan(p.x) else p for p in entrance
    ]
    return assign_buildings(buildings, units, entrance="entrance", index=_matching(index, units))


def _matching(index: GridIndex | None, units: gpd.GeoDataFrame) -> GridIndex | None:
    # A shared index may have been built for other versions (a rebuild under
    # way): use it only when it indexes exactly these units.
    if index is None or len(index) != len(units):
        return None
    return index if np.array_equal(index.codes, units["code"].to_numpy(dtype=object)) else None


def reassignment_diff(
    db: Database,
    *,
    before: str | date | datetime,
    after: str | date | datetime | None = None,
    layer: str = "governance",
    level: str = "micro_grid",
) -> pd.DataFrame:
    """Return the buildings whose unit differs between two boundary versions."""
    old = assign_places(db, layer=layer, level=level, at=before)
    new = assign_places(db, layer=layer, level=level, at=after)
    return diff(old, new)


def unit_workload(
    db: Database,
    *,
    layer: str = "governance",
    at: str | date | datetime | None = None,
    indexes: Callable[[str, str], GridIndex | None] | None = None,
) -> Workload:
    """Count buildings, households, persons and places per unit of every level of a layer.

    ``indexes(layer, level)`` may return a built index of a level's units
    (the locate service's), so that one index per level serves everything.
    """
    when = parse_time(at, field="at")
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        units = repo.units_frame(layer=layer, at=when)
        households = repo.places.households_table()
        places = repo.places.pois_table()
    present = set(units["level"])
    lowest = next((lv.name for lv in reversed(spec.levels) if lv.name in present), None)
    if lowest is None:
        raise InputError(f"layer {layer!r} has no units at {isoformat_local(when)}", field="layer")
    lowest_units = units[units["level"] == lowest]
    shared = _matching(indexes(layer, lowest) if indexes else None, lowest_units)
    assignment = assign_places(db, layer=layer, level=lowest, at=when, index=shared)
    place_points = None
    if not places.empty:
        # Places outside any building are counted by where they stand.
        index = shared or GridIndex.from_frame(lowest_units, code="code")
        rows = index.lookup_index(places["lon"].to_numpy(float), places["lat"].to_numpy(float))
        codes = lowest_units["code"].to_numpy(dtype=object)
        place_points = places.assign(point_unit=[codes[r] if r >= 0 else None for r in rows])
    return workload(
        assignment,
        households,
        pd.DataFrame(units.drop(columns="geometry")),
        levels=spec,
        places=place_points,
    )


def _storage(
    frame: gpd.GeoDataFrame, declared: CoordinateSystem | None, path: str | Path
) -> gpd.GeoDataFrame:
    try:
        return to_storage_crs(frame, declared=declared)
    except InputError as error:
        raise InputError(f"{path}: {error.message}", rule=error.rule, field="crs") from None


def _table(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    # CSV cells stay text (codes keep their zeros); Parquet keeps its types.
    source = open_source(path, accept=("csv", "parquet", "xlsx"), encoding=encoding)
    return read_table(source, dtype=str, keep_default_na=False, na_values=[""])


def _encoding(frame: pd.DataFrame) -> str | None:
    text = frame.attrs.get("encoding")
    return text.describe() if text is not None and text.notable else None


def _keys(frame: pd.DataFrame, path: str | Path, errors: list[str]) -> list[str]:
    if "key" not in frame:
        raise InputError(f"{path}: no key column (a unique id per row)", field="key")
    keys = ["" if _missing(k) else str(k).strip() for k in frame["key"]]
    for i, key in enumerate(keys):
        if not key:
            errors.append(f"row {i + 1}: key is empty")
    seen: set[str] = set()
    for key in keys:
        if key and key in seen:
            errors.append(f"key {key!r} appears more than once")
        seen.add(key)
    return keys


def _integers(
    frame: pd.DataFrame,
    column: str,
    keys: list[str],
    errors: list[str],
    *,
    minimum: int,
    maximum: int,
    required: bool = False,
) -> list[int | None]:
    if column not in frame:
        if required:
            raise InputError(f"no {column} column", field=column)
        return [None] * len(frame)
    values: list[int | None] = []
    for key, raw in zip(keys, frame[column], strict=True):
        if _missing(raw):
            if required:
                errors.append(f"{key!r}: {column} is missing")
            values.append(None)
            continue
        try:
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            value = int(number)
        except (TypeError, ValueError):
            errors.append(f"{key!r}: {column} {raw!r} is not a whole number")
            values.append(None)
            continue
        if not minimum <= value <= maximum:
            errors.append(f"{key!r}: {column} {value} is outside {minimum}..{maximum}")
        values.append(value)
    return values


def _entrances(
    frame: gpd.GeoDataFrame, keys: list[str], errors: list[str]
) -> tuple[list[float | None], list[float | None]]:
    if "entrance_lon" not in frame or "entrance_lat" not in frame:
        return [None] * len(frame), [None] * len(frame)
    lons: list[float | None] = []
    lats: list[float | None] = []
    for key, lon, lat, footprint in zip(
        keys, frame["entrance_lon"], frame["entrance_lat"], frame.geometry.values, strict=True
    ):
        if _missing(lon) and _missing(lat):
            lons.append(None)
            lats.append(None)
            continue
        try:
            x, y = float(lon), float(lat)
        except (TypeError, ValueError):
            errors.append(f"building {key!r}: entrance ({lon!r}, {lat!r}) is not numeric")
            lons.append(None)
            lats.append(None)
            continue
        # An entrance is on or next to its building (50 m ≈ 5e-4°).
        if footprint is not None and shapely.distance(footprint, shapely.Point(x, y)) > 5e-4:
            errors.append(f"building {key!r}: entrance ({x}, {y}) is far from its footprint")
        lons.append(x)
        lats.append(y)
    return lons, lats


def _texts(frame: pd.DataFrame, column: str) -> list[str | None]:
    if column not in frame:
        return [None] * len(frame)
    return [None if _missing(v) else str(v) for v in frame[column]]


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
        if _missing(value):
            continue
        out[str(key)] = value.item() if isinstance(value, np.generic) else value
    return out


def _raise(errors: list[str], path: str | Path) -> None:
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS])
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise InputError(
            f"{path}: {len(errors)} problem(s), nothing imported: {shown}{more}", field="file"
        )


def moved_by_change(
    db: Database, *, layer: str, level: str, valid_from: datetime
) -> pd.DataFrame | None:
    """Return the buildings a boundary change at ``valid_from`` moves (``None``: no buildings).

    Re-assignment after a boundary import: the assignment to the level's
    units valid just before the change, against the one valid from it.
    """
    with db.reader() as repo:
        if repo.places.counts()["buildings"] == 0:
            return None
        if repo.units_frame(layer=layer, level=level, at=valid_from - timedelta(seconds=1)).empty:
            return None  # nothing to compare with: the level is new
    return reassignment_diff(
        db,
        layer=layer,
        level=level,
        before=valid_from.replace(tzinfo=UTC) - timedelta(seconds=1),
        after=valid_from.replace(tzinfo=UTC),
    )
