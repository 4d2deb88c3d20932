"""Bulk geocoding of tables and files, in chunks with bounded memory.

Tables — CSV (any of ``,`` tab ``;`` ``|``, UTF-8 or GBK/GB18030), Excel
``.xlsx`` and (Geo)Parquet — are streamed chunk by chunk; GeoJSON,
GeoPackage, FlatGeobuf and KML files are read whole (they hold the points
as geometries). Every input goes through :mod:`gis.files` (declared format,
content check, one GDAL driver, size limits, text encoding).

Where a row is:

- ``x``/``y`` columns when given, else the first pair of the usual names
  (``lon``/``lat``, ``lng``/``lat``, ``longitude``/``latitude``,
  ``经度``/``纬度``, ``x``/``y``);
- a GeoParquet's geometry column (as geopandas writes it), in its CRS;
- or an ``address`` column of Chinese standard addresses (address →
  building → units, as a single address locate: ``unmatched`` and
  ``ambiguous`` are never presented as certain).

The output has the input's columns unchanged (a ``lat`` column keeps its
name and values) plus ``lon``, ``lat`` (CGCS2000; ``tongge_lon`` and
``tongge_lat`` when the input has those names), ``status`` and one
``<layer>_<level>`` code column per level (with ``names``, each followed by
its ``<layer>_<level>_name``). Tables may be written as CSV (spreadsheet-safe,
with a BOM for Excel), Parquet or ``.xlsx`` whatever the input table was;
vector files are written back in their own format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely
from pyproj import CRS

from gis.crs import parse_crs
from gis.errors import InputError
from gis.files import (
    FileFormat,
    ReadLimits,
    Source,
    XlsxWriter,
    format_for,
    iter_table,
    open_source,
    write_csv,
)
from gis.files import read_frame as read_vector
from gis.locate import LocateService, Visible
from gis.times import TimeLike
from gis.types import RowProgress as Progress

__all__ = [
    "BATCH_FORMATS",
    "BatchResult",
    "geocode_file",
    "geocode_table",
    "table_format",
]

_RESULT_PREFIX = "tongge_"
# Formats a batch reads and writes: one file each way (a Shapefile is several files).
BATCH_FORMATS = ("csv", "parquet", "xlsx", "geojson", "gpkg", "fgb", "kml")
# Coordinate column pairs tried, in order, when x/y are not named.
_XY_NAMES = (
    ("lon", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("经度", "纬度"),
    ("x", "y"),
)


@dataclass(frozen=True)
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    rows : int
        Rows written.
    encoding : str or None
        How the input's text was read (``GBK (detected)``), when not UTF-8.
    """

    rows: int
    encoding: str | None = None


def table_format(path: str | Path, *, label: str | None = None) -> str:
    """Return ``csv``, ``parquet``, ``xlsx`` or ``vector`` from a file name."""
    return _kind(_format(path, label))


def _format(path: str | Path, label: str | None) -> FileFormat:
    return format_for(label if label is not None else str(path), path, accept=BATCH_FORMATS)


def _kind(fmt: FileFormat) -> str:
    return fmt.reader if fmt.reader in ("csv", "parquet", "xlsx") else "vector"


