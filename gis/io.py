"""Read boundary files into unit frames and write unit frames to files.

Reading accepts the formats of :data:`gis.files.FORMATS` (GeoJSON,
GeoPackage, Shapefile, zipped Shapefile, KML, FlatGeobuf, GeoParquet) plus
CSV with a WKT column, always through the guard of :mod:`gis.files`
(declared format, content check, one GDAL driver, size limits); every
problem with the file itself (unreadable, no features, no polygons, unknown
field, no CRS, over a limit) raises :class:`~gis.errors.InputError` naming
the file and field. Problems with the *content* are left to
:func:`gis.validate.validate_units`. CSV is written spreadsheet-safe
(:func:`gis.files.write_csv`).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.crs import STORAGE_CRS, CoordinateSystem, parse_crs, to_storage_crs
from gis.datum import wgs84_to_bd09, wgs84_to_gcj02
from gis.errors import InputError
from gis.files import ReadLimits, Source, open_source, read_table, write_csv, write_xlsx
from gis.files import read_frame as read_vector
from gis.files._excel import EXCEL_CELL_CHARS
from gis.times import isoformat_local
from gis.unitframe import KINDS

__all__ = ["EXPORT_FORMATS", "FieldMap", "read_frame", "read_units", "write_units"]

EXPORT_FORMATS = ("geojson", "gpkg", "shp", "kml", "parquet", "csv", "xlsx")
_CODE_CANDIDATES = ("code", "编码", "网格编码", "unit_code", "id")
_NAME_CANDIDATES = ("name", "名称", "网格名称", "unit_name")
_PARENT_CANDIDATES = ("parent_code", "parent", "上级编码")
_KIND_CANDIDATES = ("kind", "类型")
_WKT_CANDIDATES = ("wkt", "geometry", "geom", "the_geom")
_STANDARD = ("code", "name", "parent_code", "kind")


@dataclass(frozen=True)
class FieldMap:
    """Which source fields hold the code, name, parent code and kind.

    ``None`` means: look for a conventional name (``code``, ``name``,
    ``parent_code``, ``kind``, or their Chinese equivalents).
    """

    code: str | None = None
    name: str | None = None
    parent: str | None = None
    kind: str | None = None


def read_frame(
    path: str | Path,
    *,
    label: str | None = None,
    limits: ReadLimits | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a vector file (or CSV with a WKT column) as it is, CRS included.

    ``label`` names the file in messages (default: ``path``); ``limits``
    default to the settings' (:class:`gis.files.ReadLimits`); ``encoding``
    is the text encoding of a CSV or Shapefile (default: found from the
    bytes; ``attrs["encoding"]`` says which was used).

    Raises
    ------
    InputError
        When the file is missing, unreadable, not what its name declares,
        over a limit (status 413) or has no features.
    """
    source = open_source(path, label=label, encoding=encoding)
    if source.format.reader in ("csv", "xlsx"):
        frame = _read_wkt_csv(source, limits)
    else:
        frame = read_vector(source, limits)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise InputError(f"{source.label}: has no geometry column", field="file")
    if len(frame) == 0:
        raise InputError(f"{source.label}: has no features", field="file")
    return frame


