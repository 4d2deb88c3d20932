"""Unpack a zipped Shapefile with limits, instead of letting GDAL read inside the ZIP.

GDAL's ``/vsizip/`` would follow whatever the archive holds (nested
archives, any member name). Here only the Shapefile's own members are
copied out, under fixed names into a fresh folder (no member name ever
becomes a path), and the bytes actually decompressed are counted: the
ZIP's declared sizes are checked first, and :mod:`zipfile` never yields
more than a member's declared size (a lying header fails its CRC), so the
count bounds what a bomb can expand to. A compression-ratio test would
add nothing to that bound and would refuse honest, sparse ``.dbf`` files.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from gis.errors import InputError
from gis.files._limits import ReadLimits

__all__ = ["unpacked_shapefile"]

_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_MAX_MEMBERS = 10_000
_COPY_CHUNK = 1 << 20


def _refuse(label: str, why: str) -> InputError:
    return InputError(f"{label}: cannot read it as a zipped Shapefile: {why}", field="file")


@contextmanager
def unpacked_shapefile(path: Path, label: str, limits: ReadLimits) -> Iterator[Path]:
    """Yield the ``.shp`` of the one Shapefile in the ZIP at ``path``, unpacked in a temp folder."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse(label, "not a readable ZIP archive") from None
    folder = Path(tempfile.mkdtemp(prefix="tongge-unzip-"))
    try:
        with archive:
            members = _members(archive, label, limits)
            total = 0
            for suffix, info in members.items():
                total = _copy(archive, info, folder / f"layer{suffix}", total, label, limits)
        yield folder / "layer.shp"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _members(
    archive: zipfile.ZipFile, label: str, limits: ReadLimits
) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise _refuse(label, f"more than {_MAX_MEMBERS:,} members")
    # macOS adds "__MACOSX/._name.shp" resource forks: not part of the data.
    files = [
        i
        for i in infos
        if not i.is_dir()
        and not i.filename.startswith("__MACOSX/")
        and not PurePosixPath(i.filename).name.startswith("._")
    ]
    shapes = [i for i in files if i.filename.lower().endswith(".shp")]
    if len(shapes) != 1:
        raise _refuse(label, f"it must hold exactly one .shp file (found {len(shapes)})")
    stem = PurePosixPath(shapes[0].filename).with_suffix("").as_posix().lower()
    chosen = {}
    for info in files:
        name = PurePosixPath(info.filename)
        suffix = name.suffix.lower()
        if suffix in _PARTS and name.with_suffix("").as_posix().lower() == stem:
            chosen[suffix] = info
    for suffix in (".shx", ".dbf"):
        if suffix not in chosen:
            raise _refuse(label, f"the Shapefile has no {suffix} file beside its .shp")
    for info in chosen.values():
        if info.flag_bits & 0x1:
            raise _refuse(label, "encrypted members are not accepted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refuse(label, "only stored or deflated members are accepted")
    limits.check_bytes(label, sum(i.file_size for i in chosen.values()))
    return chosen


def _copy(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    total: int,
    label: str,
    limits: ReadLimits,
) -> int:
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(_COPY_CHUNK):
                total += len(chunk)
                limits.check_bytes(label, total)
                sink.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise _refuse(label, f"member {PurePosixPath(info.filename).name!r} is damaged") from None
    return total
