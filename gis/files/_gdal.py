"""GDAL (through pyogrio) for untrusted files: only the formats' own drivers, no network.

GDAL picks a driver by content, and several drivers read *other* data than
the file they are given: OGR VRT (any data source, SQL included), GDALG
(runs a GDAL pipeline), HTTP, WFS, OAPIF, GML (downloads schemas), GPSBabel
(runs a program), and more. pyogrio cannot pass GDAL's allowed-driver list
to ``GDALOpenEx``, so the policy is process-wide: every vector driver that
no format of :data:`gis.files._formats.FORMATS` needs is put into
``GDAL_SKIP`` and the drivers are registered again, which unloads them.
``GDAL_SKIP`` splits names at spaces, so ``MapInfo File`` cannot be
unloaded; it opens only ``.tab``/``.mif``/``.mid`` names and folders, and
tongge opens only regular files named with an accepted suffix. Every open
is still checked: the driver GDAL used must be the format's own.

``/vsicurl/`` is limited to a file name that cannot occur, so no remote
read happens even if a reference slipped through; user-supplied paths
starting with ``/vsi`` or a ``DRIVER:`` prefix are refused before this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pyogrio

from gis.errors import InputError
from gis.files._archive import unpacked_shapefile
from gis.files._encoding import TextEncoding, dbf_encoding, given, refuse_mojibake
from gis.files._formats import FileFormat, gdal_drivers
from gis.files._limits import ReadLimits

__all__ = ["apply_driver_policy", "read_gdal"]

_log = logging.getLogger("tongge.files")
_UNSKIPPABLE = frozenset({"MapInfo File"})
_NO_NETWORK = {"CPL_VSIL_CURL_ALLOWED_FILENAME": "/vsicurl/tongge-never-fetches-remote-data"}
_lock = threading.Lock()
_applied = False


def apply_driver_policy() -> None:
    """Unload every GDAL vector driver the formats do not need (once per process).

    Raises
    ------
    RuntimeError
        When a driver that is not allowed is still loaded afterwards (the
        service then reads no file with GDAL rather than read it unsafely).
    """
    global _applied
    with _lock:
        if _applied:
            return
        allowed = gdal_drivers()
        unwanted = sorted(d for d in pyogrio.list_drivers() if d not in allowed and " " not in d)
        skip = set((pyogrio.get_gdal_config_option("GDAL_SKIP") or "").split()) | set(unwanted)
        pyogrio.set_gdal_config_options({"GDAL_SKIP": " ".join(sorted(skip)), **_NO_NETWORK})
        from pyogrio._ogr import _register_drivers  # re-registering applies GDAL_SKIP

        _register_drivers()
        left = set(pyogrio.list_drivers()) - allowed - _UNSKIPPABLE
        if left:
            raise RuntimeError(f"GDAL drivers still loaded against policy: {sorted(left)}")
        _applied = True


def read_gdal(
    path: Path, fmt: FileFormat, label: str, limits: ReadLimits, *, encoding: str | None = None
) -> gpd.GeoDataFrame:
    """Read the first layer of ``path`` with ``fmt``'s driver only, within ``limits``.

    A Shapefile's text is read in ``encoding`` if given, else as its
    ``.cpg`` says, else in the encoding its ``.dbf`` bytes are in
    (:func:`dbf_encoding`; GDAL would take Latin-1); the frame's
    ``attrs["encoding"]`` says which. Garbled Chinese is refused.
    """
    apply_driver_policy()
    with _local_file(path, fmt, label, limits) as local:
        text = _shapefile_encoding(local, encoding) if fmt.name in ("shp", "zip") else None
        try:
            info = pyogrio.read_info(str(local))
        except Exception as error:  # GDAL's message may name server paths: log it only
            _log.info("GDAL cannot open %s: %s", local, error)
            raise _unreadable(label, fmt) from None
        if info.get("driver") not in fmt.drivers:
            _log.warning("%s opened by %s, not %s", local, info.get("driver"), fmt.drivers)
            raise _unreadable(label, fmt)
        limits.check_columns(label, len(info.get("fields", ())))
        features = info.get("features")
        if features is not None and features >= 0:
            limits.check_rows(label, features)
        cap = None if limits.max_rows is None else limits.max_rows + 1
        try:
            frame = pyogrio.read_dataframe(
                str(local),
                max_features=cap,
                encoding=text.gdal if text is not None and text.how != "cpg" else None,
            )
        except Exception as error:
            _log.info("GDAL cannot read %s: %s", local, error)
            raise _unreadable(label, fmt) from None
    limits.check_rows(label, len(frame))
    refuse_mojibake(frame, label)
    if text is not None:
        frame.attrs["encoding"] = text
    return frame


def _shapefile_encoding(shp: Path, encoding: str | None) -> TextEncoding | None:
    if encoding:
        return given(encoding)
    cpg = next(
        (p for p in shp.parent.iterdir() if p.stem == shp.stem and p.suffix.lower() == ".cpg"),
        None,
    )
    if cpg is not None and cpg.is_file():
        declared = cpg.read_bytes()[:64].decode("ascii", errors="replace").strip()
        return TextEncoding(declared.lower(), declared or "(empty)", "cpg")
    dbf = next(
        (p for p in shp.parent.iterdir() if p.stem == shp.stem and p.suffix.lower() == ".dbf"),
        None,
    )
    # None: not UTF-8 nor GBK; GDAL then follows the .dbf's language byte.
    return dbf_encoding(dbf) if dbf is not None and dbf.is_file() else None


def _unreadable(label: str, fmt: FileFormat) -> InputError:
    return InputError(f"{label}: cannot read it as {fmt.title}", field="file")


@contextmanager
def _local_file(path: Path, fmt: FileFormat, label: str, limits: ReadLimits) -> Iterator[Path]:
    # What GDAL opens: the file itself (its size is its decompressed size;
    # for a loose Shapefile with the parts beside it), or the unpacked ZIP.
    if fmt.archive:
        with unpacked_shapefile(path, label, limits) as shp:
            yield shp
        return
    parts = [path]
    if fmt.name == "shp":
        parts = [
            p
            for p in path.parent.iterdir()
            if p.stem == path.stem and p.suffix.lower() in (".shp", ".shx", ".dbf") and p.is_file()
        ]
    limits.check_bytes(label, sum(p.stat().st_size for p in parts))
    yield path
