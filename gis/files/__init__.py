"""Every file a user supplies is opened here, and only here.

Uploads (``POST /api/v1/geocode/batch``) and the command line (``tongge
check``, ``import``, ``geocode``, ``places import``) read through
:func:`open_source` and then :func:`read_frame`, :func:`read_table` or
:func:`iter_table`. The guard, in order:

1. **Path** — refuse ``/vsi…`` paths and ``DRIVER:`` prefixes (``CSV:``,
   ``GPKG:``…), anything but a regular file; readers get the resolved
   absolute path (no prefix can apply to it) or an open handle (pandas and
   pyarrow then never see a URL).
2. **Declared format** — the name's suffix picks one entry of
   :data:`FORMATS`; nothing else is tried.
3. **Content** — the bytes must be that format (:mod:`gis.files._sniff`):
   a VRT document, XML in a ``.geojson``, a database in a ``.csv`` are
   refused with a message saying what the file is.
4. **One driver** — GDAL keeps only the formats' drivers loaded
   (:mod:`gis.files._gdal`) and each open must have used the format's own.
5. **Limits** — rows, columns and decompressed bytes
   (:class:`ReadLimits`, from the settings) are checked before reading
   where the file declares them and while reading in bounded chunks;
   over a limit is a 413 ``InputError``.

Messages name the file by its ``label`` only (the upload's own name, or
the path the user typed) and never repeat GDAL's, pandas' or pyarrow's
text when it could hold a server path; those go to the log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gis.errors import InputError
from gis.files._cells import safe_cell, spreadsheet_safe, write_csv
from gis.files._encoding import TextEncoding, check_encoding_name, refuse_mojibake
from gis.files._excel import XlsxWriter, iter_xlsx, write_xlsx
from gis.files._formats import FORMATS, FileFormat, format_for, gdal_drivers
from gis.files._gdal import apply_driver_policy, read_gdal
from gis.files._limits import ReadLimits
from gis.files._sniff import CHECKS, refuse_vrt
from gis.files._tables import ParquetReader, iter_csv

__all__ = [
    "FORMATS",
    "FileFormat",
    "ReadLimits",
    "Source",
    "TextEncoding",
    "XlsxWriter",
    "apply_driver_policy",
    "format_for",
    "gdal_drivers",
    "iter_table",
    "open_source",
    "read_frame",
    "read_table",
    "safe_cell",
    "spreadsheet_safe",
    "write_csv",
    "write_xlsx",
]

# "CSV:/etc/passwd", "GPKG:x.gpkg:layer", "PG:dbname=...": a GDAL driver
# prefix, two or more letters before the colon (one would be a drive letter).
_DRIVER_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:")
_TABLE_CHUNK = 100_000


@dataclass(frozen=True)
class Source:
    """A user-supplied file that passed the path and content checks.

    Attributes
    ----------
    path : Path
        The resolved absolute path.
    label : str
        How messages name it.
    format : FileFormat
        Its declared (and checked) format.
    encoding : str or None
        The text encoding the user gave (CSV, Shapefile); ``None``: found
        from the bytes (see :mod:`gis.files._encoding`).
    """

    path: Path
    label: str
    format: FileFormat
    encoding: str | None = None


def open_source(
    path: str | Path,
    *,
    label: str | None = None,
    accept: tuple[str, ...] | None = None,
    encoding: str | None = None,
) -> Source:
    """Check a user-supplied file: its path, its declared format, its content.

    Parameters
    ----------
    path : str or Path
        The file.
    label : str, optional
        How messages name it (default: ``path`` as given). The API passes
        the upload's own file name so no server path is ever shown.
    accept : tuple of str, optional
        Format names (:data:`FORMATS`) acceptable here; default all.
    encoding : str, optional
        The text encoding of a CSV or Shapefile (default: found from the bytes).

    Raises
    ------
    InputError
        Missing file, a ``/vsi`` or ``DRIVER:`` path, an unknown suffix,
        content that is not the declared format, an unknown encoding.
    """
    codec = check_encoding_name(encoding)
    text = os.fspath(path)
    shown = label if label is not None else text
    if text.startswith("/vsi") or _DRIVER_PREFIX.match(text):
        raise InputError(
            f"{shown}: GDAL virtual paths (/vsi…) and driver prefixes (CSV:, GPKG:…) "
            "are not accepted: give the path of a file",
            field="file",
        )
    candidate = Path(text)
    if not candidate.exists():
        raise InputError(f"{shown}: no such file", field="file")
    if not candidate.is_file():
        raise InputError(f"{shown}: not a regular file", field="file")
    fmt = format_for(shown, candidate, accept=accept)
    resolved = candidate.resolve()
    refuse_vrt(resolved, shown)
    CHECKS[fmt.name](resolved, shown)
    return Source(resolved, shown, fmt, codec)


def read_frame(source: Source, limits: ReadLimits | None = None) -> gpd.GeoDataFrame:
    """Read a vector file (GDAL formats, GeoParquet) whole, within ``limits``.

    Raises
    ------
    InputError
        Unreadable, a CSV (it has no geometry of its own), over a limit (413).
    """
    chosen = limits or ReadLimits.from_settings()
    if source.format.reader == "gdal":
        return read_gdal(source.path, source.format, source.label, chosen, encoding=source.encoding)
    if source.format.reader == "parquet":
        from geopandas.io.arrow import _arrow_to_geopandas

        with ParquetReader(source.path, source.label, chosen) as reader:
            table = reader.table()
        if b"geo" not in (table.schema.metadata or {}):
            raise InputError(
                f"{source.label}: has no geometry column (not GeoParquet)", field="file"
            )
        try:
            frame: gpd.GeoDataFrame = _arrow_to_geopandas(table)
        except (ValueError, TypeError, KeyError):
            raise InputError(
                f"{source.label}: cannot read it as GeoParquet", field="file"
            ) from None
        refuse_mojibake(frame, source.label)
        return frame
    raise InputError(f"{source.label}: a {source.format.title} file has no geometry", field="file")


def read_table(
    source: Source, limits: ReadLimits | None = None, **csv_options: Any
) -> pd.DataFrame:
    """Read a CSV, Parquet or Excel table whole, within ``limits`` (see :func:`iter_table`)."""
    if source.format.reader == "parquet":
        with ParquetReader(
            source.path, source.label, limits or ReadLimits.from_settings()
        ) as reader:
            whole = reader.table().to_pandas()
        refuse_mojibake(whole, source.label)
        return whole
    chunks = list(iter_table(source, limits, chunk_rows=_TABLE_CHUNK, **csv_options))
    if len(chunks) == 1:
        return chunks[0]
    joined = pd.concat(chunks, ignore_index=True)
    joined.attrs = dict(chunks[0].attrs) if chunks else {}
    return joined


def iter_table(
    source: Source, limits: ReadLimits | None = None, *, chunk_rows: int, **csv_options: Any
) -> Iterator[pd.DataFrame]:
    """Yield a CSV, Parquet or Excel table in chunks of at most ``chunk_rows`` rows.

    ``csv_options`` go to pandas for CSV; ``dtype=str`` also reads an Excel
    sheet's cells as text.
    """
    chosen = limits or ReadLimits.from_settings()
    if source.format.reader == "xlsx":
        for chunk in iter_xlsx(
            source.path,
            source.label,
            chosen,
            chunk_rows=chunk_rows,
            text=csv_options.get("dtype") is str,
        ):
            refuse_mojibake(chunk, source.label)
            yield chunk
        return
    if source.format.reader == "csv":
        yield from iter_csv(
            source.path,
            source.label,
            chosen,
            chunk_rows=chunk_rows,
            encoding=source.encoding,
            **csv_options,
        )
        return
    if source.format.reader != "parquet":
        raise InputError(
            f"{source.label}: a table must be CSV, Parquet or Excel, not {source.format.title}",
            field="file",
        )
    with ParquetReader(source.path, source.label, chosen) as reader:
        for batch in reader.batches(chunk_rows):
            chunk = batch.to_pandas()
            refuse_mojibake(chunk, source.label)
            yield chunk