def geocode_table(
    service: LocateService,
    table: pd.DataFrame,
    *,
    x: str | None,
    y: str | None,
    crs: str = "cgcs2000",
    at: TimeLike = None,
    visible: Visible | None = None,
    address: str | None = None,
    names: bool = False,
    geometry_crs: CRS | None = None,
) -> pd.DataFrame:
    """Return ``table`` with the locate columns added.

    Where each row is: the ``address`` column, else the ``x``/``y`` columns
    (named, or found by their usual names), else the point geometry (of a
    GeoDataFrame, or a WKB column of a GeoParquet chunk in ``geometry_crs``).
    """
    if address is not None:
        _require(table, address, "address")
        located = service.locate_addresses(
            list(table[address]), at=at, visible=visible, names=names
        )
        return _joined(table, located)
    geometry = _geometry_column(table, geometry_crs)
    if geometry is not None and x is None and y is None:
        xs, ys, system = _point_columns(table, geometry, geometry_crs)
        if parse_crs(crs).datum is not None:
            system = crs  # GCJ-02/BD-09 files say WGS84; the caller's declaration wins
    else:
        x, y = _xy_columns(table, x, y)
        xs = pd.to_numeric(table[x], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ys = pd.to_numeric(table[y], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        system = crs
    located = service.locate_many(xs, ys, crs=system, at=at, visible=visible, names=names)
    return _joined(table, located)


def _joined(table: pd.DataFrame, located: pd.DataFrame) -> pd.DataFrame:
    # The input's columns keep their names; ours give way with a prefix.
    located.index = table.index
    clash = [c for c in located.columns if c in table.columns]
    located = located.rename(columns={c: _RESULT_PREFIX + c for c in clash})
    return pd.concat([table, located], axis=1)


def _require(table: pd.DataFrame, column: str, role: str) -> None:
    if column not in table.columns:
        raise InputError(
            f"no {role} column {column[:40]!r}; columns are: {_names(table.columns)}",
            field=role,
        )


def _xy_columns(table: pd.DataFrame, x: str | None, y: str | None) -> tuple[str, str]:
    if x is None and y is None:
        folded = {str(c).strip().lower(): c for c in table.columns}
        for xname, yname in _XY_NAMES:
            if xname in folded and yname in folded:
                return str(folded[xname]), str(folded[yname])
        raise InputError(
            "no coordinate columns found (lon/lat, lng/lat, 经度/纬度, x/y): name them "
            f"with x and y, or give an address column; columns are: {_names(table.columns)}",
            field="x",
        )
    for role, column in (("x", x), ("y", y)):
        if column is None or column not in table.columns:
            raise InputError(
                f"no {role} column {column!r}; columns are: {_names(table.columns)}",
                field=role,
            )
    assert x is not None and y is not None
    return x, y


def geocode_file(
    service: LocateService,
    source: str | Path,
    target: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    crs: str = "cgcs2000",
    at: TimeLike = None,
    chunk_rows: int = 250_000,
    on_progress: Progress | None = None,
    visible: Visible | None = None,
    label: str | None = None,
    limits: ReadLimits | None = None,
    encoding: str | None = None,
    address: str | None = None,
    names: bool = False,
) -> BatchResult:
    """Geocode a table or vector file into ``target``; return what was done.

    ``visible`` limits the codes written (see :meth:`LocateService.locate_many`).
    ``label`` names the input in messages (default: its path; the API passes
    the upload's own name); ``limits`` default to the settings'; ``encoding``
    is a CSV's text encoding (default: found from the bytes); ``address``
    names a column of standard addresses to locate instead of coordinates;
    ``names`` adds the unit names next to the codes.
    """
    fmt = _format(source, label)
    output = _format(target, None)
    if (_kind(output) == "vector") != (_kind(fmt) == "vector"):
        wanted = "CSV, Parquet or .xlsx" if _kind(fmt) != "vector" else f"{fmt.title}"
        raise InputError(f"{Path(target).name}: write the result as {wanted}", field="output")
    if _kind(output) == "vector" and output.name != fmt.name:
        raise InputError(
            f"{Path(target).name}: write the result as {fmt.title}, like the input",
            field="output",
        )
    parse_crs(crs)
    checked = open_source(source, label=label, accept=(fmt.name,), encoding=encoding)
    target = Path(target)
    if _kind(fmt) == "vector":
        frame = read_vector(checked, limits)
        if len(frame) == 0:
            raise InputError(f"{checked.label}: has no rows", field="file")
        result = geocode_table(
            service, frame, x=x, y=y, crs=crs, at=at, visible=visible, address=address, names=names
        )
        located = gpd.GeoDataFrame(result, geometry=frame.geometry.name, crs=frame.crs)
        pyogrio.write_dataframe(located, target, driver=output.driver)
        if on_progress:
            on_progress(len(result))
        return BatchResult(len(result), _described(frame))
    return _geocode_chunks(
        service,
        checked,
        target,
        output,
        options=dict(x=x, y=y, crs=crs, at=at, visible=visible, address=address, names=names),
        chunk_rows=chunk_rows,
        on_progress=on_progress,
        limits=limits,
    )


def _geocode_chunks(
    service: LocateService,
    source: Source,
    target: Path,
    output: FileFormat,
    *,
    options: dict[str, Any],
    chunk_rows: int,
    on_progress: Progress | None,
    limits: ReadLimits | None,
) -> BatchResult:
    rows = 0
    geo = _geo_metadata(source) if source.format.reader == "parquet" else None
    geometry_crs = _geoparquet_crs(geo, source.label) if geo is not None else None
    sink = _Sink(target, output, geo=geo)
    encoding: str | None = None
    chunks: Iterator[pd.DataFrame] = iter_table(
        source, limits, chunk_rows=chunk_rows, dtype_backend="numpy_nullable"
    )
    try:
        for chunk in chunks:
            if rows == 0:
                encoding = _described(chunk)
            # Through the module so that tests can slow it down.
            result = geocode_table(service, chunk, geometry_crs=geometry_crs, **options)
            sink.write(result)
            rows += len(result)
            if on_progress:
                on_progress(rows)
        if sink.empty:
            raise InputError(f"{source.label}: has no rows", field="file")
    except BaseException:
        sink.close(keep=False)
        raise
    sink.close(keep=True)
    return BatchResult(rows, encoding)


class _Sink:
    """Where a chunked batch goes: CSV (appended), Parquet or Excel (streamed)."""

    def __init__(self, target: Path, fmt: FileFormat, *, geo: bytes | None) -> None:
        self.target = target
        self.fmt = fmt
        self.geo = geo
        self.empty = True
        self._parquet: pq.ParquetWriter | None = None
        self._excel: XlsxWriter | None = XlsxWriter(target) if fmt.reader == "xlsx" else None

    def write(self, result: pd.DataFrame) -> None:
        if self.fmt.reader != "parquet" and self.geo is not None:
            result = _wkt(result, self.geo)
        if self.fmt.reader == "csv":
            write_csv(result, self.target, mode="a" if not self.empty else "w", header=self.empty)
        elif self._excel is not None:
            self._excel.append(result)
        else:
            table = pa.Table.from_pandas(result, preserve_index=False)
            if self._parquet is None:
                schema = table.schema
                if self.geo is not None:
                    schema = schema.with_metadata({**(schema.metadata or {}), b"geo": self.geo})
                self._parquet = pq.ParquetWriter(self.target, schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self.empty = False

    def close(self, *, keep: bool) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._excel is not None:
            self._excel.__exit__(None if keep and not self.empty else InputError, None, None)


def _described(frame: pd.DataFrame) -> str | None:
    text = frame.attrs.get("encoding")
    return text.describe() if text is not None and text.notable else None


def _geo_metadata(source: Source) -> bytes | None:
    schema = pq.read_schema(source.path)
    return (schema.metadata or {}).get(b"geo")


def _geoparquet_crs(geo: bytes, label: str) -> CRS:
    try:
        meta = json.loads(geo)
        column = meta["columns"][meta["primary_column"]]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{label}: its GeoParquet metadata cannot be read", field="file") from None
    if column.get("encoding", "WKB") != "WKB":
        raise InputError(
            f"{label}: geometry encoded as {str(column.get('encoding'))[:20]!r}; "
            "write it as WKB (geopandas' default) or give x/y columns",
            field="geometry",
        )
    # GeoParquet: no "crs" member means OGC:CRS84 (lon/lat WGS84), null means unknown.
    if "crs" not in column:
        return CRS.from_user_input("OGC:CRS84")
    if column["crs"] is None:
        raise InputError(f"{label}: the geometry has no CRS: give x/y columns", field="crs")
    try:
        return CRS.from_user_input(column["crs"])
    except Exception:
        raise InputError(f"{label}: its geometry CRS cannot be read", field="crs") from None


def _geometry_column(table: pd.DataFrame, geometry_crs: CRS | None) -> str | None:
    if isinstance(table, gpd.GeoDataFrame):
        return str(table.geometry.name)
    if geometry_crs is None:
        return None
    return next((str(c) for c in ("geometry", "geom") if c in table.columns), None)


def _point_columns(
    frame: pd.DataFrame, column: str, geometry_crs: CRS | None
) -> tuple[np.ndarray, np.ndarray, str]:
    if isinstance(frame, gpd.GeoDataFrame):
        if frame.crs is None:
            raise InputError("the file has no CRS: give --crs or x/y columns", rule="crs_missing")
        geometry = frame.geometry.values
        system = frame.crs.to_string()
    else:
        assert geometry_crs is not None
        raw = frame[column].to_numpy(dtype=object)
        try:
            geometry = shapely.from_wkb(raw, on_invalid="ignore")
        except (shapely.errors.GEOSException, TypeError, ValueError):
            raise InputError("the geometry column is not WKB", field="geometry") from None
        system = geometry_crs.to_string()
    kinds = set(shapely.get_type_id(geometry[~shapely.is_missing(geometry)]).tolist())
    if not kinds <= {0}:  # 0: Point
        names = sorted({shapely.GeometryType(k).name.title() for k in kinds})
        raise InputError(f"geocoding needs points, found {', '.join(names)}", field="geometry")
    return shapely.get_x(geometry), shapely.get_y(geometry), system


def _wkt(result: pd.DataFrame, geo: bytes) -> pd.DataFrame:
    # A GeoParquet written as a table: its geometry as WKT text.
    try:
        column = json.loads(geo)["primary_column"]
    except (ValueError, KeyError, TypeError):
        return result
    if column not in result.columns:
        return result
    shapes = shapely.from_wkb(result[column].to_numpy(dtype=object), on_invalid="ignore")
    converted = result.copy()
    converted[column] = shapely.to_wkt(shapes, rounding_precision=-1)
    return converted


def _names(columns: pd.Index, most: int = 20, width: int = 40) -> str:
    # The names come from the upload: list enough to help, never echo it all.
    names = [str(c) if len(str(c)) <= width else f"{str(c)[:width]}…" for c in columns[:most]]
    more = f" and {len(columns) - most} more" if len(columns) > most else ""
    return ", ".join(names) + more
