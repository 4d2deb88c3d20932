"""Spreadsheet-safe text cells for CSV exports (Excel files: :mod:`gis.files._excel`).

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
a formula to Excel, LibreOffice and WPS (``=HYPERLINK(...)``, DDE payloads
such as ``-2+3+cmd|' /C calc'!A0``). Following OWASP, such text cells get a
leading single quote, which spreadsheets show as text and do not evaluate.
The full-width forms (＝＋－＠) typed by Chinese input methods get the same
treatment: the quote costs nothing and some spreadsheet programs normalise
them. Numbers are left alone: numeric columns are never touched, and a text
cell that is just a number (``-3.5``, ``+86``) is read by spreadsheets as that
number, never as a formula. Column names are cells too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["safe_cell", "spreadsheet_safe", "write_csv"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """Return ``value`` with a leading quote when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells and column names cannot run as formulas."""
    safe = frame.copy()
    for position, (_, values) in enumerate(frame.items()):
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            values = values.astype(object)
        elif not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
            continue
        safe.isetitem(position, values.map(safe_cell, na_action="ignore"))
    safe.columns = [safe_cell(c) for c in frame.columns]
    return safe


def write_csv(
    frame: pd.DataFrame, target: str | Path | Any = None, *, bom: bool = True, **options: Any
) -> str | None:
    """Write ``frame`` as CSV without its index, spreadsheet-safe; the one CSV writer.

    ``target`` is a path or a text buffer (``None`` returns the text);
    ``options`` go to :meth:`pandas.DataFrame.to_csv` (``mode``, ``header``).
    The text is UTF-8 starting with a byte-order mark (``bom``), which Excel
    on Chinese Windows needs to show Chinese instead of reading it as GBK;
    appending (``mode="a"``) adds no second mark.
    """
    safe = spreadsheet_safe(frame)
    appending = options.get("mode", "w").startswith("a")
    if target is None:
        text = safe.to_csv(None, index=False, **options)
        return ("\ufeff" if bom and not appending else "") + text
    if isinstance(target, str | Path):
        options.setdefault("encoding", "utf-8-sig" if bom and not appending else "utf-8")
    elif bom and not appending:
        target.write("\ufeff")
    safe.to_csv(target, index=False, **options)
    return None
