"""Strict JSON (RFC 8259) for every answer and every ``--format json`` output.

Python's ``json`` writes ``NaN`` and ``Infinity``, which ``jq``, browsers and
most parsers refuse. Missing numbers are ``null`` here, once, for the CLI
(``api.cli._output.echo_json``) and the HTTP API (:class:`StrictJSONResponse`).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from fastapi.responses import JSONResponse

from gis.times import isoformat_local

__all__ = ["StrictJSONResponse", "dumps", "strict_json"]


def dumps(value: Any, *, separators: tuple[str, str] | None = None) -> str:
    """Return ``value`` as strict JSON text, Chinese kept readable."""
    try:
        # Most values are plain already: one pass, no copy.
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=separators)
    except (ValueError, TypeError):
        return json.dumps(
            strict_json(value), ensure_ascii=False, allow_nan=False, separators=separators
        )


class StrictJSONResponse(JSONResponse):
    """FastAPI's JSON response with NaN/±inf written as ``null`` (never a 500)."""

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as strict JSON."""
        return dumps(content, separators=(",", ":")).encode("utf-8")


def strict_json(value: Any) -> Any:
    """Return ``value`` with NaN/inf as None, times in China time with offset, numpy as Python.

    Examples
    --------
    >>> strict_json({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [strict_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalars (and pandas' NA-free scalars)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value != value:  # pandas NaT
            return None
        return isoformat_local(value)
    if isinstance(value, date):
        return value.isoformat()
    if _missing(value):
        return None
    return str(value)


def _missing(value: Any) -> bool:
    # pandas NA / NaT without importing pandas here.
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False
