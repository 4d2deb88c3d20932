"""Excel workbooks (``.xlsx``): read the first sheet within limits, write spreadsheet-safe.

An ``.xlsx`` is a ZIP of XML documents: a few kilobytes can declare
gigabytes (a zip bomb), a sheet can declare a million rows, and XML can
declare entities. Before openpyxl sees the file, its ZIP directory is
checked (members, encryption, declared sizes against the decompressed-bytes
limit; :mod:`zipfile` never yields more than a member's declared size) and
every XML member is scanned, decompressed in bounded chunks, for
DOCTYPE/ENTITY declarations, which a workbook never needs. The sheet's
declared dimension is checked against the row and column limits, then rows
are read in read-only mode and counted again while reading (the dimension
may lie). Formulas are never evaluated: ``data_only`` gives the value Excel
cached when it last saved the file (empty if it never computed one).

Writing uses openpyxl's write-only mode; every text cell is written as text
(an ``=`` at the start stays text, never a formula), characters XML cannot
hold are replaced, and Excel's own limits (1,048,576 rows, 16,384 columns,
32,767 characters a cell) are refused with a message rather than produce a
file Excel repairs.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gis.errors import InputError
from gis.files._limits import ReadLimits

__all__ = ["XlsxWriter", "check_xlsx", "iter_xlsx", "write_xlsx"]

_MAX_MEMBERS = 10_000
_SCAN_CHUNK = 1 << 20
_DECLARATIONS = re.compile(rb"(?i)<!doctype|<!entity")
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384
EXCEL_CELL_CHARS = 32_767
# XML 1.0 cannot hold these (openpyxl refuses them).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _refuse(label: str, why: str) -> InputError:
    return InputError(f"{label}: cannot read it as an Excel workbook: {why}", field="file")


def check_xlsx(path: Path, label: str) -> None:
    """Refuse what is not an ``.xlsx`` workbook (content check, before any reader)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse(
            label, "not a ZIP archive (an .xls from before 2007? save it as .xlsx)"
        ) from None
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise _refuse(label, "a ZIP archive without a workbook")


def iter_xlsx(
    path: Path, label: str, limits: ReadLimits, *, chunk_rows: int, text: bool = False
) -> Iterator[pd.DataFrame]:
    """Yield the first sheet of ``path`` in chunks of ``chunk_rows`` rows.

    The first row names the columns (columns without a name are not read);
    empty rows are skipped. With ``text`` every value is read as text (as
    a CSV's cells are), numbers without a trailing ``.0``.
    """
    from openpyxl import load_workbook

    _check_archive(path, label, limits)
    with path.open("rb") as handle:
        try:
            book = load_workbook(handle, read_only=True, data_only=True, keep_links=False)
        except Exception:  # openpyxl raises many kinds for a damaged workbook
            raise _refuse(label, "the workbook is damaged") from None
        try:
            if not book.worksheets:
                raise _refuse(label, "it has no sheet")
            sheet = book.worksheets[0]
            width = _declared_width(sheet, label, limits)
            rows = sheet.iter_rows(values_only=True, max_col=width)
            yield from _chunks(rows, label, limits, chunk_rows=chunk_rows, text=text)
        finally:
            book.close()


def _check_archive(path: Path, label: str, limits: ReadLimits) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse(label, "not a ZIP archive") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise _refuse(label, f"more than {_MAX_MEMBERS:,} members")
        for info in infos:
            if info.flag_bits & 0x1:
                raise _refuse(label, "it is encrypted (password-protected)")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _refuse(label, "only stored or deflated members are accepted")
        limits.check_bytes(label, sum(i.file_size for i in infos))
        for info in infos:
            if info.filename.lower().endswith((".xml", ".rels", ".vml")):
                _scan(archive, info, label)