def read_units(
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    crs: str | CoordinateSystem | None = None,
    label: str | None = None,
    limits: ReadLimits | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a boundary file as a unit frame in CGCS2000 (EPSG:4490).

    Parameters
    ----------
    path : str or Path
        GeoJSON, GeoPackage, Shapefile (loose or zipped), KML, FlatGeobuf,
        GeoParquet, or a CSV with a ``wkt`` column (see :mod:`gis.files`).
    fields : FieldMap, optional
        Source field names; conventional names are tried when not given.
    crs : str or CoordinateSystem, optional
        The CRS the file is in, when it does not say, or ``gcj02``/``bd09``
        when its coordinates carry that offset (they are then converted).
    label : str, optional
        How messages name the file (default: ``path``).
    limits : ReadLimits, optional
        Rows, columns and bytes allowed (default: the settings').
    encoding : str, optional
        Text encoding of a CSV or Shapefile (default: its ``.cpg``, else
        found from the bytes: UTF-8, GBK, GB18030).

    Returns
    -------
    GeoDataFrame
        Columns ``code, name, parent_code, kind, attributes, geometry``.
        Non-polygon features are kept (validation reports them).
        ``attrs["encoding"]`` is the :class:`gis.files.TextEncoding` the
        text was read in, when the format has a choice.

    Raises
    ------
    InputError
        Unreadable file, no features, no polygon at all, unknown field, no CRS,
        over a limit (status 413).
    """
    fields = fields or FieldMap()
    frame = read_frame(path, label=label, limits=limits, encoding=encoding)
    source = label if label is not None else str(path)
    declared = parse_crs(crs) if isinstance(crs, str) else crs
    types = frame.geometry.geom_type.fillna("None")
    if not types.isin(["Polygon", "MultiPolygon"]).any():
        found = ", ".join(f"{t} x {n}" for t, n in types.value_counts().items())
        raise InputError(f"{source}: has no polygons at all (found {found})", field="geometry")
    columns = [c for c in frame.columns if c != frame.geometry.name]
    code_field = _field(source, columns, fields.code, _CODE_CANDIDATES, "code", required=True)
    name_field = _field(source, columns, fields.name, _NAME_CANDIDATES, "name")
    parent_field = _field(source, columns, fields.parent, _PARENT_CANDIDATES, "parent")
    kind_field = _field(source, columns, fields.kind, _KIND_CANDIDATES, "kind")
    try:
        storage = to_storage_crs(frame, declared=declared)
    except InputError as error:
        raise InputError(
            f"{source}: {error.message}", rule=error.rule, field="crs", **_raw_location(frame)
        ) from None
    used = {code_field, name_field, parent_field, kind_field}
    rest = [c for c in columns if c not in used]
    units = gpd.GeoDataFrame(
        {
            "code": _codes(storage[code_field]),
            "name": _text(storage[name_field]) if name_field else [None] * len(storage),
            "parent_code": _codes(storage[parent_field]) if parent_field else [None] * len(storage),
            "kind": _kinds(source, storage[kind_field])
            if kind_field
            else ["comprehensive"] * len(storage),
            "attributes": [
                _attributes(row, text_numbers=Path(str(path)).suffix.lower() in _TEXT_TABLES)
                for row in storage[rest].to_dict("records")
            ],
        },
        geometry=storage.geometry.values,
        crs=STORAGE_CRS,
        index=storage.index,
    )
    if "encoding" in frame.attrs:
        units.attrs["encoding"] = frame.attrs["encoding"]
    return units


def write_units(
    units: gpd.GeoDataFrame,
    path: str | Path,
    *,
    fmt: str,
    crs: str | None = None,
) -> Path:
    """Write a unit frame to ``path`` as geojson, gpkg, shp, kml, parquet, csv or xlsx.

    ``attributes`` are spread into columns; ``crs`` (default CGCS2000, KML
    always WGS84) may be ``gcj02``/``bd09`` for phone apps. CSV and Excel
    hold the boundary as a ``wkt`` column (Excel's to 7 decimals; a
    boundary longer than an Excel cell is refused). Times are written in
    China time with their offset (``2026-01-01T00:00:00+08:00``) in every
    format. A shapefile whose ``path`` ends in ``.zip`` is one ZIP archive of
    its ``.shp``, ``.shx``, ``.dbf``, ``.prj`` and ``.cpg``.
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(
            f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}", field="format"
        )
    target = Path(path)
    flat = _flatten(units)
    flat = _reproject_for_export(flat, "wgs84" if fmt == "kml" and crs is None else crs)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    if fmt == "parquet":
        flat.to_parquet(target)
    elif fmt in ("csv", "xlsx"):
        table = pd.DataFrame(flat.drop(columns=flat.geometry.name))
        precision = -1 if fmt == "csv" else 7
        table["wkt"] = shapely.to_wkt(flat.geometry.values, rounding_precision=precision)
        if fmt == "csv":
            write_csv(table, target)
        else:
            longest = table["wkt"].str.len().fillna(0)
            if len(table) and longest.max() > EXCEL_CELL_CHARS:
                code = table["code"].iloc[int(longest.argmax())] if "code" in table else "?"
                raise InputError(
                    f"the boundary of unit {code} is longer than an Excel cell holds "
                    f"({EXCEL_CELL_CHARS:,} characters): export csv, gpkg or parquet",
                    field="format",
                )
            write_xlsx(table, target, sheet="units")
    elif fmt == "shp" and target.suffix.lower() == ".zip":
        _write_zipped_shapefile(flat, target)
    else:
        driver = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile", "kml": "KML"}[fmt]
        options: dict[str, Any] = {}
        if fmt == "shp":
            # dBase field names have at most 10 characters.
            flat = flat.rename(columns={"parent_code": "parent"})
            options["ENCODING"] = "UTF-8"
        pyogrio.write_dataframe(flat, target, driver=driver, **options)
    return target


def _write_zipped_shapefile(flat: gpd.GeoDataFrame, target: Path) -> None:
    # One download, as people mail shapefiles; the members are named after the archive.
    with tempfile.TemporaryDirectory(prefix="tongge-shp-") as folder:
        shapefile = Path(folder) / f"{target.stem}.shp"
        pyogrio.write_dataframe(
            flat.rename(columns={"parent_code": "parent"}),
            shapefile,
            driver="ESRI Shapefile",
            ENCODING="UTF-8",
        )
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(Path(folder).iterdir()):
                archive.write(member, member.name)


def _flatten(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns: dict[str, Any] = {}
    for column in units.columns:
        if column in ("attributes", units.geometry.name):
            continue
        values = units[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            # What people read, with the offset: never a bare UTC time taken for local.
            values = pd.Series(
                [isoformat_local(v) if pd.notna(v) else None for v in values],
                index=values.index,
                dtype=object,
            )
        columns[column] = values
    if "attributes" in units:
        extra = pd.DataFrame(list(units["attributes"].map(lambda a: a or {})), index=units.index)
        for column in extra.columns:
            if column not in columns:
                columns[column] = extra[column].map(
                    lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                )
    return gpd.GeoDataFrame(
        columns, geometry=units.geometry.values, crs=units.crs, index=units.index
    )


def _reproject_for_export(frame: gpd.GeoDataFrame, crs: str | None) -> gpd.GeoDataFrame:
    if crs is None:
        return frame.to_crs(STORAGE_CRS)
    target = parse_crs(crs)
    out = frame.to_crs(target.crs)
    if target.datum is None:
        return out
    forward = wgs84_to_gcj02 if target.datum == "gcj02" else wgs84_to_bd09

    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = forward(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    shifted = shapely.transform(np.asarray(out.geometry.values), convert)
    # The offset datums have no EPSG code: the file says WGS84 and the name says the rest.
    return out.set_geometry(gpd.GeoSeries(shifted, index=out.index, crs=target.crs))


def _raw_location(frame: gpd.GeoDataFrame) -> dict[str, float]:
    # Where the data is, for the crs_missing report: only when the raw
    # coordinates can only be degrees (most CRS-less files are lon/lat).
    minx, miny, maxx, maxy = frame.geometry.total_bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        return {}
    return {"lon": round((minx + maxx) / 2, 7), "lat": round((miny + maxy) / 2, 7)}


def _read_wkt_csv(source: Source, limits: ReadLimits | None) -> gpd.GeoDataFrame:
    table = read_table(source, limits, dtype=str, keep_default_na=False, na_values=[""])
    lower = {c.lower(): c for c in table.columns}
    column = next((lower[c] for c in _WKT_CANDIDATES if c in lower), None)
    if column is None:
        raise InputError(
            f"{source.label}: a CSV needs a WKT geometry column named one of "
            f"{', '.join(_WKT_CANDIDATES)}",
            field="wkt",
        )
    try:
        geometry = shapely.from_wkt(table[column].fillna("").replace("", None).values)
    except shapely.errors.GEOSException as error:
        raise InputError(
            f"{source.label}: column {column!r} has invalid WKT ({error})", field=column
        ) from None
    frame = gpd.GeoDataFrame(table.drop(columns=[column]), geometry=geometry, crs=None)
    frame.attrs = dict(table.attrs)
    return frame


def _field(
    source: str,
    columns: Sequence[str],
    given: str | None,
    candidates: Sequence[str],
    role: str,
    *,
    required: bool = False,
) -> str | None:
    if given is not None:
        if given in columns:
            return given
        folded = {c.lower(): c for c in columns}
        if given.lower() in folded:
            return folded[given.lower()]
        raise InputError(
            f"{source}: no field {given!r} for the {role}; "
            f"fields are: {', '.join(columns) or 'none'}",
            field=role,
        )
    folded = {c.lower(): c for c in columns}
    for candidate in candidates:
        if candidate.lower() in folded:
            return folded[candidate.lower()]
    if required:
        raise InputError(
            f"{source}: no {role} field found; pass --{role}-field (fields are: "
            f"{', '.join(columns) or 'none'})",
            field=role,
        )
    return None


def _codes(values: pd.Series) -> list[str | None]:
    return [_code(v) for v in values]


def _code(value: object) -> str | None:
    # Codes are strings; drivers that guess types turn "350502" into 350502
    # or 350502.0: undo that, but never strip leading zeros (they cannot be
    # recovered and the file is what it is).
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    text = str(value).strip()
    return text or None


def _text(values: pd.Series) -> list[str | None]:
    return [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values
    ]


def _kinds(source: str, values: pd.Series) -> list[str]:
    aliases = {"综合": "comprehensive", "专属": "dedicated", "": "comprehensive"}
    kinds = []
    for value in values:
        text = (
            "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        )
        kind = aliases.get(text.strip(), text.strip().lower())
        if kind not in KINDS:
            raise InputError(
                f"{source}: kind {text!r} is not one of comprehensive/综合, dedicated/专属",
                field="kind",
            )
        kinds.append(kind)
    return kinds


_TEXT_TABLES = (".csv", ".tsv", ".txt")
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]*[1-9]")


def _number(text: str) -> Any:
    # A CSV holds only text: "400" was the number 400 when it was exported.
    # Only canonical spellings convert ("001" and "1.50" stay text), so a
    # round trip gives back exactly what was written.
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text) and repr(float(text)) == text:
        return float(text)
    return text


def _attributes(row: dict[str, Any], *, text_numbers: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if text_numbers and isinstance(value, str):
            value = _number(value)
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif not isinstance(value, str | int | float | bool | list | dict):
            value = str(value)
        result[str(key)] = value
    return result
