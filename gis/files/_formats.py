"""The file formats tongge reads: one table entry per format.

Each entry says which suffixes declare the format, which reader opens it
(pandas for CSV, pyarrow for Parquet, openpyxl for Excel, GDAL through
pyogrio for the rest)
and, for GDAL, the *only* driver allowed to open it. Adding a format (XLSX,
say) is one entry here plus, when it has a new sniffer, one check in
:mod:`gis.files._sniff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gis.errors import InputError

__all__ = ["FORMATS", "FileFormat", "format_for", "gdal_drivers"]

Reader = Literal["csv", "parquet", "xlsx", "gdal"]


@dataclass(frozen=True)
class FileFormat:
    """One readable file format.

    Attributes
    ----------
    name : str
        Short name, also the key of its content check.
    title : str
        What messages call it.
    suffixes : tuple of str
        File name endings that declare it (lower case, with the dot).
    reader : {"csv", "parquet", "xlsx", "gdal"}
        Who reads it.
    drivers : tuple of str
        The GDAL drivers allowed to open it, in GDAL's order of preference
        (``gdal`` reader only): opened by any other, it is refused.
    writer : str or None
        The GDAL driver that writes it (default: the first of ``drivers``).
    single_file : bool
        Whether one file holds it all (a loose ``.shp`` needs its ``.dbf``
        and ``.shx`` beside it, so it cannot be uploaded alone).
    archive : bool
        A ZIP holding a Shapefile, unpacked with limits before GDAL sees it.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    reader: Reader
    drivers: tuple[str, ...] = ()
    writer: str | None = None
    single_file: bool = True
    archive: bool = False

    @property
    def driver(self) -> str | None:
        """Return the GDAL driver that writes this format."""
        return self.writer or (self.drivers[0] if self.drivers else None)


FORMATS: tuple[FileFormat, ...] = (
    FileFormat("csv", "CSV", (".csv", ".tsv", ".txt"), "csv"),
    FileFormat("parquet", "(Geo)Parquet", (".parquet", ".geoparquet"), "parquet"),
    FileFormat("xlsx", "Excel workbook", (".xlsx",), "xlsx"),
    FileFormat("geojson", "GeoJSON", (".geojson", ".json"), "gdal", ("GeoJSON",)),
    FileFormat("gpkg", "GeoPackage", (".gpkg",), "gdal", ("GPKG",)),
    FileFormat("shp", "Shapefile", (".shp",), "gdal", ("ESRI Shapefile",), single_file=False),
    FileFormat(
        "zip", "zipped Shapefile", (".shp.zip", ".zip"), "gdal", ("ESRI Shapefile",), archive=True
    ),
    # LIBKML reads ExtendedData (the unit codes); the plain KML driver writes
    # what tongge exports, and reads when LIBKML is not built in. Neither
    # follows NetworkLink, styleUrl or schemaUrl, nor expands entities.
    FileFormat("kml", "KML", (".kml",), "gdal", ("LIBKML", "KML"), writer="KML"),
    FileFormat("fgb", "FlatGeobuf", (".fgb",), "gdal", ("FlatGeobuf",)),
)


def gdal_drivers() -> frozenset[str]:
    """Return the GDAL drivers the formats need, to read or to write."""
    return frozenset(d for f in FORMATS for d in (*f.drivers, f.driver) if d)


def format_for(
    label: str, path: str | Path, *, accept: tuple[str, ...] | None = None
) -> FileFormat:
    """Return the format ``path``'s name declares, among ``accept`` (format names) if given.

    Raises
    ------
    InputError
        When the suffix declares no accepted format.
    """
    name = Path(path).name.lower()
    allowed = [f for f in FORMATS if accept is None or f.name in accept]
    # Longest suffix first: ".shp.zip" before ".zip".
    pairs = sorted(((s, f) for f in allowed for s in f.suffixes), key=lambda p: -len(p[0]))
    for suffix, fmt in pairs:
        if name.endswith(suffix):
            return fmt
    known = ", ".join(s for f in allowed for s in f.suffixes)
    raise InputError(
        f"{label}: unknown file format {Path(path).suffix.lower() or '(no suffix)'!r}: "
        f"use one of {known}",
        field="file",
    )
