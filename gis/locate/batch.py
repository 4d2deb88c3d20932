"""Bulk geocoding of tables and files, in chunks with bounded memory.

CSV and (Geo)Parquet are streamed chunk by chunk; GeoJSON and other vector
files are read whole (they hold the points as geometries, so their size is
already bounded by what GDAL reads at once). The output has the input's
columns plus ``lon``, ``lat`` (CGCS2000), ``status`` and one
``<layer>_<level>`` code column per level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from gis.crs import parse_crs
from gis.errors import InputError
from gis.io import read_frame
from gis.locate import LocateService, Visible
from gis.times import TimeLike

__all__ = ["geocode_file", "geocode_table", "table_format"]

Progress = Callable[[int], None]
_RESULT_PREFIX = "tongge_"


def table_format(path: str | Path) -> str:
    """Return ``csv``, ``parquet`` or ``vector`` from a file name."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".geoparquet"):
        return "parquet"
    if suffix in (".geojson", ".json", ".gpkg", ".fgb", ".shp"):
        return "vector"
    raise InputError(
        f"{path}: unknown table format {suffix!r}: use .csv, .parquet or .geojson", field="file"
    )


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
                    f"no {role} column {column!r}; columns are: "
                    f"{', '.join(map(str, table.columns))}",
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
) -> int:
    """Geocode a CSV/Parquet/vector file into ``target`` (same format); return the row count.

    ``visible`` limits the codes written (see :meth:`LocateService.locate_many`).
    """
    source, target = Path(source), Path(target)
    if not source.exists():
        raise InputError(f"{source}: no such file", field="file")
    kind = table_format(source)
    if table_format(target) != kind:
        raise InputError(f"{target}: write the same format as the input ({kind})", field="output")
    parse_crs(crs)
    rows = 0
    if kind == "vector":
        frame = read_frame(source)
        result = geocode_table(service, frame, x=x, y=y, crs=crs, at=at, visible=visible)
        gpd.GeoDataFrame(result, geometry=frame.geometry.name, crs=frame.crs).to_file(target)
        rows = len(result)
        if on_progress:
            on_progress(rows)
        return rows
    writer: pq.ParquetWriter | None = None
    first = True
    try:
        for chunk in _chunks(source, kind, chunk_rows):
            result = geocode_table(service, chunk, x=x, y=y, crs=crs, at=at, visible=visible)
            if kind == "csv":
                result.to_csv(target, mode="w" if first else "a", header=first, index=False)
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
        raise InputError(f"{source}: has no rows", field="file")
    return rows


def _chunks(source: Path, kind: str, size: int) -> Iterator[pd.DataFrame]:
    try:
        if kind == "csv":
            yield from pd.read_csv(source, chunksize=size, dtype_backend="numpy_nullable")
        else:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=size):
                yield batch.to_pandas()
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{source}: not a readable CSV file ({error})", field="file") from None
    except pa.ArrowInvalid as error:
        raise InputError(f"{source}: not a readable Parquet file ({error})", field="file") from None


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
