"""Bulk geocoding of tables and files, in chunks with bounded memory.

CSV and (Geo)Parquet are streamed chunk by chunk; GeoJSON, GeoPackage,
FlatGeobuf and KML files are read whole (they hold the points as
geometries). Every input goes through :mod:`gis.files` (declared format,
content check, one GDAL driver, size limits). The output has the input's
columns plus ``lon``, ``lat`` (CGCS2000), ``status`` and one
``<layer>_<level>`` code column per level, in the input's format; CSV is
written spreadsheet-safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely

from gis.crs import parse_crs
from gis.errors import InputError
from gis.files import FileFormat, ReadLimits, Source, format_for, iter_table, open_source, write_csv
from gis.files import read_frame as read_vector
from gis.locate import LocateService, Visible
from gis.times import TimeLike
from gis.types import RowProgress as Progress

__all__ = ["BATCH_FORMATS", "geocode_file", "geocode_table", "table_format"]

_RESULT_PREFIX = "tongge_"
# Formats a batch reads and writes back in kind: one file each way (a
# Shapefile is several files).
BATCH_FORMATS = ("csv", "parquet", "geojson", "gpkg", "fgb", "kml")


def table_format(path: str | Path, *, label: str | None = None) -> str:
    """Return ``csv``, ``parquet`` or ``vector`` from a file name."""
    return _kind(_format(path, label))


def _format(path: str | Path, label: str | None) -> FileFormat:
    return format_for(label if label is not None else str(path), path, accept=BATCH_FORMATS)


def _kind(fmt: FileFormat) -> str:
    return fmt.reader if fmt.reader in ("csv", "parquet") else "vector"


def geocode_table(
    service: LocateService,
    table: pd.DataFrame,
    *,
    x: str | None,
    y: str | None,
    crs: str = "cgcs2000",
    at: TimeLike = None,
    visible: Visible | None = None,
) -> pd.DataFrame:
    """Return ``table`` with the locate columns added (x/y columns or point geometry)."""
    if isinstance(table, gpd.GeoDataFrame) and (x is None or y is None):
        xs, ys, system = _point_columns(table)
        if parse_crs(crs).datum is not None:
            system = crs  # GCJ-02/BD-09 files say WGS84; the caller's declaration wins
    else:
        for role, column in (("x", x), ("y", y)):
            if column is None or column not in table.columns:
                raise InputError(
                    f"no {role} column {column!r}; columns are: {_names(table.columns)}",
                    field=role,
                )
        assert x is not None and y is not None
        xs = pd.to_numeric(table[x], errors="coerce").to_numpy(dtype=float)
        ys = pd.to_numeric(table[y], errors="coerce").to_numpy(dtype=float)
        system = crs
    located = service.locate_many(xs, ys, crs=system, at=at, visible=visible)
    located.index = table.index
    clash = [c for c in located.columns if c in table.columns]
    located = located.rename(columns={c: _RESULT_PREFIX + c for c in clash})
    return pd.concat([table, located], axis=1)


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
) -> int:
    """Geocode a CSV/Parquet/vector file into ``target`` (same format); return the row count.

    ``visible`` limits the codes written (see :meth:`LocateService.locate_many`).
    ``label`` names the input in messages (default: its path; the API passes
    the upload's own name); ``limits`` default to the settings'.
    """
    fmt = _format(source, label)
    output = _format(target, None)
    if _kind(output) != _kind(fmt):
        raise InputError(
            f"{target}: write the same kind of file as the input ({_kind(fmt)})", field="output"
        )
    parse_crs(crs)
    checked = open_source(source, label=label, accept=(fmt.name,))
    target = Path(target)
    if _kind(fmt) == "vector":
        frame = read_vector(checked, limits)
        if len(frame) == 0:
            raise InputError(f"{checked.label}: has no rows", field="file")
        result = geocode_table(service, frame, x=x, y=y, crs=crs, at=at, visible=visible)
        located = gpd.GeoDataFrame(result, geometry=frame.geometry.name, crs=frame.crs)
        pyogrio.write_dataframe(located, target, driver=output.driver)
        if on_progress:
            on_progress(len(result))
        return len(result)
    return _geocode_chunks(
        service,
        checked,
        target,
        x=x,
        y=y,
        crs=crs,
        at=at,
        visible=visible,
        chunk_rows=chunk_rows,
        on_progress=on_progress,
        limits=limits,
    )


def _geocode_chunks(
    service: LocateService,
    source: Source,
    target: Path,
    *,
    x: str | None,
    y: str | None,
    crs: str,
    at: TimeLike,
    visible: Visible | None,
    chunk_rows: int,
    on_progress: Progress | None,
    limits: ReadLimits | None,
) -> int:
    rows = 0
    writer: pq.ParquetWriter | None = None
    first = True
    chunks: Iterator[pd.DataFrame] = iter_table(
        source, limits, chunk_rows=chunk_rows, dtype_backend="numpy_nullable"
    )
    try:
        for chunk in chunks:
            result = geocode_table(service, chunk, x=x, y=y, crs=crs, at=at, visible=visible)
            if source.format.reader == "csv":
                write_csv(result, target, mode="w" if first else "a", header=first)
            else:
                table = pa.Table.from_pandas(result, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table.cast(writer.schema))
            first = False
            rows += len(result)
            if on_progress:
                on_progress(rows)
    finally:
        if writer is not None:
            writer.close()
    if first:
        raise InputError(f"{source.label}: has no rows", field="file")
    return rows


def _names(columns: pd.Index, most: int = 20, width: int = 40) -> str:
    # The names come from the upload: list enough to help, never echo it all.
    names = [str(c) if len(str(c)) <= width else f"{str(c)[:width]}…" for c in columns[:most]]
    more = f" and {len(columns) - most} more" if len(columns) > most else ""
    return ", ".join(names) + more


def _point_columns(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    if frame.crs is None:
        raise InputError("the file has no CRS: give --crs or x/y columns", rule="crs_missing")
    geometry = frame.geometry.values
    kinds = set(frame.geometry.geom_type.dropna())
    if not kinds <= {"Point"}:
        raise InputError(
            f"geocoding needs points, found {', '.join(sorted(kinds))}", field="geometry"
        )
    return shapely.get_x(geometry), shapely.get_y(geometry), frame.crs.to_string()
