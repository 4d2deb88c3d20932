"""Text encodings of user files: UTF-8 (with or without BOM), GBK/GB18030, or what the user says.

Chinese office data comes in UTF-8 (often with a BOM, from Excel) or in
GBK (Excel and ArcGIS on Chinese Windows, shapefiles without a ``.cpg``).
Guessing from a sample is not needed: a strict decode of every byte
tells. UTF-8 is tried first (a GBK text of any length is almost never
valid UTF-8), then GBK, then GB18030 (GBK's superset, with four-byte
characters such as 𠀀). Text that is none of them is refused with a
message asking for ``--encoding`` rather than read as Latin-1 noise.

Text already garbled before it reached us (a ``.cpg`` that lies, a wrong
``--encoding``, a file converted twice) is caught by
:func:`refuse_mojibake`: Chinese read as Latin-1 is a string of Latin-1
symbols whose bytes are valid GBK or UTF-8 Chinese (``½ðÉ½ÉçÇø`` is
金山社区 in GBK); such a column is refused, naming the column and the
encoding that would read it.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from gis.errors import InputError

__all__ = [
    "TextEncoding",
    "check_encoding_name",
    "dbf_encoding",
    "detect_encoding",
    "refuse_mojibake",
]

_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
_UTF16 = {b"\xff\xfe": "UTF-16LE", b"\xfe\xff": "UTF-16BE"}
# Tried in this order; GB18030 decodes every GBK text, so GBK names it when it can.
_CASCADE = (("utf-8", "UTF-8"), ("gbk", "GBK"), ("gb18030", "GB18030"))
_LATIN_PAIR = re.compile(r"[\x80-\xff]{2}")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f]")
_MOJIBAKE_SAMPLE = 2_000


@dataclass(frozen=True)
class TextEncoding:
    """How a file's text was decoded.

    Attributes
    ----------
    codec : str
        The Python codec used (``utf-8-sig``, ``utf-8``, ``gb18030``…).
    label : str
        What messages call it (``UTF-8``, ``UTF-8 with BOM``, ``GBK``…).
    how : str
        ``detected`` (from the bytes), ``given`` (``--encoding``) or
        ``cpg`` (the Shapefile's ``.cpg``).
    """

    codec: str
    label: str
    how: str = "detected"

    @property
    def gdal(self) -> str:
        """The name GDAL (iconv) knows it by."""
        return {"utf-8-sig": "UTF-8", "gbk": "CP936"}.get(self.codec, self.codec.upper())

    @property
    def notable(self) -> bool:
        """Whether it is worth saying (anything but UTF-8 found in the bytes)."""
        return self.how != "detected" or self.codec not in ("utf-8", "utf-8-sig")

    def describe(self) -> str:
        """Return e.g. ``GBK (detected)`` or ``UTF-8 (given)``."""
        how = {"detected": "detected", "given": "given", "cpg": "from the .cpg file"}[self.how]
        return f"{self.label} ({how})"


def check_encoding_name(name: str | None) -> str | None:
    """Return the canonical codec name of a user-given encoding (``None`` stays ``None``).

    Raises
    ------
    InputError
        Unknown encoding, or one that is not a text encoding.
    """
    if name is None or not name.strip():
        return None
    try:
        info = codecs.lookup(name.strip())
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InputError(
            f"unknown encoding {name[:40]!r}: use utf-8, gbk, gb18030, big5…", field="encoding"
        )
    return info.name


def given(name: str) -> TextEncoding:
    """Return the encoding the user named (already checked)."""
    canonical = codecs.lookup(name).name
    labels = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}
    return TextEncoding(canonical, labels.get(canonical, canonical.upper()), "given")


def detect_encoding(path: Path, label: str, *, what: str = "text") -> TextEncoding:
    """Return the encoding every byte of ``path`` decodes in (UTF-8, GBK, GB18030).

    A file starting with a UTF-16 byte-order mark is UTF-16 (Excel's
    "Unicode text" export).

    Raises
    ------
    InputError
        When the bytes are none of them (``--encoding`` is then needed).
    """
    with path.open("rb") as handle:
        first = handle.read(len(_BOM))
        if first[:2] in _UTF16:
            # Excel's "Unicode text" (Unicode 文本): UTF-16 with its mark, tab-separated.
            handle.seek(0)
            return _utf16(handle, _UTF16[first[:2]], label, what)
        bom = first == _BOM
        rest = b"" if bom else first

        def chunks() -> Iterable[bytes]:
            if rest:
                yield rest
            while chunk := handle.read(_CHUNK):
                yield chunk

        found = _cascade(chunks())
    if bom:
        if found is None or found.codec != "utf-8":
            raise _undecodable(label, what, "it starts with a UTF-8 BOM but is not UTF-8")
        return TextEncoding("utf-8-sig", "UTF-8 with BOM")
    if found is None:
        raise _undecodable(label, what, "it is neither UTF-8 nor GBK/GB18030")
    return found


def _utf16(handle: BinaryIO, label_: str, label: str, what: str) -> TextEncoding:
    decoder = codecs.getincrementaldecoder("utf-16")("strict")
    try:
        while chunk := handle.read(_CHUNK):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _undecodable(
            label, what, f"it starts with a {label_} mark but is not {label_}"
        ) from None
    return TextEncoding("utf-16", label_)


def dbf_encoding(dbf: Path) -> TextEncoding | None:
    """Return the encoding of a ``.dbf``'s text fields, or ``None`` when they are none of ours.

    Only the character (``C``) fields are read, as numpy columns: numbers,
    dates and binary fields say nothing about the text and could look like
    anything.
    """
    with dbf.open("rb") as handle:
        header = handle.read(32)
        if len(header) < 32:
            return None
        records = int.from_bytes(header[4:8], "little")
        header_size = int.from_bytes(header[8:10], "little")
        record_size = int.from_bytes(header[10:12], "little")
        descriptors = handle.read(max(header_size - 32, 0))
        fields: list[tuple[int, int]] = []
        offset = 1  # the deletion flag
        for start in range(0, len(descriptors) - 31, 32):
            entry = descriptors[start : start + 32]
            if entry[0] == 0x0D:
                break
            size = entry[16]
            if entry[11:12] == b"C":
                fields.append((offset, size))
            offset += size
        if not fields or record_size <= 0:
            return TextEncoding("utf-8", "UTF-8")
        handle.seek(header_size)
        return _cascade(_dbf_text(handle, records, record_size, fields))


def _dbf_text(
    handle: object, records: int, record_size: int, fields: list[tuple[int, int]]
) -> Iterable[bytes]:
    per_chunk = max(1, _CHUNK // record_size)
    left = records
    read = handle.read  # type: ignore[attr-defined]
    while left > 0:
        data = read(min(left, per_chunk) * record_size)
        rows = len(data) // record_size
        if rows == 0:
            return
        table = np.frombuffer(data[: rows * record_size], dtype=np.uint8).reshape(rows, record_size)
        # Each value ends with a newline so no character spans two values.
        parts = [table[:, o : o + s] for o, s in fields if o + s <= record_size]
        parts = [p for q in parts for p in (q, np.full((rows, 1), 0x0A, dtype=np.uint8))]
        yield np.hstack(parts).tobytes().replace(b"\x00", b" ")
        left -= rows


def _cascade(chunks: Iterable[bytes]) -> TextEncoding | None:
    decoders = {c: codecs.getincrementaldecoder(c)("strict") for c, _ in _CASCADE}
    for chunk in chunks:
        # ASCII is text in all three: only a character cut at the end of the
        # previous chunk needs it decoded.
        if chunk.isascii() and not any(d.getstate()[0] for d in decoders.values()):
            continue
        for codec in list(decoders):
            try:
                decoders[codec].decode(chunk)
            except UnicodeDecodeError:
                del decoders[codec]
        if not decoders:
            return None
    for codec in list(decoders):
        try:
            decoders[codec].decode(b"", final=True)
        except UnicodeDecodeError:
            del decoders[codec]
    for codec, label in _CASCADE:
        if codec in decoders:
            # GBK text is read with GB18030, its superset (same two-byte characters).
            return TextEncoding("gb18030" if codec == "gbk" else codec, label)
    return None


def _undecodable(label: str, what: str, why: str) -> InputError:
    return InputError(
        f"{label}: cannot tell the encoding of its {what}: {why}; "
        "give the encoding (--encoding big5, --encoding shift_jis…)",
        field="encoding",
    )


def refuse_mojibake(frame: pd.DataFrame, label: str) -> None:
    """Refuse a text column that holds Chinese read with the wrong encoding.

    Raises
    ------
    InputError
        Naming the column, the row and the encoding that would read it.
    """
    shp = " or fix the .cpg file" if label.lower().endswith((".shp", ".zip")) else ""
    for name in frame.columns:
        meant = _meant(name) if isinstance(name, str) else None
        if meant is not None:
            raise InputError(
                f"{label}: the column names hold garbled text ({name[:20]!r} is Chinese "
                f"read with the wrong encoding; its bytes are {meant} text); nothing was read: "
                f"give --encoding {meant.lower()}{shp}",
                field="encoding",
                rule="garbled_text",
            )
    for name in frame.columns:
        values = frame[name]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        suspects = _suspects(values)
        for row, text in suspects:
            meant = _meant(text)
            if meant is not None:
                raise InputError(
                    f"{label}: column {str(name)[:40]!r} (row {row + 1}) holds garbled text: "
                    f"Chinese read with the wrong encoding (its bytes are {meant} text); "
                    f"nothing was read: give --encoding {meant.lower()}{shp}",
                    field=str(name),
                    rule="garbled_text",
                )


def _suspects(values: pd.Series) -> list[tuple[int, str]]:
    # Cheap first: only strings with two Latin-1 symbols in a row can be it.
    text = values.dropna()
    text = text[text.map(lambda v: isinstance(v, str))]
    if text.empty:
        return []
    hits = text.astype(str).str.contains(_LATIN_PAIR, regex=True)
    positions = np.flatnonzero(hits.to_numpy(dtype=bool))[:_MOJIBAKE_SAMPLE]
    index = {key: i for i, key in enumerate(values.index)} if len(positions) else {}
    return [(index.get(text.index[p], int(p)), str(text.iloc[p])) for p in positions]


def _meant(text: str) -> str | None:
    # Latin-1 (or Windows-1252) symbols whose bytes are Chinese in UTF-8 or
    # GBK, with no ASCII byte taken into a Chinese character ("Müller" is not).
    for single in ("latin-1", "cp1252"):
        try:
            raw = text.encode(single)
        except UnicodeEncodeError:
            continue
        for codec, name in (("utf-8", "UTF-8"), ("gb18030", "GBK")):
            try:
                decoded = raw.decode(codec)
            except UnicodeDecodeError:
                continue
            cjk = _CJK.findall(decoded)
            if len(cjk) >= 2 and all(
                b >= 0x80 for ch in decoded if not ch.isascii() for b in ch.encode(codec)
            ):
                return name
    return None
