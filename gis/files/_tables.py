"""CSV and Parquet read in bounded chunks, limits checked before and while reading.

CSV is plain text only: pandas is never let to decompress (``compression=None``;
gzip bytes are refused by the content check), so its size on disk is its
decoded size. Its header is counted from at most 1 MiB before pandas sees it.

Parquet is refused from its footer when it declares too many rows,
columns or bytes, then read in batches counting the bytes each batch
*decodes to*: text and binary columns are read as dictionaries and
measured before they are expanded, because a dictionary page can repeat
one large value for every row (kilobytes on disk, gigabytes in memory).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gis.errors import InputError
from gis.files._encoding import TextEncoding, detect_encoding, given, refuse_mojibake
from gis.files._limits import ReadLimits, too_large

__all__ = ["ParquetReader", "iter_csv"]

_HEADER_BYTES = 1 << 20
_DELIMITERS = (",", "\t", ";", "|")
_PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError)


def iter_csv(
    path: Path,
    label: str,
    limits: ReadLimits,
    *,
    chunk_rows: int,
    encoding: str | None = None,
    **options: Any,
) -> Iterator[pd.DataFrame]:
    """Yield ``path`` as CSV chunks of ``chunk_rows`` rows (``options`` go to pandas).

    The text encoding is ``encoding`` if given, else found from the bytes
    (:func:`detect_encoding`), and the delimiter (``,`` tab ``;`` ``|``) from
    the header unless ``sep`` is given; each chunk's ``attrs["encoding"]``
    is the :class:`TextEncoding` used. Garbled Chinese is refused.
    """
    limits.check_bytes(label, path.stat().st_size)
    text = given(encoding) if encoding else detect_encoding(path, label)
    sep = _check_header(path, label, limits, text)
    options.setdefault("sep", sep)
    options.setdefault("encoding_errors", "strict")
    rows = 0
    with path.open("rb") as handle:
        try:
            for chunk in pd.read_csv(
                handle,
                chunksize=chunk_rows,
                compression=None,
                encoding=text.codec,
                **options,
            ):
                rows += len(chunk)
                limits.check_rows(label, rows)
                refuse_mojibake(chunk, label)
                chunk.attrs["encoding"] = text
                yield chunk
        except UnicodeDecodeError as error:
            raise InputError(
                f"{label}: is not {text.label} text (byte 0x{error.object[error.start]:02X} "
                "cannot be read): give the right --encoding (utf-8, gbk, gb18030…)",
                field="encoding",
            ) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "empty"
            raise InputError(f"{label}: not a readable CSV file ({reason})", field="file") from None


def _check_header(path: Path, label: str, limits: ReadLimits, text: TextEncoding) -> str:
    # pandas would build every header name before any limit could apply; the
    # csv module counts them from a bounded prefix instead. Returns the
    # delimiter the header uses.
    with path.open("rb") as handle:
        data = handle.read(_HEADER_BYTES + 1)
    prefix = data[:_HEADER_BYTES]
    if len(data) > _HEADER_BYTES and b"\n" not in prefix and b"\r" not in prefix:
        raise too_large(label, f"a header line longer than {_HEADER_BYTES:,} bytes")
    decoded = prefix.decode(text.codec, errors="replace").removeprefix("\ufeff")
    lines = decoded.splitlines(keepends=True)
    sep = _delimiter(lines[:20])
    exhausted = False

    def feed() -> Iterator[str]:
        nonlocal exhausted
        yield from lines
        exhausted = True

    try:
        header = next(csv.reader(feed(), delimiter=sep), [])
    except csv.Error:
        return sep  # malformed: pandas says how
    limits.check_columns(label, len(header))
    if exhausted and len(data) > _HEADER_BYTES:
        raise too_large(label, f"a header line longer than {_HEADER_BYTES:,} bytes")
    return sep


def _delimiter(lines: list[str]) -> str:
    # The delimiter that splits the header into the most columns and every
    # following line into as many (quoted text aside); a comma when in doubt.
    if not lines:
        return ","
    best, columns = ",", 1
    for candidate in _DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(lines, delimiter=candidate) if r]
        except csv.Error:
            continue
        if not widths or widths[0] <= 1:
            continue
        body = widths[1:-1] if len(widths) > 2 else widths[1:]
        if all(w == widths[0] for w in body) and widths[0] > columns:
            best, columns = candidate, widths[0]
    return best


class ParquetReader:
    """A Parquet file checked against ``limits`` from its footer, read in bounded batches.

    Use as a context manager; :attr:`schema` is the file's Arrow schema.
    """

    def __init__(self, path: Path, label: str, limits: ReadLimits) -> None:
        self.label = label
        self.limits = limits
        self._handle = path.open("rb")
        try:
            probe = pq.ParquetFile(self._handle)
            meta = probe.metadata
            self.schema: pa.Schema = probe.schema_arrow
            limits.check_columns(label, len(self.schema))
            limits.check_rows(label, meta.num_rows)
            limits.check_rows(
                label, sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
            )
            limits.check_bytes(label, _declared_bytes(meta))
            self._expanded = [f.name for f in self.schema if _is_text(f.type)]
            self._file = pq.ParquetFile(self._handle, metadata=meta, read_dictionary=self._expanded)
        except InputError:
            self._handle.close()
            raise
        except _PARQUET_ERRORS:
            self._handle.close()
            raise self._unreadable() from None

    def __enter__(self) -> ParquetReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._handle.close()

    def _unreadable(self) -> InputError:
        return InputError(f"{self.label}: cannot read it as Parquet", field="file")

    def batches(self, size: int) -> Iterator[pa.RecordBatch]:
        """Yield record batches of at most ``size`` rows, counting rows and decoded bytes."""
        rows = decoded = 0
        try:
            for batch in self._file.iter_batches(batch_size=size):
                rows += batch.num_rows
                self.limits.check_rows(self.label, rows)
                decoded += _decoded_bytes(batch)
                self.limits.check_bytes(self.label, decoded)
                yield self._expand(batch)
        except _PARQUET_ERRORS:
            raise self._unreadable() from None

    def table(self, size: int = 65_536) -> pa.Table:
        """Return the whole file as one table (within the limits)."""
        batches = list(self.batches(size))
        if not batches:
            return self.schema.empty_table()
        return pa.Table.from_batches(batches).replace_schema_metadata(self.schema.metadata)

    def _expand(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        # Back to the file's own types, now that their size is known.
        if not self._expanded:
            return batch
        fields, arrays = [], []
        for field, column in zip(batch.schema, batch.columns, strict=True):
            if field.name in self._expanded and pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            fields.append(field.with_type(column.type))
            arrays.append(column)
        schema = pa.schema(fields, metadata=batch.schema.metadata)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _declared_bytes(meta: pq.FileMetaData) -> int:
    # What the footer says the data takes uncompressed (encoded pages); the
    # decoded size is counted while reading.
    total = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        chunks = sum(group.column(j).total_uncompressed_size for j in range(group.num_columns))
        total += max(group.total_byte_size, chunks)
    return total


def _decoded_bytes(batch: pa.RecordBatch) -> int:
    total = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type) and _is_text(column.type.value_type):
            lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
            total += int(pc.sum(lengths).as_py() or 0) + 8 * len(column)
        else:
            total += column.nbytes
    return total
