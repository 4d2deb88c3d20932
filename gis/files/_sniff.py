"""Content checks: a file is opened only when its bytes are what its name declares.

GDAL chooses a driver by content, so a file's suffix alone proves nothing:
an OGR VRT document named ``x.geojson`` is a VRT to GDAL. Every check
here runs *before* any reader sees the file and refuses, naming the file
only by its label, whatever does not look like the declared format.
Beyond magic bytes, each check refuses the constructs of its format that
would make a reader fetch, follow or compute something:

- GeoJSON: a linked CRS (``"crs": {"type": "link", ...}``) makes GDAL
  download the CRS from its ``href`` (a server-side request);
- GeoPackage: views, generated columns and virtual tables other than the
  R-tree index are SQL evaluated while reading (a tiny file can compute
  gigabytes, or loop);
- KML: a DOCTYPE declares entities (external files, expansion bombs).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gis.errors import InputError
from gis.files._excel import check_xlsx

__all__ = ["CHECKS", "head", "refuse_vrt"]

_HEAD_BYTES = 64 * 1024
_SCAN_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_SQLITE = b"SQLite format 3\x00"
# GeoPackage application_id values: 'GPKG' (1.2+), 'GP10', 'GP11'.
_GPKG_IDS = {0x47504B47, 0x47503130, 0x47503131}
_IS_VIRTUAL = re.compile(r"(?is)^\s*create\s+virtual\s+table\b")
_VIRTUAL = re.compile(r"(?is)^\s*create\s+virtual\s+table\s+.+?\s+using\s+(\w+)")
# GDAL resolves a crs of type "link" only when that word reaches it: literally
# (any case) or through a \u escape of an ASCII character.
_MAYBE_LINK = re.compile(rb"(?i)link|\\u00[2-7][0-9a-f]")
_KML_ROOT = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<([\w.-]+:)?kml[\s>/]", re.S)
_DECLARATIONS = re.compile(rb"(?i)<!doctype|<!entity")


def head(path: Path, size: int = _HEAD_BYTES) -> bytes:
    """Return the first ``size`` bytes of ``path``."""
    with path.open("rb") as handle:
        return handle.read(size)


def refuse_vrt(path: Path, label: str) -> None:
    """Refuse a GDAL VRT document under any name, with a message that says so."""
    if b"<ogrvrtdatasource" in head(path).lower():
        raise InputError(
            f"{label}: is a GDAL virtual (VRT) document; such documents point at other "
            "data and are never opened: send the data itself",
            field="file",
        )


def _first_byte(data: bytes) -> bytes:
    stripped = data.removeprefix(_BOM).lstrip()
    return stripped[:1]


def _cannot(label: str, title: str, why: str) -> InputError:
    return InputError(f"{label}: cannot read it as {title}: {why}", field="file")


def _kind_of(data: bytes) -> str:
    # A short name for what the bytes look like, for the refusal message.
    first = _first_byte(data)
    if data.startswith(_SQLITE):
        return "an SQLite database"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "a ZIP archive"
    if data.startswith(b"\x1f\x8b"):
        return "gzip-compressed"
    if data.startswith(b"PAR1"):
        return "a Parquet file"
    if first == b"<":
        return "XML"
    if first in (b"{", b"["):
        return "JSON"
    if b"\x00" in data:
        return "binary data"
    return "text in another format"


def _check_geojson(path: Path, label: str) -> None:
    data = head(path)
    if _first_byte(data) != b"{":
        raise _cannot(label, "GeoJSON", f"the content is {_kind_of(data)}, not a JSON object")
    if _mentions(path, _MAYBE_LINK):
        _refuse_linked_crs(path, label)


def _mentions(path: Path, pattern: re.Pattern[bytes]) -> bool:
    overlap = 16
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_SCAN_CHUNK):
            if pattern.search(tail + chunk):
                return True
            tail = chunk[-overlap:]
    return False


class _LinkedCrsError(Exception):
    pass


_LINK = object()


def _crs_hook(pairs: list[tuple[str, Any]]) -> object:
    # Called for every JSON object, innermost first; returns a stand-in so the
    # document is never held whole. GDAL matches member names case-insensitively.
    linked = False
    for key, value in pairs:
        name = key.lower()
        if name == "crs" and value is _LINK:
            raise _LinkedCrsError
        if name == "type" and isinstance(value, str) and value.lower() == "link":
            linked = True
    return _LINK if linked else None


def _zero(_text: str) -> int:
    return 0


def _refuse_linked_crs(path: Path, label: str) -> None:
    try:
        with path.open("rb") as handle:
            json.loads(
                handle.read().decode("utf-8-sig"),
                object_pairs_hook=_crs_hook,
                parse_float=_zero,
                parse_int=_zero,
                parse_constant=_zero,
            )
    except _LinkedCrsError:
        raise InputError(
            f'{label}: has a linked CRS ("crs" of type "link"), which would be '
            "downloaded: declare the CRS by name (e.g. EPSG:4490) or give --crs",
            field="crs",
        ) from None
    except RecursionError:
        raise _cannot(label, "GeoJSON", "invalid JSON (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
        raise _cannot(label, "GeoJSON", f"invalid JSON ({reason})") from None


def _check_gpkg(path: Path, label: str) -> None:
    data = head(path, 100)
    if not data.startswith(_SQLITE):
        raise _cannot(label, "GeoPackage", f"the content is {_kind_of(data)}")
    if int.from_bytes(data[68:72], "big") not in _GPKG_IDS:
        raise _cannot(label, "GeoPackage", "an SQLite database that is not a GeoPackage")
    try:
        problem = _gpkg_schema_problem(path)
    except sqlite3.DatabaseError:
        problem = "its database schema cannot be read"
    if problem:
        raise _cannot(label, "GeoPackage", problem)


def _gpkg_schema_problem(path: Path) -> str | None:
    # Read-only and immutable: no journal, no WAL, nothing written; the
    # schema is only read here, never evaluated.
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        connection.execute("PRAGMA trusted_schema = OFF")
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        for kind, name, sql in rows:
            if kind == "view":
                return f"it contains a view ({name!r}); views run SQL while being read"
            if kind != "table":
                continue
            if _IS_VIRTUAL.match(sql or ""):
                module = _VIRTUAL.match(sql or "")
                used = module.group(1) if module else "an unrecognised module"
                if used.lower() != "rtree":
                    return f"it contains a virtual table ({name!r}) using {used!r}"
                continue
            hidden = connection.execute(
                "SELECT name FROM pragma_table_xinfo(?) WHERE hidden IN (2, 3)", (name,)
            ).fetchone()
            if hidden:
                return (
                    f"table {name!r} has a generated column ({hidden[0]!r}), "
                    "computed while being read"
                )
        return None
    finally:
        connection.close()


def _check_magic(title: str, test: Callable[[bytes], bool]) -> Callable[[Path, str], None]:
    def check(path: Path, label: str) -> None:
        data = head(path)
        if not test(data):
            raise _cannot(label, title, f"the content is {_kind_of(data)}")

    return check


def _check_kml(path: Path, label: str) -> None:
    if _mentions(path, _DECLARATIONS):
        raise _cannot(label, "KML", "it has a DOCTYPE/ENTITY declaration; KML needs none")
    data = head(path)
    if not _KML_ROOT.match(data.removeprefix(_BOM).decode("utf-8", errors="replace")):
        raise _cannot(label, "KML", f"the content is {_kind_of(data)} without a <kml> root")


def _check_csv(path: Path, label: str) -> None:
    data = head(path)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return  # UTF-16 text (Excel's "Unicode text"): zero bytes are its ASCII halves
    kind = _kind_of(data)
    if kind == "gzip-compressed":
        raise _cannot(label, "CSV", "it is gzip-compressed; send the plain CSV file")
    if kind not in ("text in another format", "JSON") or b"\x00" in data:
        raise _cannot(label, "CSV", f"the content is {kind}")


def _is_parquet(data: bytes) -> bool:
    return data.startswith(b"PAR1")


def _check_parquet(path: Path, label: str) -> None:
    _check_magic("Parquet", _is_parquet)(path, label)
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() < 12:
            raise _cannot(label, "Parquet", "the file is truncated")
        handle.seek(-4, 2)
        if handle.read(4) != b"PAR1":
            raise _cannot(label, "Parquet", "the file is truncated (no footer)")


CHECKS: dict[str, Callable[[Path, str], None]] = {
    "geojson": _check_geojson,
    "gpkg": _check_gpkg,
    # FlatGeobuf: "fgb", major version 3, "fgb", patch version.
    "fgb": _check_magic("FlatGeobuf", lambda d: d[:3] == b"fgb" and d[4:7] == b"fgb"),
    # Shapefile main file: file code 9994, big-endian.
    "shp": _check_magic("Shapefile", lambda d: d[:4] == b"\x00\x00\x27\x0a"),
    "zip": _check_magic("a zipped Shapefile", lambda d: d[:4] in (b"PK\x03\x04", b"PK\x05\x06")),
    "kml": _check_kml,
    "csv": _check_csv,
    "parquet": _check_parquet,
    "xlsx": check_xlsx,
}