def _scan(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> None:
    tail = b""
    try:
        with archive.open(info) as member:
            while chunk := member.read(_SCAN_CHUNK):
                if _DECLARATIONS.search(tail + chunk):
                    raise _refuse(label, "it has a DOCTYPE/ENTITY declaration (never needed)")
                tail = chunk[-16:]
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        raise _refuse(label, "a member is damaged") from None


def _declared_width(sheet: Any, label: str, limits: ReadLimits) -> int:
    # The dimension (<dimension ref="A1:H5000"/>) is checked against the limits
    # before any row is read; rows are counted again while reading. Columns
    # are read up to the declared width (or the limit when the sheet does not
    # say), never as far as a cell's own column number asks.
    cap = min(EXCEL_COLUMNS, (limits.max_columns or EXCEL_COLUMNS) + 1)
    declared_rows, declared_columns = sheet.max_row, sheet.max_column
    if declared_rows is not None:
        limits.check_rows(label, max(declared_rows - 1, 0))
    if declared_columns is not None:
        limits.check_columns(label, declared_columns)
    sheet.reset_dimensions()  # a short dimension must not cut rows off
    if declared_columns is None or declared_columns <= 1:
        return cap
    return int(min(declared_columns, cap))


def _chunks(
    rows: Iterator[tuple[Any, ...]],
    label: str,
    limits: ReadLimits,
    *,
    chunk_rows: int,
    text: bool,
) -> Iterator[pd.DataFrame]:
    header: list[str] | None = None
    batch: list[tuple[Any, ...]] = []
    seen = 0
    for row in rows:
        seen += 1
        # Empty rows count too: a sheet of a billion empty rows is refused.
        limits.check_rows(label, seen - 1)
        if header is None:
            if all(v is None for v in row):
                continue
            header = _header(row, label, limits)
            continue
        if all(v is None for v in row[: len(header)]):
            continue
        batch.append(row[: len(header)])
        if len(batch) >= chunk_rows:
            yield _frame(batch, header, text)
            batch = []
    if header is None:
        raise InputError(f"{label}: the first sheet is empty", field="file")
    if batch or seen <= 1:
        yield _frame(batch, header, text)


def _header(row: tuple[Any, ...], label: str, limits: ReadLimits) -> list[str]:
    names = list(row)
    while names and names[-1] is None:
        names.pop()
    limits.check_columns(label, len(names))
    header: list[str] = []
    for position, value in enumerate(names):
        name = _text(value) if value is not None else f"column_{position + 1}"
        while name in header:
            name += "_"
        header.append(name)
    return header


def _frame(batch: list[tuple[Any, ...]], header: list[str], text: bool) -> pd.DataFrame:
    width = len(header)
    padded = [r + (None,) * (width - len(r)) if len(r) < width else r for r in batch]
    if text:
        padded = [tuple(None if v is None else _text(v) for v in r) for r in padded]
        return pd.DataFrame(padded, columns=header, dtype=object)
    frame = pd.DataFrame(padded, columns=header, dtype=object)
    return frame.infer_objects()


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def write_xlsx(frame: pd.DataFrame, target: str | Path, *, sheet: str = "tongge") -> None:
    """Write ``frame`` (without its index) as a one-sheet ``.xlsx`` workbook."""
    with XlsxWriter(target, sheet=sheet) as writer:
        writer.append(frame)


class XlsxWriter:
    """A workbook written chunk by chunk (write-only mode); saved on exit.

    Raises
    ------
    InputError
        More rows or columns than Excel holds, or a cell longer than it holds.
    """

    def __init__(self, target: str | Path, *, sheet: str = "tongge") -> None:
        from openpyxl import Workbook

        self.target = Path(target)
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(sheet)
        self._rows = 0
        self._columns: list[str] | None = None

    def __enter__(self) -> XlsxWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._book.save(self.target)
        else:
            self._book.close()

    def append(self, frame: pd.DataFrame) -> None:
        """Add the rows of ``frame`` (the first call writes its column names too)."""
        if self._columns is None:
            self._columns = [str(c) for c in frame.columns]
            if len(self._columns) > EXCEL_COLUMNS:
                raise InputError(
                    f"{len(self._columns):,} columns are more than Excel holds "
                    f"({EXCEL_COLUMNS:,}): write CSV or Parquet",
                    field="format",
                )
            self._write([self._cell(c) for c in self._columns])
        if self._rows + len(frame) > EXCEL_ROWS - 1:
            raise InputError(
                f"more than {EXCEL_ROWS - 1:,} rows, more than Excel holds: write CSV or Parquet",
                field="format",
            )
        for values in frame.itertuples(index=False, name=None):
            self._write([self._cell(v) for v in values])

    def _write(self, cells: list[Any]) -> None:
        self._sheet.append(cells)
        self._rows += 1

    def _cell(self, value: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell

        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, datetime):
            # Excel has no time zones: write the time with its offset, as text.
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = value.hex()
        elif not isinstance(value, str):
            value = str(value)
        value = _ILLEGAL.sub("\ufffd", value)
        if len(value) > EXCEL_CELL_CHARS:
            raise InputError(
                f"a cell of {len(value):,} characters is longer than Excel holds "
                f"({EXCEL_CELL_CHARS:,}): write CSV, GeoPackage or Parquet",
                field="format",
            )
        cell = WriteOnlyCell(self._sheet, value=value)
        cell.data_type = "s"  # text, even when it starts with "=": never a formula
        return cell
